"""Scenarios of key custody and the signer contract other domains use (JWS, SD-JWT VC signing)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto.algos import DSASignature
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from gmssl import sm2
from sqlalchemy.orm import Session

from ops.crypto import KeyVault
from ops.errors import Conflict
from seal import keys, service, verification
from tests.conftest import MASTER_KEY, Hub
from tests.seal.helpers import make_seal

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


@pytest.fixture()
def vault() -> KeyVault:
    return KeyVault([base64.b64decode(MASTER_KEY)])


@pytest.mark.parametrize("algorithm", ["SM2", "ES256", "EdDSA"])
def test_a_department_signer_signs_and_its_public_jwk_verifies(db: Session, hub: Hub, vault: KeyVault, algorithm: str) -> None:
    department = hub.department()
    seal = make_seal(db, vault, department.id, algorithm=algorithm)
    signer = service.department_signer(db, department_id=department.id, vault=vault)
    assert isinstance(signer, keys.Signer)
    assert (signer.alg, signer.kid, signer.seal_id) == (algorithm, seal.kid, seal.id)
    payload = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMifQ"
    signature = signer.sign(payload)
    assert len(signature) == 64  # Ed25519, and raw r||s for ES256 and SM2
    assert service.verify_jose_signature(alg=algorithm, jwk=signer.public_jwk(), data=payload, signature=signature)
    assert not service.verify_jose_signature(alg=algorithm, jwk=signer.public_jwk(), data=payload + b"x", signature=signature)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    assert not service.verify_jose_signature(alg=algorithm, jwk=signer.public_jwk(), data=payload, signature=flipped)
    chain = signer.certificate_chain_pem()
    assert len(chain) == 2
    leaf, issuing = (x509.load_pem_x509_certificate(p.encode()) for p in chain)
    assert verification._issued_by(leaf, issuing)  # SM2 with SM3 for an SM2 seal, ECDSA P-256 for the others


def test_verification_refuses_a_key_of_the_wrong_algorithm_or_a_malformed_jwk(db: Session, hub: Hub, vault: KeyVault) -> None:
    department = hub.department()
    make_seal(db, vault, department.id, algorithm="ES256")
    signer = service.department_signer(db, department_id=department.id, vault=vault)
    signature = signer.sign(b"data")
    assert not service.verify_jose_signature(alg="SM2", jwk=signer.public_jwk(), data=b"data", signature=signature)
    assert not service.verify_jose_signature(
        alg="ES256", jwk={"kty": "EC", "crv": "P-256", "x": "AA"}, data=b"data", signature=signature
    )
    assert not service.verify_jose_signature(alg="none", jwk=signer.public_jwk(), data=b"data", signature=b"")


def test_the_preferred_seal_is_the_official_seal_unless_a_type_is_asked_for(db: Session, hub: Hub, vault: KeyVault) -> None:
    department = hub.department()
    official = make_seal(db, vault, department.id, seal_type="公章")
    licence = make_seal(db, vault, department.id, seal_type="电子证照专用章", algorithm="SM2")
    assert service.department_signer(db, department_id=department.id, vault=vault).seal_id == official.id
    chosen = service.department_signer(db, department_id=department.id, vault=vault, seal_type="电子证照专用章")
    assert chosen.seal_id == licence.id and chosen.alg == "SM2"


def test_a_department_without_an_active_seal_gets_a_clear_conflict(db: Session, hub: Hub, vault: KeyVault) -> None:
    department = hub.department()
    with pytest.raises(Conflict, match="the department has no active seal"):
        service.department_signer(db, department_id=department.id, vault=vault)
    seal = make_seal(db, vault, department.id)
    service.change_status(db, who=hub.admin_principal(), seal_id=seal.id, action="suspend", reason="保管人变更")
    with pytest.raises(Conflict) as refused:
        service.department_signer(db, department_id=department.id, vault=vault)
    assert "电子印章制发" in refused.value.detail
    with pytest.raises(Conflict):
        service.department_signer(db, department_id=department.id, vault=vault, seal_type="合同专用章")


def test_the_jwks_lists_active_and_revoked_seal_keys_with_department_and_status(
    db: Session, hub: Hub, vault: KeyVault, client: object
) -> None:
    department = hub.department()
    other = hub.department("另一个局")
    active = make_seal(db, vault, department.id)
    old = make_seal(db, vault, department.id, algorithm="SM2")
    make_seal(db, vault, other.id)
    service.revoke_seal(db, who=hub.admin_principal(), seal_id=old.id, reason="密钥轮换")
    jwks = service.department_jwks(db, department_id=department.id)
    by_kid = {k["kid"]: k for k in jwks["keys"]}
    assert set(by_kid) == {active.kid, old.kid}
    assert by_kid[active.kid]["status"] == "active" and by_kid[old.kid]["status"] == "revoked"
    assert all(k["dept_code"] == department.code for k in jwks["keys"])
    assert by_kid[old.kid]["alg"] == "SM2" and by_kid[old.kid]["crv"] == "SM2"
    assert not any("d" in k for k in jwks["keys"])  # never a private member
    assert len(service.department_jwks(db)["keys"]) == 3


def test_private_keys_are_encrypted_at_rest_and_a_master_key_rotation_rewraps_without_changing_them(
    db: Session, hub: Hub, vault: KeyVault
) -> None:
    department = hub.department()
    seal = make_seal(db, vault, department.id, algorithm="SM2")
    stored = json.dumps(seal.private_key)
    assert "PRIVATE KEY" not in stored and set(seal.private_key) == {"kek_id", "wrapped_dek", "ciphertext"}
    before = service.department_signer(db, department_id=department.id, vault=vault).public_jwk()
    new_master = b"n" * 32
    rotated = KeyVault([new_master, base64.b64decode(MASTER_KEY)])
    assert service.rewrap_keys(db, vault=rotated) >= 4  # the seal key and the three authority keys
    assert seal.private_key["kek_id"] == rotated.current_kek_id
    only_new = KeyVault([new_master])
    signer = service.department_signer(db, department_id=department.id, vault=only_new)
    assert signer.public_jwk() == before
    assert service.verify_jose_signature(alg="SM2", jwk=before, data=b"after rotation", signature=signer.sign(b"after rotation"))
    with pytest.raises(ValueError, match="not configured"):
        service.department_signer(db, department_id=department.id, vault=KeyVault([b"z" * 32]))


def test_sm2_signatures_verify_with_an_independent_implementation(db: Session, hub: Hub, vault: KeyVault) -> None:
    """gmssl (pure Python) checks SM2 with SM3 over Z computed with the default user ID 1234567812345678."""
    department = hub.department()
    make_seal(db, vault, department.id, algorithm="SM2")
    signer = service.department_signer(db, department_id=department.id, vault=vault)
    jwk = signer.public_jwk()
    public_hex = (keys.unb64u(jwk["x"]) + keys.unb64u(jwk["y"])).hex()
    independent = sm2.CryptSM2(private_key=None, public_key=public_hex)
    message = "电子证照 SM2 签名".encode()
    signature = signer.sign(message)
    assert independent.verify_with_sm3(signature.hex(), message)
    assert not independent.verify_with_sm3(signature.hex(), message + b"!")
    # and the other way round: a signature made by the independent implementation verifies here
    private = sm2.CryptSM2(private_key="3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8", public_key="")
    private.public_key = private._kg(int(private.private_key, 16), sm2.default_ecc_table["g"])
    their_jwk = {
        "kty": "EC",
        "crv": "SM2",
        "x": keys.b64u(bytes.fromhex(private.public_key[:64])),
        "y": keys.b64u(bytes.fromhex(private.public_key[64:])),
    }
    theirs = bytes.fromhex(private.sign_with_sm3(message, "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"))
    assert service.verify_jose_signature(alg="SM2", jwk=their_jwk, data=message, signature=theirs)


@pytest.mark.parametrize(("algorithm", "digest_flag"), [("ES256", "-sha256"), ("EdDSA", None)])
def test_ed25519_and_p256_signatures_verify_with_openssl(
    db: Session, hub: Hub, vault: KeyVault, tmp_path: Path, algorithm: str, digest_flag: str | None
) -> None:
    department = hub.department()
    seal = make_seal(db, vault, department.id, algorithm=algorithm)
    signer = service.department_signer(db, department_id=department.id, vault=vault)
    message = b"sealed by the department"
    raw = signer.sign(message)
    if algorithm == "ES256":  # OpenSSL takes the DER (ASN.1) form of an ECDSA signature
        raw = DSASignature({"r": int.from_bytes(raw[:32], "big"), "s": int.from_bytes(raw[32:], "big")}).dump()
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    (tmp_path / "pub.pem").write_bytes(
        cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(raw)
    command = [
        OPENSSL,
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        str(tmp_path / "pub.pem"),
        "-sigfile",
        str(tmp_path / "sig"),
        "-in",
        str(tmp_path / "msg"),
    ]
    if digest_flag is None:
        command.insert(2, "-rawin")
    else:
        command = [
            OPENSSL,
            "dgst",
            digest_flag,
            "-verify",
            str(tmp_path / "pub.pem"),
            "-signature",
            str(tmp_path / "sig"),
            str(tmp_path / "msg"),
        ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Verified" in result.stdout, result.stdout + result.stderr
    (tmp_path / "msg").write_bytes(message + b" and altered")
    altered = subprocess.run(command, capture_output=True, text=True, check=False)
    assert altered.returncode != 0


def test_the_seal_certificate_chain_verifies_with_openssl(db: Session, hub: Hub, vault: KeyVault, tmp_path: Path) -> None:
    from seal import authority

    department = hub.department()
    for algorithm in ("ES256",):  # the SM2 chain: tests/seal/test_der.py
        seal = make_seal(db, vault, department.id, algorithm=algorithm)
        roots = authority.root_certificates(db)
        (tmp_path / "root.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in roots))
        (tmp_path / "chain.pem").write_bytes(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in authority.intermediate_certificates(db))
        )
        (tmp_path / "seal.pem").write_text(seal.certificate_pem)
        result = subprocess.run(
            [
                OPENSSL,
                "verify",
                "-CAfile",
                str(tmp_path / "root.pem"),
                "-untrusted",
                str(tmp_path / "chain.pem"),
                str(tmp_path / "seal.pem"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0 and ": OK" in result.stdout, (algorithm, result.stdout, result.stderr)
    text = subprocess.run(
        [OPENSSL, "x509", "-noout", "-text", "-in", str(tmp_path / "seal.pem")], capture_output=True, text=True, check=False
    ).stdout
    assert "ecdsa-with-SHA256" in text and department.code in text and "/seal/crl/p256" in text


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_a_jws_made_with_a_seal_signer_verifies_with_pyjwt_and_the_published_jwk(
    db: Session, hub: Hub, vault: KeyVault, algorithm: str
) -> None:
    """What the certificate hub does: a compact JWS signed by the seal, checked by a standard JOSE library."""
    import jwt
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm

    department = hub.department()
    make_seal(db, vault, department.id, algorithm=algorithm)
    signer = service.department_signer(db, department_id=department.id, vault=vault)
    header = keys.b64u(json.dumps({"alg": signer.alg, "kid": signer.kid, "typ": "JWT"}).encode())
    payload = keys.b64u(json.dumps({"iss": department.code, "vct": "营业执照"}, ensure_ascii=False).encode())
    token = f"{header}.{payload}.{keys.b64u(signer.sign(f'{header}.{payload}'.encode()))}"
    published = next(k for k in service.department_jwks(db, department_id=department.id)["keys"] if k["kid"] == signer.kid)
    algorithm_class = ECAlgorithm if algorithm == "ES256" else OKPAlgorithm
    public = algorithm_class.from_jwk(json.dumps({k: published[k] for k in ("kty", "crv", "x", "y") if k in published}))
    claims = jwt.decode(token, public, algorithms=[algorithm])  # type: ignore[arg-type]
    assert claims == {"iss": department.code, "vct": "营业执照"}
