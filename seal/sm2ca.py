"""The hub's SM2 certificate authority: an SM2 root, issuing CA and seal maker (制章人), and its CRLs.

`cryptography` cannot sign with SM2, so the certificates and CRLs are assembled with `asn1crypto` and signed
SM2-with-SM3 (OID 1.2.156.10197.1.501, the signer's Z computed with the default user ID 1234567812345678) by
`tongsuopy`. The keys are SM2 (ecPublicKey on curve 1.2.156.10197.1.301) and kept in `seal_authority_keys`
like the P-256 authority's, their private halves wrapped with `ops.crypto` under the master key.

Every certificate the SM2 issuing CA issues names the hub's CRL in its CRL distribution point
(`<public URL>/seal/crl/sm2`); the CRL is SM2-signed by the issuing CA and lists the certificates of revoked
(and, on hold, suspended) seals. The P-256 chain, which PAdES still uses, has its own CRL (`/seal/crl/p256`),
signed by the P-256 issuing CA with `cryptography`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import select
from sqlalchemy.orm import Session
from tongsuopy.crypto import hashes as sm_hashes
from tongsuopy.crypto import serialization as sm_serialization
from tongsuopy.crypto.asymciphers import ec as sm_ec

from ops.crypto import KeyVault, WrappedSecret
from ops.db import utcnow
from seal import caches, keys
from seal.models import AuthorityKey, Seal, SealCrl, SealStatus

SM2_SM3 = "1.2.156.10197.1.501"
ROOT, ISSUING, MAKER = "sm2-root", "sm2-issuing", "sm2-maker"
ROOT_YEARS, ISSUING_YEARS, MAKER_YEARS = 20, 10, 5
CRL_DAYS = 7
SM2_CRL_PATH, P256_CRL_PATH = "/seal/crl/sm2", "/seal/crl/p256"
OCSP_PATH = "/seal/ocsp"


def _purpose(key_id: str) -> str:
    return f"seal-authority-key:{key_id}"


@dataclass(frozen=True)
class Sm2Member:
    """A loaded SM2 authority key with its certificate (DER)."""

    id: str
    role: str
    certificate_der: bytes
    private: Any  # tongsuopy SM2 private key

    @property
    def certificate(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.certificate_der)

    @property
    def certificate_pem(self) -> str:
        return pem(self.certificate_der)

    def sign(self, data: bytes) -> bytes:
        """SM2 with SM3 over `data`: the DER SEQUENCE { r, s }."""
        return sign(self.private, data)


@dataclass(frozen=True)
class Sm2Authority:
    root: Sm2Member
    issuing: Sm2Member
    maker: Sm2Member


def pem(der: bytes) -> str:
    import base64

    body = base64.b64encode(der).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def sign(private: Any, data: bytes) -> bytes:
    return bytes(private.sign(data, sm_ec.ECDSA(sm_hashes.SM3())))


def verify(spki_der: bytes, data: bytes, signature: bytes) -> bool:
    """True when `signature` (DER r, s) is an SM2-with-SM3 signature of `data` by the key of `spki_der`."""
    return keys.verify_der(keys.SM2, spki_der, data, signature)


def _name(common_name: str, *, org: str = "govhub 电子印章平台") -> asn1_x509.Name:
    return asn1_x509.Name.build({"country_name": "CN", "organization_name": org, "common_name": common_name})


def _time(moment: datetime) -> asn1_x509.Time:
    moment = moment.replace(microsecond=0)
    if moment.year < 2050:
        return asn1_x509.Time(name="utc_time", value=moment)
    return asn1_x509.Time(name="general_time", value=moment)


def _serial() -> int:
    return secrets.randbits(127) | 1 << 126


def _certificate(
    *,
    subject: asn1_x509.Name,
    issuer: asn1_x509.Name,
    spki_der: bytes,
    issuer_spki_der: bytes,
    sign_with: Any,
    not_before: datetime,
    not_after: datetime,
    ca: bool,
    path_length: int | None = None,
    crl_url: str | None = None,
    aia: tuple[str, str] | None = None,
) -> bytes:
    spki = asn1_keys.PublicKeyInfo.load(spki_der)
    issuer_spki = asn1_keys.PublicKeyInfo.load(issuer_spki_der)
    extensions: list[dict[str, Any]] = [
        {
            "extn_id": "basic_constraints",
            "critical": True,
            "extn_value": {"ca": ca, "path_len_constraint": path_length} if ca else {"ca": False},
        },
        {
            "extn_id": "key_usage",
            "critical": True,
            "extn_value": {"key_cert_sign", "crl_sign"} if ca else {"digital_signature", "non_repudiation"},
        },
        {"extn_id": "key_identifier", "critical": False, "extn_value": spki.sha1},
        {"extn_id": "authority_key_identifier", "critical": False, "extn_value": {"key_identifier": issuer_spki.sha1}},
    ]
    if crl_url:
        extensions.append(
            {
                "extn_id": "crl_distribution_points",
                "critical": False,
                "extn_value": [
                    {
                        "distribution_point": asn1_x509.DistributionPointName(
                            name="full_name",
                            value=[asn1_x509.GeneralName(name="uniform_resource_identifier", value=crl_url)],
                        )
                    }
                ],
            }
        )
    if aia:
        ocsp_at, issuer_at = aia
        extensions.append(
            {
                "extn_id": "authority_information_access",
                "critical": False,
                "extn_value": [
                    {"access_method": method, "access_location": {"uniform_resource_identifier": url}}
                    for method, url in (("ocsp", ocsp_at), ("ca_issuers", issuer_at))
                ],
            }
        )
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": _serial(),
            "signature": {"algorithm": SM2_SM3},
            "issuer": issuer,
            "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
            "subject": subject,
            "subject_public_key_info": spki,
            "extensions": extensions,
        }
    )
    tbs_der = tbs.dump()
    cert = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
            "signature_algorithm": {"algorithm": SM2_SM3},
            "signature_value": sign(sign_with, tbs_der),
        }
    )
    return bytes(cert.dump())


def _spki(private: Any) -> bytes:
    return bytes(
        private.public_key().public_bytes(sm_serialization.Encoding.DER, sm_serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _crl_url(public_url: str) -> str:
    return f"{public_url.rstrip('/')}{SM2_CRL_PATH}"


def create(db: Session, vault: KeyVault, *, public_url: str) -> None:
    """Generate the SM2 root, issuing CA and seal maker, each certified by the one above."""
    now = utcnow()
    start = now - timedelta(minutes=5)
    root_key = sm_ec.generate_private_key(sm_ec.SM2())
    issuing_key = sm_ec.generate_private_key(sm_ec.SM2())
    maker_key = sm_ec.generate_private_key(sm_ec.SM2())
    root_name = _name("govhub 电子印章 SM2 根 CA")
    issuing_name = _name("govhub 电子印章 SM2 签发 CA")

    def certify(
        subject: asn1_x509.Name,
        key: Any,
        issuer: asn1_x509.Name,
        issuer_key: Any,
        years: int,
        *,
        ca: bool,
        path_length: int | None = None,
        crl_url: str | None = None,
        aia: tuple[str, str] | None = None,
    ) -> bytes:
        """`key` certified by `issuer_key` from five minutes ago for `years`."""
        return _certificate(
            subject=subject,
            issuer=issuer,
            spki_der=_spki(key),
            issuer_spki_der=_spki(issuer_key),
            sign_with=issuer_key,
            not_before=start,
            not_after=now + timedelta(days=365 * years),
            ca=ca,
            path_length=path_length,
            crl_url=crl_url,
            aia=aia,
        )

    root = certify(root_name, root_key, root_name, root_key, ROOT_YEARS, ca=True, path_length=1)
    issuing = certify(issuing_name, issuing_key, root_name, root_key, ISSUING_YEARS, ca=True, path_length=0)
    maker = certify(
        _name("govhub SM2 制章人"), maker_key, issuing_name, issuing_key, MAKER_YEARS, ca=False, crl_url=_crl_url(public_url),
        aia=authority_access(public_url, "sm2"),
    )  # fmt: skip
    generation = f"sm2ca-{now:%Y%m%d%H%M%S}-{secrets.token_hex(4)}"
    for role, private, cert in ((ROOT, root_key, root), (ISSUING, issuing_key, issuing), (MAKER, maker_key, maker)):
        key_id = f"{generation}.{role}"
        private_pem = private.private_bytes(
            sm_serialization.Encoding.PEM, sm_serialization.PrivateFormat.PKCS8, sm_serialization.NoEncryption()
        )
        db.add(
            AuthorityKey(
                id=key_id,
                role=role,
                alg=keys.SM2,
                certificate_pem=pem(cert),
                private_key=vault.wrap(private_pem, purpose=_purpose(key_id)).as_dict(),
            )
        )
    db.flush()
    caches.forget_trust()


def _der(row: AuthorityKey) -> bytes:
    return x509.load_pem_x509_certificate(row.certificate_pem.encode()).public_bytes(serialization.Encoding.DER)


def _load(vault: KeyVault, row: AuthorityKey) -> Sm2Member:
    private_pem = vault.unwrap(WrappedSecret.from_dict(row.private_key), purpose=_purpose(row.id))
    return Sm2Member(row.id, row.role, _der(row), sm_serialization.load_pem_private_key(private_pem, password=None))


def load_member(vault: KeyVault, row: AuthorityKey) -> Sm2Member:
    """An SM2 authority key row with its private key unwrapped (e.g. an older generation's, to answer for it)."""
    return _load(vault, row)


def _active_rows(db: Session) -> dict[str, AuthorityKey]:
    rows = db.scalars(
        select(AuthorityKey)
        .where(AuthorityKey.role.in_((ROOT, ISSUING, MAKER)), AuthorityKey.retired_at.is_(None))
        .order_by(AuthorityKey.created_at)
    )
    generations: dict[str, dict[str, AuthorityKey]] = {}
    for row in rows:
        generations.setdefault(row.id.rsplit(".", 1)[0], {})[row.role] = row
    complete = [g for g in generations.values() if all(role in g for role in (ROOT, ISSUING, MAKER))]
    if not complete:
        return {}
    return max(complete, key=lambda g: (g[ROOT].created_at, g[ROOT].id))


def ensure(db: Session, vault: KeyVault, *, public_url: str) -> Sm2Authority:
    """The hub's SM2 authority, created on first use."""
    rows = _active_rows(db)
    if not rows:
        create(db, vault, public_url=public_url)
        rows = _active_rows(db)
    return Sm2Authority(root=_load(vault, rows[ROOT]), issuing=_load(vault, rows[ISSUING]), maker=_load(vault, rows[MAKER]))


def certificates(db: Session, role: str) -> list[bytes]:
    """Every SM2 certificate of a role this hub has used (DER), oldest first."""
    rows = db.scalars(select(AuthorityKey).where(AuthorityKey.role == role).order_by(AuthorityKey.created_at))
    return [_der(row) for row in rows]


def _seal_subject(*, department_name: str, department_code: str, seal_name: str, seal_code: str) -> asn1_x509.Name:
    return asn1_x509.Name.build(
        {
            "country_name": "CN",
            "organization_name": department_name[:64],
            "organization_identifier": department_code,
            "common_name": seal_name[:64],
            "serial_number": seal_code,
        }
    )


def issue_seal_certificate(
    authority: Sm2Authority,
    *,
    spki_der: bytes,
    department_name: str,
    department_code: str,
    seal_name: str,
    seal_code: str,
    not_before: datetime,
    not_after: datetime,
    public_url: str,
) -> bytes:
    """Certify an SM2 seal key (DER certificate), signed SM2-with-SM3 by the SM2 issuing CA."""
    issuing = authority.issuing.certificate
    return _certificate(
        subject=_seal_subject(
            department_name=department_name, department_code=department_code, seal_name=seal_name, seal_code=seal_code
        ),
        issuer=issuing.subject,
        spki_der=spki_der,
        issuer_spki_der=issuing.public_key.dump(),
        sign_with=authority.issuing.private,
        not_before=not_before,
        not_after=not_after,
        ca=False,
        crl_url=_crl_url(public_url),
        aia=authority_access(public_url, "sm2"),
    )


def issued_by(cert_der: bytes, issuer_der: bytes) -> bool:
    """True when the SM2-with-SM3 signature of `cert_der` verifies with the key of `issuer_der` (names matching)."""
    try:
        cert = asn1_x509.Certificate.load(cert_der)
        issuer = asn1_x509.Certificate.load(issuer_der)
        if cert["signature_algorithm"]["algorithm"].dotted != SM2_SM3:
            return False
        if cert.issuer != issuer.subject:
            return False
        return verify(issuer.public_key.dump(), cert["tbs_certificate"].dump(), bytes(cert["signature_value"].native))
    except (ValueError, TypeError, KeyError):
        return False


# ---------------------------------------------------------------- CRLs


def _revoked_seals(db: Session) -> list[Seal]:
    statuses = (SealStatus.REVOKED.value, SealStatus.SUSPENDED.value)
    return list(db.scalars(select(Seal).where(Seal.status.in_(statuses)).order_by(Seal.certificate_serial)))


def _entries(db: Session, issuer_der: bytes) -> list[tuple[int, datetime, str]]:
    """(serial, since, reason) of every certificate the issuer issued to a revoked or suspended seal."""
    issuer_subject = x509.load_der_x509_certificate(issuer_der).subject
    out = []
    for seal in _revoked_seals(db):
        cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
        if cert.issuer != issuer_subject:
            continue
        if seal.status == SealStatus.REVOKED.value:
            out.append((cert.serial_number, seal.revoked_at or seal.updated_at, "revoked"))
        else:
            out.append((cert.serial_number, seal.updated_at, "hold"))
    return out


def _fingerprint(entries: list[tuple[int, datetime, str]]) -> str:
    return hashlib.sha256(repr(sorted((s, r) for s, _, r in entries)).encode()).hexdigest()


def _latest(db: Session, issuer_key_id: str) -> SealCrl | None:
    return db.scalars(
        select(SealCrl).where(SealCrl.issuer_key_id == issuer_key_id).order_by(SealCrl.number.desc()).limit(1)
    ).first()


def _sm2_crl(member: Sm2Member, entries: list[tuple[int, datetime, str]], number: int, now: datetime) -> bytes:
    issuer = member.certificate
    revoked = [
        {
            "user_certificate": serial,
            "revocation_date": _time(since),
            "crl_entry_extensions": [
                {"extn_id": "crl_reason", "extn_value": "certificate_hold" if reason == "hold" else "cessation_of_operation"}
            ],
        }
        for serial, since, reason in entries
    ]
    values: dict[str, Any] = {
        "version": "v2",
        "signature": {"algorithm": SM2_SM3},
        "issuer": issuer.subject,
        "this_update": _time(now),
        "next_update": _time(now + timedelta(days=CRL_DAYS)),
        "crl_extensions": [
            {"extn_id": "crl_number", "extn_value": number},
            {"extn_id": "authority_key_identifier", "extn_value": {"key_identifier": issuer.public_key.sha1}},
        ],
    }
    if revoked:
        values["revoked_certificates"] = revoked
    tbs = asn1_crl.TbsCertList(values)
    tbs_der = tbs.dump()
    crl = asn1_crl.CertificateList(
        {
            "tbs_cert_list": asn1_crl.TbsCertList.load(tbs_der),
            "signature_algorithm": {"algorithm": SM2_SM3},
            "signature": member.sign(tbs_der),
        }
    )
    return bytes(crl.dump())


def _p256_crl(db: Session, vault: KeyVault, entries: list[tuple[int, datetime, str]], number: int, now: datetime) -> bytes:
    from seal import authority

    issuing = authority.ensure_authority(db, vault).issuing
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuing.certificate.subject)
        .last_update(now)
        .next_update(now + timedelta(days=CRL_DAYS))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing.private.public_key()), critical=False)
    )
    for serial, since, reason in entries:
        flag = x509.ReasonFlags.certificate_hold if reason == "hold" else x509.ReasonFlags.cessation_of_operation
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(since)
            .add_extension(x509.CRLReason(flag), critical=False)
            .build()
        )
    return builder.sign(issuing.private, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def current_crl(db: Session, vault: KeyVault, *, chain: str, public_url: str, force: bool = False) -> bytes:
    """The CRL of the SM2 (`chain="sm2"`) or P-256 (`"p256"`) issuing CA, issued anew when a seal's
    revocation or suspension changed what it lists, or when the last one is older than a day."""
    from seal import authority

    if chain == "sm2":
        member = ensure(db, vault, public_url=public_url).issuing
        issuer_key_id, issuer_der = member.id, member.certificate_der
    else:
        p256 = authority.ensure_authority(db, vault).issuing
        issuer_key_id, issuer_der = p256.id, p256.certificate_der
    entries = _entries(db, issuer_der)
    fingerprint = _fingerprint(entries)
    now = utcnow().replace(microsecond=0)
    latest = _latest(db, issuer_key_id)
    if latest is not None and not force and latest.entries_hash == fingerprint and latest.this_update > now - timedelta(days=1):
        return latest.der
    number = (latest.number + 1) if latest is not None else 1
    der = _sm2_crl(member, entries, number, now) if chain == "sm2" else _p256_crl(db, vault, entries, number, now)
    db.add(
        SealCrl(
            issuer_key_id=issuer_key_id,
            number=number,
            this_update=now,
            next_update=now + timedelta(days=CRL_DAYS),
            entries_hash=fingerprint,
            der=der,
        )
    )
    db.flush()
    return der


def publish(db: Session, vault: KeyVault, *, public_url: str) -> None:
    """Re-issue both CRLs now if what they list changed (called when a seal is revoked, suspended or resumed)."""
    current_crl(db, vault, chain="sm2", public_url=public_url)
    current_crl(db, vault, chain="p256", public_url=public_url)


def crl_url_sm2(public_url: str) -> str:
    return _crl_url(public_url)


def crl_url_p256(public_url: str) -> str:
    return f"{public_url.rstrip('/')}{P256_CRL_PATH}"


def current_root_crl(db: Session, vault: KeyVault) -> bytes:
    """The P-256 root's CRL of the CA certificates it issued (an authority revocation list): none are revoked, and
    it is what a long-term validator needs for the issuing CA's certificate (issued anew each day)."""
    from seal import authority

    root = authority.ensure_authority(db, vault).root
    now = utcnow().replace(microsecond=0)
    latest = _latest(db, root.id)
    if latest is not None and latest.this_update > now - timedelta(days=1):
        return latest.der
    number = (latest.number + 1) if latest is not None else 1
    der = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.certificate.subject)
        .last_update(now)
        .next_update(now + timedelta(days=CRL_DAYS))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root.private.public_key()), critical=False)
        .sign(root.private, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    db.add(
        SealCrl(
            issuer_key_id=root.id,
            number=number,
            this_update=now,
            next_update=now + timedelta(days=CRL_DAYS),
            entries_hash=_fingerprint([]),
            der=der,
        )
    )
    db.flush()
    return der


def ocsp_url(public_url: str, chain: str) -> str:
    """The OCSP responder of a chain's issuing CA (`seal.ocsp`)."""
    return f"{public_url.rstrip('/')}{OCSP_PATH}/{chain}"


def ca_issuers_url(public_url: str, chain: str) -> str:
    """Where a chain's issuing CA certificate (DER) is published."""
    return f"{public_url.rstrip('/')}/seal/ca/{chain}/issuing.cer"


def authority_access(public_url: str, chain: str) -> tuple[str, str]:
    """(OCSP URL, caIssuers URL): the authority information access of a certificate the chain's issuing CA issues."""
    return ocsp_url(public_url, chain), ca_issuers_url(public_url, chain)
