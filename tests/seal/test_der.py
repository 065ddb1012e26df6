"""GB/T 38540 seals and seal signatures in DER on the SM2 chain, checked with implementations that are not ours:
asn1tools compiling the standard's ASN.1 module decodes what the hub makes, gmssl verifies every SM2 signature
over the DER, OpenSSL verifies the SM2 chain and the CRLs, and the seal signatures of other producers' OFD
documents verify with the hub's verifier."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from fastapi.testclient import TestClient
from gmssl import sm2
from sqlalchemy.orm import Session

from ops.auth import Principal, Role
from ops.crypto import KeyVault
from ops.db import utcnow
from seal import keys, service, sesder, sm2ca
from seal.models import Seal
from tests.conftest import Hub
from tests.seal.helpers import grant, seal_body, sealer

OPENSSL = shutil.which("openssl")
DEFAULT_ID = "1234567812345678"
SAMPLES = Path(os.environ.get("GOVHUB_SAMPLES_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "samples")
MODULE = SAMPLES / "gbt38540-v4.asn"


def _asn1() -> Any:
    asn1tools = pytest.importorskip("asn1tools")
    if not MODULE.is_file():
        pytest.skip(f"the GB/T 38540 ASN.1 module is not at {MODULE} (set GOVHUB_SAMPLES_DIR)")
    return asn1tools.compile_files(str(MODULE), "der")


def _openssl_sm2() -> str:
    if OPENSSL is None:
        pytest.skip("no openssl on this machine")
    algorithms = subprocess.run([OPENSSL, "list", "-public-key-algorithms"], capture_output=True, text=True, check=False)
    if "SM2" not in algorithms.stdout.upper():
        pytest.skip("this openssl has no SM2")
    return OPENSSL


def _gmssl_verify(cert_der: bytes, data: bytes, signature_der: bytes) -> bool:
    """gmssl (pure Python): SM2 with SM3 over Z computed with the default user ID, key from the certificate."""
    point = asn1_x509.Certificate.load(cert_der).public_key["public_key"].native
    assert point[:1] == b"\x04"
    rs = algos.DSASignature.load(signature_der)
    value = f"{rs['r'].native:064x}{rs['s'].native:064x}"
    return bool(sm2.CryptSM2(private_key=None, public_key=point[1:].hex()).verify_with_sm3(value, data))


def _pem_to_der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _sm2_seal(client: TestClient, hub: Hub) -> tuple[Any, dict[str, Any]]:
    department = hub.department("测试市市场监督管理局")
    response = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm="SM2"))
    assert response.status_code == 201, response.text
    return department, response.json()


def test_an_sm2_seal_and_its_signature_decode_with_the_standards_module_and_verify_with_gmssl(
    client: TestClient, hub: Hub
) -> None:
    module = _asn1()
    department, seal = _sm2_seal(client, hub)
    system = sealer(hub, department)
    data = "准予行政许可决定书 第 2026-001 号".encode()
    signed = client.post(
        "/seal/sign",
        headers={**system.headers, "Accept": "application/octet-stream"},
        json={"purpose": "行政许可", "data_base64": base64.b64encode(data).decode(), "content_type": "text/plain"},
    )
    assert signed.status_code == 200 and signed.headers["content-type"] == "application/octet-stream"
    der = signed.content
    # decoded by a decoder generated from the standard's module, not by the hub's classes
    decoded = module.decode("SES-Signature", der)
    tbs = decoded["toSign"]
    assert tbs["version"] == 4 and tbs["propertyInfo"] == "text/plain"
    assert tbs["dataHash"][0] == _sm3(data)  # dataHash is SM3 of the data
    assert decoded["signatureAlgID"] == "1.2.156.10197.1.501"
    eseal = tbs["eseal"]
    info = eseal["eSealInfo"]
    assert info["header"] == {"id": "ES", "version": 4, "vid": hub.settings.seal_vendor_id}
    assert info["esID"] == seal["code"] and info["property"]["name"] == seal["name"]
    assert info["property"]["certListType"] == 1
    seal_cert = x509.load_pem_x509_certificate(seal["certificate_pem"].encode()).public_bytes(serialization.Encoding.DER)
    assert info["property"]["certList"] == [seal_cert] and decoded["cert"] == seal_cert
    assert info["picture"]["type"] == "PNG" and info["picture"]["width"] == 42
    purpose = next(e for e in tbs["extDatas"] if e["extnID"] == sesder.EXT_PURPOSE)
    assert purpose["extnValue"].decode() == "行政许可"
    assert eseal["signAlgID"] == "1.2.156.10197.1.501"
    # what asn1tools re-encodes is what was signed: gmssl checks both SM2 signatures over those bytes
    assert module.encode("SES-Signature", decoded) == der
    assert _gmssl_verify(decoded["cert"], module.encode("TBS-Sign", tbs), decoded["signature"][0])
    assert _gmssl_verify(eseal["cert"], module.encode("SES-SealInfo", info), eseal["signedValue"][0])
    assert not _gmssl_verify(decoded["cert"], module.encode("TBS-Sign", tbs) + b"x", decoded["signature"][0])
    # the seal alone (SESeal), as GET /seals/{id}/structure serves it
    alone = client.get(f"/seals/{seal['id']}/structure", headers={**hub.admin.headers, "Accept": "application/octet-stream"})
    assert module.decode("SESeal", alone.content) == eseal
    # and the hub's own verifier, given the DER as a file
    report = client.post(
        "/seal/verify/signature/der", files={"file": ("data.txt", data), "signature": ("SignedValue.dat", der)}
    ).json()
    assert report["verdict"] == "valid", report["reasons"]
    assert report["format"] == "GB/T 38540 SES_Signature version 4 (DER)"
    assert report["checks"]["chain"]["message"].startswith("chain of 3 certificates")


def test_the_sm2_chain_verifies_with_openssl_and_its_crl_lists_a_revoked_seal(
    client: TestClient, hub: Hub, tmp_path: Path
) -> None:
    openssl = _openssl_sm2()
    _, seal = _sm2_seal(client, hub)
    ca = client.get("/seal/ca").json()
    (tmp_path / "root.pem").write_text(ca["sm2_root"])
    (tmp_path / "issuing.pem").write_text(ca["sm2_issuing"])
    (tmp_path / "maker.pem").write_text(ca["sm2_maker"])
    (tmp_path / "seal.pem").write_text(seal["certificate_pem"])
    text = subprocess.run(
        [openssl, "x509", "-noout", "-text", "-in", str(tmp_path / "seal.pem")], capture_output=True, text=True, check=True
    ).stdout
    assert text.count("SM2-with-SM3") == 2 and "ASN1 OID: SM2" in text
    assert f"URI:{hub.settings.public_url}/seal/crl/sm2" in text
    # OpenSSL 3.0 checks an SM2 certificate with an empty user ID unless told the standard's default one, and
    # `-vfyopt distid:` reaches only the certificate verified, not an intermediate: each link is checked on its own
    links = [("issuing.pem", "root.pem"), ("seal.pem", "issuing.pem"), ("maker.pem", "issuing.pem")]
    for leaf, anchor in links:
        result = subprocess.run(
            [
                openssl,
                "verify",
                "-vfyopt",
                f"distid:{DEFAULT_ID}",
                "-partial_chain",
                "-CAfile",
                str(tmp_path / anchor),
                str(tmp_path / leaf),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0 and ": OK" in result.stdout, (leaf, result.stdout, result.stderr)
    without_id = subprocess.run(
        [openssl, "verify", "-partial_chain", "-CAfile", str(tmp_path / "issuing.pem"), str(tmp_path / "seal.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert without_id.returncode != 0  # the signature is over Z of the default ID, not of an empty one
    # gmssl checks every certificate's SM2 signature too, over its TBSCertificate
    ders = {
        name: asn1_x509.Certificate.load(_pem_to_der(tmp_path / f"{name}.pem")) for name in ("root", "issuing", "maker", "seal")
    }
    for child, parent in (("root", "root"), ("issuing", "root"), ("maker", "issuing"), ("seal", "issuing")):
        cert = ders[child]
        assert _gmssl_verify(ders[parent].dump(), cert["tbs_certificate"].dump(), bytes(cert["signature_value"].native)), child
    other_root = client.get("/seal/ca").json()["root"]  # the P-256 root does not vouch for the SM2 chain
    (tmp_path / "p256.pem").write_text(other_root)
    wrong = subprocess.run(
        [
            openssl,
            "verify",
            "-vfyopt",
            f"distid:{DEFAULT_ID}",
            "-partial_chain",
            "-CAfile",
            str(tmp_path / "p256.pem"),
            str(tmp_path / "issuing.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode != 0

    before = client.get("/seal/crl/sm2")
    assert before.status_code == 200 and before.headers["content-type"] == "application/pkix-crl"
    revoked = client.post(f"/seals/{seal['id']}/revoke", headers=hub.admin.headers, json={"reason": "印章遗失"})
    assert revoked.status_code == 200, revoked.text
    after = client.get("/seal/crl/sm2").content
    (tmp_path / "sm2.crl").write_bytes(after)
    listing = subprocess.run(
        [openssl, "crl", "-inform", "DER", "-in", str(tmp_path / "sm2.crl"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    serial = x509.load_pem_x509_certificate(seal["certificate_pem"].encode()).serial_number
    assert f"{serial:X}" in listing.replace(":", "").upper() and "Cessation Of Operation" in listing
    assert "SM2-with-SM3" in listing and "X509v3 CRL Number" in listing
    old = asn1_crl.CertificateList.load(before.content)
    new = asn1_crl.CertificateList.load(after)
    assert new.crl_number_value.native == old.crl_number_value.native + 1 and not old["tbs_cert_list"]["revoked_certificates"]
    # the CRL's SM2 signature, checked by OpenSSL with the standard's default user ID (`openssl crl -verify`
    # in OpenSSL 3.0 has no way to give one and checks with an empty ID), and by gmssl
    (tmp_path / "tbs.der").write_bytes(new["tbs_cert_list"].dump())
    (tmp_path / "sig.der").write_bytes(bytes(new["signature"].native))
    subprocess.run(
        [openssl, "x509", "-in", str(tmp_path / "issuing.pem"), "-pubkey", "-noout", "-out", str(tmp_path / "issuing.pub")],
        check=True,
    )
    checked = subprocess.run(
        [
            openssl,
            "pkeyutl",
            "-verify",
            "-rawin",
            "-digest",
            "sm3",
            "-pubin",
            "-inkey",
            str(tmp_path / "issuing.pub"),
            "-pkeyopt",
            f"distid:{DEFAULT_ID}",
            "-in",
            str(tmp_path / "tbs.der"),
            "-sigfile",
            str(tmp_path / "sig.der"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0 and "Signature Verified Successfully" in checked.stdout, checked.stderr
    issuing_der = x509.load_pem_x509_certificate(ca["sm2_issuing"].encode()).public_bytes(serialization.Encoding.DER)
    assert _gmssl_verify(issuing_der, new["tbs_cert_list"].dump(), bytes(new["signature"].native))


def test_the_p256_chain_keeps_its_crl_which_openssl_checks(client: TestClient, hub: Hub, tmp_path: Path) -> None:
    """PAdES still uses the P-256 chain: its seals name the P-256 CRL, and `openssl crl -verify` accepts it."""
    openssl = OPENSSL or pytest.skip("no openssl on this machine")
    department = hub.department()
    seal = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm="ES256")).json()
    ca = client.get("/seal/ca").json()
    (tmp_path / "cas.pem").write_text(ca["root"] + ca["issuing"])
    (tmp_path / "seal.pem").write_text(seal["certificate_pem"])
    client.post(f"/seals/{seal['id']}/suspend", headers=hub.admin.headers, json={"reason": "保管人变更"}).raise_for_status()
    (tmp_path / "p256.crl").write_bytes(client.get("/seal/crl/p256").content)
    verified = subprocess.run(
        [
            openssl,
            "crl",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "p256.crl"),
            "-CAfile",
            str(tmp_path / "cas.pem"),
            "-noout",
            "-verify",
            "-text",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0 and "verify OK" in verified.stderr + verified.stdout, verified.stderr
    assert "Certificate Hold" in verified.stdout  # a suspended seal is on hold
    subprocess.run(
        [openssl, "crl", "-inform", "DER", "-in", str(tmp_path / "p256.crl"), "-out", str(tmp_path / "p256.crl.pem")], check=True
    )
    on_hold = subprocess.run(
        [
            openssl,
            "verify",
            "-crl_check",
            "-CRLfile",
            str(tmp_path / "p256.crl.pem"),
            "-CAfile",
            str(tmp_path / "cas.pem"),
            str(tmp_path / "seal.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert on_hold.returncode != 0 and "certificate revoked" in on_hold.stdout + on_hold.stderr
    client.post(f"/seals/{seal['id']}/resume", headers=hub.admin.headers, json={"reason": "交接完成"}).raise_for_status()
    (tmp_path / "p256.crl").write_bytes(client.get("/seal/crl/p256").content)
    cleared = subprocess.run(
        [openssl, "crl", "-inform", "DER", "-in", str(tmp_path / "p256.crl"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "No Revoked Certificates" in cleared


def _ofd_samples() -> list[Path]:
    folder = SAMPLES / "ofd"
    found = sorted(folder.glob("*.ofd")) if folder.is_dir() else []
    if not found:
        pytest.skip(f"no sealed OFD samples in {folder} (set GOVHUB_SAMPLES_DIR)")
    return found


def _signatures(path: Path) -> list[tuple[str, bytes, bytes]]:
    """(signature folder, Signature.xml, SignedValue.dat) of every seal signature in an OFD."""
    with zipfile.ZipFile(path) as ofd:
        names = ofd.namelist()
        out = []
        for name in names:
            if name.endswith("/SignedValue.dat"):
                folder = name.rsplit("/", 1)[0]
                out.append((folder, ofd.read(f"{folder}/Signature.xml"), ofd.read(name)))
        return out


def test_other_producers_seal_signatures_in_ofd_documents_are_read_and_verified(client: TestClient) -> None:
    module = _asn1()
    seen: dict[str, dict[str, Any]] = {}
    for path in _ofd_samples():
        for _folder, signature_xml, der in _signatures(path):
            report = client.post(
                "/seal/verify/signature/der",
                files={"file": ("Signature.xml", signature_xml), "signature": ("SignedValue.dat", der)},
            )
            assert report.status_code == 200, (path.name, report.text)
            seen[path.name] = body = report.json()
            checks = body["checks"]
            if path.name.startswith("sesv4"):
                assert module.decode("SES-Signature", der)["toSign"]["version"] == 4
                # signature, data hash and the seal maker's signature check out; the issuers are test CAs
                assert checks["document_integrity"]["status"] == "passed", body
                assert checks["signature"]["status"] == "passed", body
                assert "the maker is not trusted" in checks["seal_structure"]["message"]
                assert checks["chain"]["status"] == "indeterminate"
                if path.name == "sesv4-ofdrw.ofd":  # its seal was valid 2020-04-22 .. 2022-04-22, used in 2026
                    assert checks["seal_period"]["status"] == "failed" and body["verdict"] == "invalid"
                    assert "outside the seal's validity period" in checks["seal_period"]["message"]
                else:
                    assert checks["seal_period"]["status"] == "passed" and body["verdict"] == "indeterminate"
                assert body["format"] == "GB/T 38540 SES_Signature version 4 (DER)"
                # one changed byte of the signed file, or of the signature value, fails
                changed = bytearray(signature_xml)
                changed[len(changed) // 2] ^= 0x01
                broken = client.post(
                    "/seal/verify/signature/der",
                    files={"file": ("Signature.xml", bytes(changed)), "signature": ("SignedValue.dat", der)},
                ).json()
                assert broken["verdict"] == "invalid" and broken["sub_indication"] == "HASH_FAILURE"
                forged = bytearray(der)
                forged[-5] ^= 0x01  # inside the signature value at the end of SES_Signature
                refused = client.post(
                    "/seal/verify/signature/der",
                    files={"file": ("Signature.xml", signature_xml), "signature": ("SignedValue.dat", bytes(forged))},
                )
                assert refused.status_code == 422 or refused.json()["verdict"] == "invalid"
            else:
                # the GM/T 0031 version-1 layout: read and reported
                assert body["format"] == "GB/T 38540 SES_Signature version 1 (DER)"
                assert body["seal"]["seal_name"] == "某某省人力资源和社会测试章" and body["seal"]["version"] == 1
                assert body["verdict"] in ("invalid", "indeterminate") and body["reasons"]
    assert {"sesv4-ofdrw.ofd", "sesv4-gomain-invoice.ofd"} <= set(seen)


def test_a_seal_signature_read_in_place_reads_as_asn1crypto_and_the_standards_module_read_it(
    client: TestClient, hub: Hub
) -> None:
    """Version-4 signatures (the hub's, time-stamped, and other producers' in the sample OFDs) read by the small DER
    reader give what the asn1crypto classes give, field by field, and what a decoder generated from the standard's
    module finds; a signature cut short is refused by both."""
    from seal import derread, sesder

    module = _asn1()
    department, _seal = _sm2_seal(client, hub)
    signed = client.post(
        "/seal/sign",
        headers={**sealer(hub, department).headers, "Accept": "application/octet-stream"},
        json={"purpose": "行政许可", "data_base64": base64.b64encode(b"decision").decode(), "content_type": "text/plain"},
    )
    assert signed.status_code == 200, signed.text
    samples = [der for path in _ofd_samples() if path.name.startswith("sesv4") for _f, _x, der in _signatures(path)]
    version_4 = [signed.content, *samples]
    assert signed.content in version_4 and len(version_4) > 1
    for der in version_4:
        read = sesder._read_v4(der)
        assert read == sesder._read_with_asn1crypto(der, 4)
        decoded = module.decode("SES-Signature", der)
        assert read.data_hash == decoded["toSign"]["dataHash"][0]
        assert read.signature == decoded["signature"][0] and read.signer_cert == decoded["cert"]
        assert read.timestamp == (decoded["timeStamp"][0] if "timeStamp" in decoded else None)
        assert read.property_info == decoded["toSign"]["propertyInfo"]
    assert sesder.parse_signature(signed.content).timestamp is not None  # the hub stamps its signatures
    # cut short: the reader refuses it, and so does asn1crypto, with a reason
    with pytest.raises(derread.Unreadable):
        sesder._read_v4(signed.content[:-1])
    with pytest.raises(sesder.DerError):
        sesder.parse_signature(signed.content[:-1])


def test_a_legacy_version_1_signature_is_read_and_its_findings_reported(client: TestClient) -> None:
    """The legacy sample: its producer signed the data hash itself; that hash is not the one of its
    Signature.xml as the document carries it now, and its seal maker's signature does not verify as the standard
    says: each finding is reported with its reason."""
    legacy = SAMPLES / "ofd" / "sesv1-legacy.ofd"
    if not legacy.is_file():
        pytest.skip(f"no legacy sample at {legacy}")
    [(_, signature_xml, der)] = _signatures(legacy)
    parsed = sesder.parse_signature(der)
    assert parsed.version == 1 and parsed.seal.vendor_id == "dms360.cn" and parsed.seal.picture_type == "PNG"
    assert parsed.time_info is not None and parsed.time_info.year == 2020
    # gmssl agrees the signature value is an SM2 signature of the data hash itself (no Z, no TBS_Sign)
    rs = algos.DSASignature.load(parsed.signature)
    point = asn1_x509.Certificate.load(parsed.signer_cert).public_key["public_key"].native[1:].hex()
    assert sm2.CryptSM2(private_key=None, public_key=point).verify(
        f"{rs['r'].native:064x}{rs['s'].native:064x}", parsed.data_hash
    )
    body = client.post(
        "/seal/verify/signature/der", files={"file": ("Signature.xml", signature_xml), "signature": ("SignedValue.dat", der)}
    ).json()
    assert body["checks"]["signature"]["status"] == "warning" and "data hash itself" in body["checks"]["signature"]["message"]
    assert body["checks"]["document_integrity"]["status"] == "failed"
    assert body["verdict"] == "invalid"


def _signed_at(db: Session, vault: KeyVault, seal: Seal, at: Any, *, alg_oid: str = sesder.SM2_SM3) -> bytes:
    """A DER seal signature made with the seal's own key at a chosen time (as a signer could claim)."""
    signer = service.signer_for(db, seal=seal, vault=vault)
    assert seal.structure_der is not None
    tbs = sesder.to_sign(seal_der=seal.structure_der, at=at, data_hash=_sm3(b"data"), property_info="x", extensions=[])
    value = keys.raw_to_der(seal.alg, signer.sign(tbs.dump()))
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode()).public_bytes(serialization.Encoding.DER)
    return sesder.signature(tbs, cert=cert, alg=alg_oid, value=value)


def test_bad_der_seal_signatures_get_a_4xx_or_an_invalid_verdict_with_the_reason(
    client: TestClient, hub: Hub, db: Session, app: Any
) -> None:
    department, created = _sm2_seal(client, hub)
    system = sealer(hub, department)
    seal = db.get(Seal, created["id"])
    assert seal is not None
    vault: KeyVault = app.state.vault

    def verify(der: bytes) -> Any:
        return client.post(
            "/seal/verify/signature", json={"signature": base64.b64encode(der).decode(), "data_base64": "ZGF0YQ=="}
        )

    good = _signed_at(db, vault, seal, utcnow())
    assert verify(good).json()["verdict"] == "valid"
    for broken, says in [
        (good[: len(good) // 2], "Insufficient data"),  # truncated
        (b"\x30\x03\x02\x01\x04", "not a seal signature"),
        (b"not DER at all", "does not start with a DER SEQUENCE"),
        (good + b"\x00", "trailing"),  # bytes after the structure
    ]:
        response = verify(broken)
        assert response.status_code == 422 and says in response.json()["detail"], response.text
    empty = client.post("/seal/verify/signature", json={"signature": "", "data_base64": "ZGF0YQ=="})
    assert empty.status_code == 422
    # a wrong algorithm OID: the verdict says which
    wrong = verify(_signed_at(db, vault, seal, utcnow(), alg_oid="1.2.840.113549.1.1.11")).json()
    assert wrong["verdict"] == "invalid" and "1.2.840.113549.1.1.11 is not supported" in wrong["checks"]["signature"]["message"]
    # a time outside the seal's validity period
    late = verify(_signed_at(db, vault, seal, seal.valid_to + timedelta(days=2))).json()
    assert late["verdict"] == "invalid" and late["checks"]["seal_period"]["status"] == "failed"
    assert "outside the seal's validity period" in late["checks"]["seal_period"]["message"]
    # a revoked seal: no more sealing, and a signature claiming a time after the revocation is invalid
    client.post(f"/seals/{seal.id}/revoke", headers=hub.admin.headers, json={"reason": "印章遗失"}).raise_for_status()
    db.expire_all()
    refused = client.post("/seal/sign", headers=system.headers, json={"purpose": "回执", "data_base64": "ZGF0YQ=="})
    assert refused.status_code == 409 and "no active seal" in refused.json()["detail"], refused.text
    after = verify(_signed_at(db, vault, seal, utcnow() + timedelta(minutes=1))).json()
    assert after["verdict"] == "invalid" and after["sub_indication"] == "REVOKED", after


def test_a_seal_made_before_the_der_form_gets_it_from_the_migration(db: Session, hub: Hub, app: Any) -> None:
    from tests.seal.helpers import make_seal

    vault: KeyVault = app.state.vault
    department = hub.department()
    seal = make_seal(db, vault, department.id, algorithm="SM2")
    seal.structure_der = None  # as a seal made before the DER form
    seal.structure = {"eSealInfo": {}, "signInfo": {}}
    db.flush()
    assert service.migrate_der(db, vault=vault, settings=hub.settings) == 1
    assert service.migrate_der(db, vault=vault, settings=hub.settings) == 0
    assert seal.structure_der is not None and seal.structure["esID"] == seal.code
    parsed = sesder.parse_seal(seal.structure_der)
    assert parsed.es_id == seal.code and parsed.maker_alg == sm2ca.SM2_SM3
    system = hub.system(department)
    assert system.client is not None
    grant(db, seal.id, system.client.client_id, kind="client")  # 用印授权, as its department administrator
    user = Principal(subject=system.client.client_id, roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=department.id)
    signed = service.sign_detached(
        db,
        vault=vault,
        department_id=department.id,
        data=b"data",
        purpose="迁移后用印",
        actor=user,
        settings=hub.settings,
    )
    assert service.verify_detached(db, signature=signed, data=b"data", settings=hub.settings).verdict == "valid"


def test_a_seal_signature_in_the_earlier_json_form_still_verifies(db: Session, hub: Hub, app: Any) -> None:
    """Signatures made before the DER form (the hub's JSON encoding, P-256 seal maker) keep verifying."""
    from seal import authority, ses
    from tests.seal.helpers import make_seal

    vault: KeyVault = app.state.vault
    seal = make_seal(db, vault, hub.department().id, algorithm="ES256")
    maker = authority.ensure_authority(db, vault).maker
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    info = {
        "header": {"id": "ES", "version": 4, "vid": "GOVHUB"},
        "esID": seal.code,
        "property": {"type": 1, "name": seal.name, "certListType": 1, "certList": [ses.b64(ses.der(cert))]},
    }
    eseal = {
        "eSealInfo": info,
        "signInfo": {
            "cert": ses.b64(ses.der(maker.certificate)),
            "signatureAlgorithm": keys.SIGNATURE_OID[keys.ES256],
            "signData": ses.b64(keys.sign_with(keys.ES256, maker.private, ses.canonical(info))),
        },
    }
    tbs = {"version": 4, "eseal": eseal, "timeInfo": ses.timestamp(utcnow()), "dataHash": ses.b64(keys.digest("ES256", b"d"))}
    value = service.signer_for(db, seal=seal, vault=vault).sign(ses.canonical(tbs))
    old = {"toSign": tbs, "cert": ses.b64(ses.der(cert)), "signatureAlgorithm": keys.SIGNATURE_OID[keys.ES256]}
    old["signature"] = ses.b64(value)
    report = service.verify_detached(db, signature=old, data=b"d", settings=hub.settings)
    assert report.checks["signature"].status == "passed" and report.checks["seal_structure"].status == "passed"
    assert report.checks["chain"].status == "passed" and report.format is None
    assert service.verify_detached(db, signature=old, data=b"e", settings=hub.settings).verdict == "invalid"


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_p256_and_ed25519_seal_signatures_are_der_too_with_the_sm2_makers_seal(
    client: TestClient, hub: Hub, algorithm: str
) -> None:
    """Seals for PAdES keep their P-256 / Ed25519 keys; their seal signatures are GB/T 38540 DER all the same,
    and their seals are signed by the SM2 seal maker."""
    module = _asn1()
    department = hub.department()
    client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm=algorithm)).raise_for_status()
    signed = client.post(
        "/seal/sign", headers=sealer(hub, department).headers, json={"purpose": "回执", "data_base64": "ZGF0YQ=="}
    ).json()
    decoded = module.decode("SES-Signature", base64.b64decode(signed["der_base64"]))
    assert decoded["signatureAlgID"] == keys.SIGNATURE_OID[algorithm]
    eseal = decoded["toSign"]["eseal"]
    assert eseal["signAlgID"] == sm2ca.SM2_SM3
    assert _gmssl_verify(eseal["cert"], module.encode("SES-SealInfo", eseal["eSealInfo"]), eseal["signedValue"][0])
    report = client.post("/seal/verify/signature", json={"signature": signed, "data_base64": "ZGF0YQ=="}).json()
    assert report["verdict"] == "valid", report["reasons"]


@pytest.mark.parametrize(
    ("property_info", "extensions", "timestamp"),
    [
        (
            "/Doc_0/Signs/Sign_0/Signature.xml",
            [sesder.Extension(sesder.EXT_PURPOSE, False, "电子证照 居民身份证".encode())],
            b"\x30\x03\x02\x01\x05",
        ),
        ("application/octet-stream", [], None),
        (
            "x" * 300,
            [sesder.Extension(sesder.EXT_PURPOSE, True, b"y" * 200), sesder.Extension(sesder.EXT_SEAL_TYPE, False, b"")],
            b"t" * 3000,
        ),
    ],
)
def test_the_seal_signature_assembled_from_der_is_the_one_asn1crypto_builds(
    property_info: str, extensions: list[sesder.Extension], timestamp: bytes | None
) -> None:
    """TBS_Sign and SES_Signature as the sealing path assembles them are byte for byte what asn1crypto builds from
    the same values (another producer's seal inside, kept as it is)."""
    sample = SAMPLES / "ofd" / "sesv4-ofdrw.ofd"
    if not sample.is_file():
        pytest.skip(f"no sample OFD at {sample} (set GOVHUB_SAMPLES_DIR)")
    seal_der = zipfile.ZipFile(sample).read("Doc_0/Signs/Sign_0/Seal.esl")
    at = utcnow()
    digest = _sm3(b"the Signature.xml")
    values = {"seal_der": seal_der, "at": at, "data_hash": digest, "property_info": property_info, "extensions": extensions}
    tbs = sesder.to_sign_der(**values)  # type: ignore[arg-type]
    assert tbs == bytes(sesder.to_sign(**values).dump())  # type: ignore[arg-type]
    cert, value = b"\x30" + bytes(200), b"\x30\x44" + bytes(68)
    ours = sesder.signature_der(tbs, cert=cert, alg=sesder.SM2_SM3, value=value, timestamp=timestamp)
    theirs = sesder.signature(sesder.TBSSign.load(tbs), cert=cert, alg=sesder.SM2_SM3, value=value, timestamp=timestamp)
    assert ours == theirs
    assert sesder.signature_der(tbs, cert=cert, alg=sesder.SM2_SM3, value=value) != ours or timestamp is None
