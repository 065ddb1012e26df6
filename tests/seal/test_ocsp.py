"""Revocation data of the hub's CAs, checked with implementations that are not ours: `openssl ocsp` asks a served
hub about a seal's certificate before and after it is revoked, `openssl crl -verify` checks the P-256 CRL,
`cryptography` builds requests and parses answers, gmssl checks the SM2-with-SM3 signature of the SM2 answers."""

from __future__ import annotations

import base64
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from fastapi.testclient import TestClient
from gmssl import sm2

from ops.db import utcnow
from ops.hubprocess import HubProcess, free_port
from seal import service
from tests.conftest import Hub
from tests.factories import uscc
from tests.seal.helpers import seal_body

OPENSSL = shutil.which("openssl")
DEFAULT_ID = "1234567812345678"
OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}


def _openssl() -> str:
    if OPENSSL is None:
        pytest.skip("no openssl on this machine")
    return OPENSSL


def _request(cert: x509.Certificate, issuer: x509.Certificate, *, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303 (OCSP's usual CertID hash)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _pem(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served hub whose public URL is its own address, with a department and three seals (two P-256, one SM2)."""
    port = free_port()
    with HubProcess(scheduler=False, port=port, env={"GOVHUB_PUBLIC_URL": f"http://127.0.0.1:{port}"}) as hub:
        body = {"code": uscc(region="330000"), "name": "浙江省测试局", "level": "province", "region_code": "330000"}
        status, department = hub.request("POST", "/departments", json_body=body, auth=True)
        assert status == 201, department
        seals = {}
        for name, alg in (("kept", "ES256"), ("revoked", "ES256"), ("sm2", "SM2")):
            status, seal = hub.request("POST", "/seals", json_body=seal_body(department["id"], algorithm=alg), auth=True)
            assert status == 201, seal
            seals[name] = seal
        status, ca = hub.request("GET", "/seal/ca")
        assert status == 200
        folder = tmp_path_factory.mktemp("ocsp")
        for name, pem in (("root", ca["root"]), ("issuing", ca["issuing"]), ("sm2_issuing", ca["sm2_issuing"])):
            (folder / f"{name}.pem").write_text(pem)
        for name, seal in seals.items():
            (folder / f"{name}.pem").write_text(seal["certificate_pem"])
        yield {"hub": hub, "seals": seals, "ca": ca, "dir": folder}


def _ask(served: dict[str, Any], cert: str, *extra: str) -> subprocess.CompletedProcess[str]:
    folder: Path = served["dir"]
    return subprocess.run(
        [
            _openssl(),
            "ocsp",
            "-issuer",
            str(folder / "issuing.pem"),
            "-cert",
            str(folder / f"{cert}.pem"),
            "-url",
            f"{served['hub'].base}/seal/ocsp/p256",
            "-CAfile",
            str(folder / "root.pem"),
            "-resp_text",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_openssl_asks_the_hub_about_a_good_then_revoked_seal_certificate(served: dict[str, Any]) -> None:
    hub: HubProcess = served["hub"]
    seal = _pem(served["seals"]["revoked"]["certificate_pem"])
    access = seal.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    urls = {d.access_method: d.access_location.value for d in access}
    assert urls[AuthorityInformationAccessOID.OCSP] == f"{hub.base}/seal/ocsp/p256"
    issuer_der = httpx.get(urls[AuthorityInformationAccessOID.CA_ISSUERS], timeout=30).content
    assert x509.load_der_x509_certificate(issuer_der) == _pem(served["ca"]["issuing"])
    points = seal.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name is not None and points[0].full_name[0].value == f"{hub.base}/seal/crl/p256"

    good = _ask(served, "revoked")
    assert good.returncode == 0, good.stderr
    assert "Response verify OK" in good.stderr and "revoked.pem: good" in good.stdout, good.stdout + good.stderr
    assert "This Update:" in good.stdout and "Next Update:" in good.stdout
    assert "WARNING: no nonce" not in good.stdout + good.stderr  # openssl sends a nonce and checks the echo

    revoke = f"/seals/{served['seals']['revoked']['id']}/revoke"
    status, _ = hub.request("POST", revoke, json_body={"reason": "印章遗失"}, auth=True)
    assert status == 200
    revoked = _ask(served, "revoked")
    assert revoked.returncode == 0 and "Response verify OK" in revoked.stderr, revoked.stderr
    assert "revoked.pem: revoked" in revoked.stdout and "Reason: cessationOfOperation" in revoked.stdout
    assert "Revocation Time:" in revoked.stdout
    kept = _ask(served, "kept")
    assert "kept.pem: good" in kept.stdout, kept.stdout + kept.stderr

    # the P-256 CRL says the same, and verifies with OpenSSL under the issuing CA
    crl = served["dir"] / "p256.crl"
    crl.write_bytes(httpx.get(f"{hub.base}/seal/crl/p256", timeout=30).content)
    checked = subprocess.run(
        [_openssl(), "crl", "-inform", "DER", "-in", str(crl), "-CAfile", str(served["dir"] / "issuing.pem"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "verify OK" in checked.stderr, checked.stderr
    assert f"{seal.serial_number:X}" in checked.stdout.replace(":", "").upper()


def test_the_sm2_responder_signs_sm2_with_sm3(served: dict[str, Any]) -> None:
    hub: HubProcess = served["hub"]
    seal = _pem(served["seals"]["sm2"]["certificate_pem"])
    issuer = _pem(served["ca"]["sm2_issuing"])
    access = seal.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert {d.access_location.value for d in access} == {f"{hub.base}/seal/ocsp/sm2", f"{hub.base}/seal/ca/sm2/issuing.cer"}
    answer = httpx.post(
        f"{hub.base}/seal/ocsp/sm2", content=_request(seal, issuer, nonce=b"sm2-nonce-123456"), headers=OCSP_REQUEST, timeout=30
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/ocsp-response"
    parsed = ocsp.load_der_ocsp_response(answer.content)  # cryptography reads it
    assert parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD and parsed.serial_number == seal.serial_number
    assert parsed.next_update_utc is not None and parsed.next_update_utc > parsed.this_update_utc
    nonce = parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"sm2-nonce-123456"
    assert parsed.signature_algorithm_oid.dotted_string == "1.2.156.10197.1.501"
    # gmssl verifies the SM2-with-SM3 signature over tbsResponseData with the issuing CA's key (default user ID)
    basic = asn1_ocsp.OCSPResponse.load(answer.content).basic_ocsp_response
    point = asn1_x509.Certificate.load(issuer.public_bytes(serialization.Encoding.DER)).public_key["public_key"].native
    r, s = _rs(bytes(basic["signature"].native))
    verifier = sm2.CryptSM2(public_key=point[1:].hex(), private_key="")
    tbs = basic["tbs_response_data"].dump()
    assert verifier.verify_with_sm3(f"{r:064x}{s:064x}", tbs)
    assert not verifier.verify_with_sm3(f"{r:064x}{s:064x}", tbs[:-1] + bytes([tbs[-1] ^ 1]))
    # OpenSSL 3.0 reads the SM2 answer (and checks the nonce), but checks SM2 signatures over Z of an empty user
    # ID with no option to give the standard's one for OCSP: its signature check is left out here (-noverify)
    folder: Path = served["dir"]
    read = subprocess.run(
        [_openssl(), "ocsp", "-issuer", str(folder / "sm2_issuing.pem"), "-cert", str(folder / "sm2.pem"),
         "-url", f"{hub.base}/seal/ocsp/sm2", "-noverify"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert read.returncode == 0 and "sm2.pem: good" in read.stdout, read.stdout + read.stderr


def _rs(signature: bytes) -> tuple[int, int]:
    from asn1crypto import algos

    value = algos.DSASignature.load(signature).native
    return int(value["r"]), int(value["s"])


def test_bad_ocsp_requests_get_answers_in_the_protocols_terms(client: TestClient, hub: Hub) -> None:
    department = hub.department("测试市市场监督管理局")
    made = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id))
    sm2_made = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm="SM2"))
    assert made.status_code == 201 and sm2_made.status_code == 201
    ca = client.get("/seal/ca").json()
    seal, issuing, sm2_issuing = _pem(made.json()["certificate_pem"]), _pem(ca["issuing"]), _pem(ca["sm2_issuing"])

    garbage = client.post("/seal/ocsp/p256", content=b"\x30\x03garbage", headers=OCSP_REQUEST)
    assert garbage.status_code == 400
    assert ocsp.load_der_ocsp_response(garbage.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST

    # a P-256 certificate asked of the SM2 responder: not a CA it answers for
    wrong_chain = client.post("/seal/ocsp/sm2", content=_request(seal, issuing), headers=OCSP_REQUEST)
    assert wrong_chain.status_code == 200
    assert ocsp.load_der_ocsp_response(wrong_chain.content).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED

    # another hub's CA
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another hub's CA")])
    stranger = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(stranger_key.public_key())
        .serial_number(7)
        .not_valid_before(utcnow())
        .not_valid_after(utcnow().replace(year=utcnow().year + 1))
        .sign(stranger_key, hashes.SHA256())
    )
    unknown_ca = client.post("/seal/ocsp/p256", content=_request(stranger, stranger), headers=OCSP_REQUEST)
    assert ocsp.load_der_ocsp_response(unknown_ca.content).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED

    # the SM2 seal's serial asked as if the P-256 CA had issued it: that CA never did
    sm2_serial = _pem(sm2_made.json()["certificate_pem"]).serial_number
    other_serial = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            _request_hashes(issuing)[0],
            _request_hashes(issuing)[1],
            sm2_serial,
            hashes.SHA1(),  # noqa: S303
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    unknown = ocsp.load_der_ocsp_response(client.post("/seal/ocsp/p256", content=other_serial, headers=OCSP_REQUEST).content)
    assert unknown.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert unknown.certificate_status == ocsp.OCSPCertStatus.UNKNOWN

    # the GET form answers the same as POST; a path that is not base64 is a malformed request
    encoded = urllib.parse.quote(base64.b64encode(_request(seal, issuing)).decode(), safe="")
    by_get = client.get(f"/seal/ocsp/p256/{encoded}")
    assert by_get.status_code == 200
    good = ocsp.load_der_ocsp_response(by_get.content)
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD and good.serial_number == seal.serial_number
    bad_get = client.get("/seal/ocsp/p256/not*base64")
    assert bad_get.status_code == 400
    assert ocsp.load_der_ocsp_response(bad_get.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST

    assert client.post("/seal/ocsp/p256", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert client.post("/seal/ocsp/rsa", content=_request(seal, issuing), headers=OCSP_REQUEST).status_code == 422
    sm2_good = client.post(
        "/seal/ocsp/sm2", content=_request(_pem(sm2_made.json()["certificate_pem"]), sm2_issuing), headers=OCSP_REQUEST
    )
    assert ocsp.load_der_ocsp_response(sm2_good.content).certificate_status == ocsp.OCSPCertStatus.GOOD
    # the hub's time-stamp authority's certificate is one the P-256 issuing CA issued: good
    with hub.factory() as db:
        tsa_cert = service.ensure_tsa(db, hub.app.state.vault).certificate
    tsa_status = client.post("/seal/ocsp/p256", content=_request(tsa_cert, issuing), headers=OCSP_REQUEST)
    assert ocsp.load_der_ocsp_response(tsa_status.content).certificate_status == ocsp.OCSPCertStatus.GOOD


def _request_hashes(issuer: x509.Certificate) -> tuple[bytes, bytes]:
    import hashlib

    cert = asn1_x509.Certificate.load(issuer.public_bytes(serialization.Encoding.DER))
    return hashlib.sha1(cert.subject.dump()).digest(), hashlib.sha1(cert.public_key["public_key"].contents[1:]).digest()  # noqa: S324


def test_mangled_ocsp_requests_are_answered_never_a_server_error(client: TestClient) -> None:
    from tests.seal.test_tsa import _mangled

    issuing = _pem(client.get("/seal/ca").json()["issuing"])
    good = _request(issuing, issuing, nonce=b"0123456789abcdef")
    seen = set()
    for query in _mangled(good, 150, seed=6960):
        answer = client.post("/seal/ocsp/p256", content=query, headers=OCSP_REQUEST)
        assert answer.status_code in (200, 400), (query.hex(), answer.status_code, answer.text[:200])
        seen.add(ocsp.load_der_ocsp_response(answer.content).response_status)
    assert ocsp.OCSPResponseStatus.MALFORMED_REQUEST in seen
