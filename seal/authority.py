"""The hub's certificate authority: a platform root, an issuing CA and the seal maker (制章人).

The three authority keys are ECDSA P-256 (X.509 built with `cryptography`). A seal certificate binds a
seal's key to its department (name, 统一社会信用代码 as organizationIdentifier) and to the seal (its esID as
serialNumber). `cryptography` cannot hold an SM2 public key, so an SM2 seal's certificate is assembled
with `asn1crypto` (the SM2 SubjectPublicKeyInfo, curve 1.2.156.10197.1.301) and signed by the issuing CA.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from ops.crypto import KeyVault, WrappedSecret
from ops.db import utcnow
from seal import caches, keys
from seal.models import AuthorityKey

ROOT, ISSUING, MAKER = "root", "issuing", "maker"
ROOT_YEARS, ISSUING_YEARS, MAKER_YEARS = 20, 10, 5


def _purpose(key_id: str) -> str:
    return f"seal-authority-key:{key_id}"


@dataclass(frozen=True)
class AuthorityMember:
    """A loaded authority key with its certificate."""

    id: str
    role: str
    certificate: x509.Certificate
    private: ec.EllipticCurvePrivateKey

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class Authority:
    """The hub's root, issuing CA and seal maker, as this process uses them."""

    root: AuthorityMember
    issuing: AuthorityMember
    maker: AuthorityMember


def _name(common_name: str, *, org: str = "govhub 电子印章平台") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_certificate(
    *, subject: x509.Name, issuer: x509.Name, public: Any, signer: ec.EllipticCurvePrivateKey, years: int, path_length: int
) -> x509.Certificate:
    now = utcnow()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    return builder.sign(signer, hashes.SHA256())


def _store(
    db: Session, vault: KeyVault, *, generation: str, role: str, private: ec.EllipticCurvePrivateKey, cert: x509.Certificate
) -> None:
    key_id = f"{generation}.{role}"
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    caches.forget_trust()
    db.add(
        AuthorityKey(
            id=key_id,
            role=role,
            alg=keys.ES256,
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            private_key=vault.wrap(pem, purpose=_purpose(key_id)).as_dict(),
        )
    )


def create_authority(db: Session, vault: KeyVault) -> None:
    """Generate the platform root, the issuing CA and the seal maker key with its certificate."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("govhub 电子印章根 CA")
    root = _ca_certificate(
        subject=root_name, issuer=root_name, public=root_key.public_key(), signer=root_key, years=ROOT_YEARS, path_length=1
    )
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    issuing = _ca_certificate(
        subject=_name("govhub 电子印章签发 CA"),
        issuer=root_name,
        public=issuing_key.public_key(),
        signer=root_key,
        years=ISSUING_YEARS,
        path_length=0,
    )
    maker_key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    maker = (
        x509.CertificateBuilder()
        .subject_name(_name("govhub 制章人"))
        .issuer_name(issuing.subject)
        .public_key(maker_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365 * MAKER_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing_key.public_key()), critical=False)
        .sign(issuing_key, hashes.SHA256())
    )
    generation = f"ca-{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(4)}"
    _store(db, vault, generation=generation, role=ROOT, private=root_key, cert=root)
    _store(db, vault, generation=generation, role=ISSUING, private=issuing_key, cert=issuing)
    _store(db, vault, generation=generation, role=MAKER, private=maker_key, cert=maker)
    db.flush()


def _load(vault: KeyVault, row: AuthorityKey) -> AuthorityMember:
    pem = vault.unwrap(WrappedSecret.from_dict(row.private_key), purpose=_purpose(row.id))
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    return AuthorityMember(row.id, row.role, x509.load_pem_x509_certificate(row.certificate_pem.encode()), private)


def load_member(vault: KeyVault, row: AuthorityKey) -> AuthorityMember:
    """An authority key row with its private key unwrapped (e.g. an older generation's, to answer for it)."""
    return _load(vault, row)


def active_rows(db: Session) -> dict[str, AuthorityKey]:
    """The newest complete generation of authority keys (root, issuing CA, maker created together).

    Two hub processes making the authority at the same moment each write a complete generation; both
    stay trusted, and every process signs with the same (newest) one.
    """
    rows = db.scalars(select(AuthorityKey).where(AuthorityKey.retired_at.is_(None)).order_by(AuthorityKey.created_at))
    generations: dict[str, dict[str, AuthorityKey]] = {}
    for row in rows:
        generations.setdefault(row.id.rsplit(".", 1)[0], {})[row.role] = row
    complete = [g for g in generations.values() if all(role in g for role in (ROOT, ISSUING, MAKER))]
    if not complete:
        return {}
    return max(complete, key=lambda g: (g[ROOT].created_at, g[ROOT].id))


def ensure_authority(db: Session, vault: KeyVault, *, public_url: str | None = None) -> Authority:
    """The hub's authority, created on first use; the SM2 chain (`seal.sm2ca`) is made with it (its seal
    maker's certificate names the CRL at `public_url`, by default the settings' default public URL)."""
    from ops.config import DEFAULT_PUBLIC_URL
    from seal import sm2ca

    sm2ca.ensure(db, vault, public_url=public_url or DEFAULT_PUBLIC_URL)
    rows = active_rows(db)
    if not rows:
        create_authority(db, vault)
        rows = active_rows(db)
    return Authority(root=_load(vault, rows[ROOT]), issuing=_load(vault, rows[ISSUING]), maker=_load(vault, rows[MAKER]))


def root_certificates(db: Session) -> list[x509.Certificate]:
    """Every root this hub has used (current and retired): seals they certified stay verifiable."""
    rows = db.scalars(select(AuthorityKey).where(AuthorityKey.role == ROOT).order_by(AuthorityKey.created_at))
    return [x509.load_pem_x509_certificate(row.certificate_pem.encode()) for row in rows]


def intermediate_certificates(db: Session) -> list[x509.Certificate]:
    """Every issuing CA certificate this hub has used."""
    rows = db.scalars(select(AuthorityKey).where(AuthorityKey.role == ISSUING).order_by(AuthorityKey.created_at))
    return [x509.load_pem_x509_certificate(row.certificate_pem.encode()) for row in rows]


@lru_cache(maxsize=256)
def _parsed(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def trusted_certificates(db: Session) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """(roots, issuing CAs) of both chains this hub has used, current and retired, in one query."""
    from seal import sm2ca

    roles = (ROOT, ISSUING, sm2ca.ROOT, sm2ca.ISSUING)
    rows = db.execute(
        select(AuthorityKey.role, AuthorityKey.certificate_pem)
        .where(AuthorityKey.role.in_(roles))
        .order_by(AuthorityKey.created_at)
    ).all()
    roots = [_parsed(pem) for role, pem in rows if role in (ROOT, sm2ca.ROOT)]
    issuing = [_parsed(pem) for role, pem in rows if role in (ISSUING, sm2ca.ISSUING)]
    return roots, issuing


def rewrap(db: Session, vault: KeyVault) -> int:
    """Re-wrap the authority's private keys under the current master key; returns how many changed."""
    changed = 0
    for row in db.scalars(select(AuthorityKey)):
        wrapped = WrappedSecret.from_dict(row.private_key)
        new = vault.rewrap(wrapped, purpose=_purpose(row.id))
        if new != wrapped:
            row.private_key = new.as_dict()
            changed += 1
    return changed


def access_extension(ocsp_url: str, ca_issuers_url: str) -> x509.AuthorityInformationAccess:
    """Authority information access: the OCSP responder and the issuing CA's certificate."""
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)),
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers_url)),
        ]
    )


def _seal_subject(*, department_name: str, department_code: str, seal_name: str, seal_code: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, department_name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, department_code),
            x509.NameAttribute(NameOID.COMMON_NAME, seal_name[:64]),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, seal_code),
        ]
    )


def issue_seal_certificate(
    authority: Authority,
    *,
    key: keys.KeyPair,
    department_name: str,
    department_code: str,
    seal_name: str,
    seal_code: str,
    not_before: datetime,
    not_after: datetime,
    crl_url: str | None = None,
    aia: tuple[str, str] | None = None,
) -> x509.Certificate:
    """Certify a seal key for its department and seal, signed by the (P-256) issuing CA; `crl_url` names its CRL,
    `aia` its (OCSP responder, issuing CA certificate) URLs.

    SM2 seals get their certificates from the SM2 chain (`seal.sm2ca`); an SM2 key certified here is the
    form seals made before the SM2 chain kept."""
    issuing = authority.issuing
    # For SM2 the builder gets a stand-in key; its SubjectPublicKeyInfo is replaced below before signing.
    stand_in = None if key.alg != keys.SM2 else ec.generate_private_key(ec.SECP256R1())
    public = stand_in.public_key() if stand_in is not None else serialization.load_der_public_key(key.spki_der)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            _seal_subject(
                department_name=department_name, department_code=department_code, seal_name=seal_name, seal_code=seal_code
            )
        )
        .issuer_name(issuing.certificate.subject)
        .public_key(public)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # digitalSignature + nonRepudiation (contentCommitment): a seal commits its department.
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing.private.public_key()), critical=False)
    )
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if aia:
        builder = builder.add_extension(access_extension(*aia), critical=False)
    cert = builder.sign(issuing.private, hashes.SHA256())
    if stand_in is None:
        return cert
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    tbs = parsed["tbs_certificate"]
    tbs["subject_public_key_info"] = asn1_keys.PublicKeyInfo.load(key.spki_der)
    tbs_der = tbs.dump(force=True)
    signature = issuing.private.sign(tbs_der, ec.ECDSA(hashes.SHA256()))
    rebuilt = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature_value": signature,
        }
    )
    return x509.load_der_x509_certificate(rebuilt.dump())


def issuer_certificate_pem(db: Session, cert: x509.Certificate) -> str | None:
    """The issuing CA certificate (PEM) that signed `cert`, of either chain (P-256 or SM2), if this hub has it."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    from seal import sm2ca

    if cert.signature_algorithm_oid.dotted_string == sm2ca.SM2_SM3:
        der = cert.public_bytes(serialization.Encoding.DER)
        return next((sm2ca.pem(c) for c in sm2ca.certificates(db, sm2ca.ISSUING) if sm2ca.issued_by(der, c)), None)
    for issuing in intermediate_certificates(db):
        if issuing.subject == cert.issuer:
            try:
                cert.verify_directly_issued_by(issuing)
            except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
                continue  # another issuing CA with the same name (an older generation)
            return issuing.public_bytes(serialization.Encoding.PEM).decode()
    return None


def spki_der(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo in DER (works for SM2 keys too)."""
    parsed = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    return bytes(parsed["tbs_certificate"]["subject_public_key_info"].dump())
