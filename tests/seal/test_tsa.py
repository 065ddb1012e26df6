"""The hub's own time-stamp authority (RFC 3161), checked with implementations that are not ours: OpenSSL's
`ts` makes the requests and verifies the replies, pyHanko's HTTPTimeStamper asks a served hub."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from fastapi.testclient import TestClient
from sqlalchemy import select

from ops.hubprocess import HubProcess
from seal import service, tsa
from seal.models import AuthorityKey
from tests.conftest import Hub

OPENSSL = shutil.which("openssl")
QUERY = {"Content-Type": "application/timestamp-query"}


def _openssl() -> str:
    if OPENSSL is None:
        pytest.skip("no openssl on this machine")
    return OPENSSL


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_openssl(), *args], capture_output=True, text=True, check=False)


def _trust_files(client: TestClient, tmp_path: Path, tsa_pem: str) -> tuple[Path, Path]:
    ca = client.get("/seal/ca").json()
    root, untrusted = tmp_path / "root.pem", tmp_path / "untrusted.pem"
    root.write_text(ca["root"])
    untrusted.write_text(ca["issuing"] + tsa_pem)
    return root, untrusted


def test_openssl_stamps_a_file_at_the_hub_tsa_and_verifies_the_reply(client: TestClient, hub: Hub, tmp_path: Path) -> None:
    document = tmp_path / "会议纪要.pdf"
    document.write_bytes(b"%PDF-1.7 minutes of the meeting " * 50)
    query = tmp_path / "request.tsq"
    made = _run("ts", "-query", "-data", str(document), "-sha256", "-cert", "-out", str(query))
    assert made.returncode == 0, made.stderr

    answer = client.post("/tsa", content=query.read_bytes(), headers=QUERY)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/timestamp-reply"
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(answer.content)
    text = _run("ts", "-reply", "-in", str(reply), "-text")
    assert text.returncode == 0, text.stderr
    assert "Status: Granted." in text.stdout and f"Policy OID: {tsa.POLICY}" in text.stdout
    assert "Nonce: 0x" in text.stdout and "Accuracy: 0x01 seconds" in text.stdout

    with hub.factory() as db:
        tsa_cert = service.ensure_tsa(db, hub.app.state.vault).certificate
    from cryptography.hazmat.primitives import serialization

    root, untrusted = _trust_files(client, tmp_path, tsa_cert.public_bytes(serialization.Encoding.PEM).decode())
    verified = _run(
        "ts", "-verify", "-data", str(document), "-in", str(reply), "-CAfile", str(root), "-untrusted", str(untrusted)
    )
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stdout + verified.stderr

    # the same reply does not vouch for other bytes
    other = tmp_path / "other.pdf"
    other.write_bytes(b"%PDF-1.7 another document")
    refused = _run("ts", "-verify", "-data", str(other), "-in", str(reply), "-CAfile", str(root), "-untrusted", str(untrusted))
    assert refused.returncode != 0 and "Verification: FAILED" in refused.stdout


def test_the_tsa_certificate_is_for_time_stamping_only_and_its_key_is_wrapped(hub: Hub) -> None:
    with hub.factory() as db:
        first = service.ensure_tsa(db, hub.app.state.vault)
        db.commit()
        again = service.ensure_tsa(db, hub.app.state.vault)
        row = db.scalars(select(AuthorityKey).where(AuthorityKey.id == first.key_id)).one()
    assert again.key_id == first.key_id  # made once, then reused
    usage = first.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert usage.critical and list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert first.certificate.issuer == first.issuer.subject
    first.certificate.verify_directly_issued_by(first.issuer)
    assert "PRIVATE KEY" not in str(row.private_key)  # encrypted at rest under the master key


def _rejected(client: TestClient, tmp_path: Path, query: bytes) -> str:
    """What OpenSSL reads in the hub's answer to `query`: a rejection, with HTTP 400."""
    answer = client.post("/tsa", content=query, headers=QUERY)
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/timestamp-reply"
    (tmp_path / "rejected.tsr").write_bytes(answer.content)
    text = _run("ts", "-reply", "-in", str(tmp_path / "rejected.tsr"), "-text")
    assert text.returncode == 0 and "Status: Rejected." in text.stdout, text.stdout + text.stderr
    return text.stdout


def test_bad_requests_get_a_rejection_that_says_why(client: TestClient, tmp_path: Path) -> None:
    garbage = _rejected(client, tmp_path, b"not a time-stamp request")
    assert "not a DER TimeStampReq" in garbage and "Failure info: the data submitted has the wrong format" in garbage

    document = tmp_path / "doc.txt"
    document.write_bytes(b"hello")
    query = tmp_path / "q.tsq"
    assert _run("ts", "-query", "-data", str(document), "-sha1", "-out", str(query)).returncode == 0
    sha1 = _rejected(client, tmp_path, query.read_bytes())
    assert "sha1 is not accepted" in sha1 and "unsupported algorithm" in sha1

    assert _run("ts", "-query", "-data", str(document), "-tspolicy", "1.2.3.4", "-out", str(query)).returncode == 0
    policy = _rejected(client, tmp_path, query.read_bytes())
    assert "policy 1.2.3.4 is not this TSA's" in policy and "Failure info: the requested TSA policy is not supported" in policy

    short = tsp.TimeStampReq(
        {"version": 1, "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x01" * 20}}
    )
    assert "the imprint is 20 bytes; a sha256 digest has 32" in _rejected(client, tmp_path, short.dump())

    not_a_query = client.post("/tsa", content=b"{}", headers={"Content-Type": "application/json"})
    assert not_a_query.status_code == 415 and "application/timestamp-query" in not_a_query.json()["detail"]
    too_big = client.post("/tsa", content=b"\x30" * (tsa.MAX_REQUEST_BYTES + 1), headers=QUERY)
    assert too_big.status_code == 413


def test_the_in_process_time_stamper_gives_pyhanko_a_token(hub: Hub) -> None:
    with hub.factory() as db:
        stamper = service.hub_timestamper(db, hub.app.state.vault)
        db.commit()
    digest = hashlib.sha256(b"the signature value").digest()
    token = asyncio.run(stamper.async_timestamp(digest, "sha256"))
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == digest
    assert info["policy"].dotted == tsa.POLICY


def test_pyhanko_http_timestamper_stamps_at_a_served_hub(tmp_path: Path) -> None:
    from pyhanko.sign.timestamps import HTTPTimeStamper

    from seal import timestamps

    with HubProcess(scheduler=False) as served:
        stamper = HTTPTimeStamper(f"{served.base}/tsa", timeout=30)
        value = b"a detached seal signature value"
        token = timestamps.stamp(value, stamper)
        status, ca = served.request("GET", "/seal/ca")
        assert status == 200
    roots = [x509.load_pem_x509_certificate(ca["root"].encode())]
    intermediates = [x509.load_pem_x509_certificate(ca["issuing"].encode())]
    checked = timestamps.check(token, value, roots=roots, intermediates=intermediates)
    assert checked.ok, checked.message
    assert not timestamps.check(token, b"other bytes", roots=roots, intermediates=intermediates).ok


def _mangled(good: bytes, count: int, seed: int) -> list[bytes]:
    """`count` versions of `good` with a few bytes changed, dropped or added, and some random bytes."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(count):
        data = bytearray(good) if i % 10 else bytearray(rng.randbytes(rng.randint(1, 120)))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            change = rng.random()
            if change < 0.6:
                data[at] = rng.randrange(256)
            elif change < 0.8 and len(data) > 1:
                del data[at]
            else:
                data.insert(at, rng.randrange(256))
        out.append(bytes(data))
    return out


def test_mangled_requests_are_answered_never_a_server_error(client: TestClient) -> None:
    good = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(b"x").digest()},
            "nonce": 42,
            "cert_req": True,
        }
    ).dump()
    statuses = set()
    for query in _mangled(good, 150, seed=3161):
        answer = client.post("/tsa", content=query, headers=QUERY)
        assert answer.status_code in (200, 400), (query.hex(), answer.status_code, answer.text[:200])
        assert answer.headers["content-type"] == "application/timestamp-reply"
        statuses.add(answer.status_code)
    assert 400 in statuses  # most are refused; a change inside the imprint or the nonce is still a request


def test_a_hub_token_is_checked_directly_and_agrees_with_pyhanko_on_good_forged_and_untrusted_tokens(hub: Hub) -> None:
    """The direct check of a time stamp (no pyHanko CMS validation per token) gives the verdicts pyHanko's full
    validation gives, for the hub TSA's tokens: over this signature, over another, tampered, and untrusted."""
    from seal import authority, timestamps

    with hub.factory() as db:
        stamper = service.hub_timestamper(db, hub.app.state.vault)
        roots, intermediates = authority.trusted_certificates(db)
        db.commit()
    value = b"the seal signature value"
    token = timestamps.stamp(value, stamper)

    def both(token_der: bytes, signed: bytes, trusted: list[x509.Certificate]) -> tuple[bool, bool]:
        direct = timestamps._direct_check(token_der, signed, roots=trusted, intermediates=intermediates)
        return direct.ok, asyncio.run(_pyhanko_ok(token_der, signed, trusted, intermediates))

    assert both(token, value, roots) == (True, True)
    assert both(token, b"another signature", roots) == (False, False)
    assert timestamps._direct_check(token, value, roots=[], intermediates=intermediates).untrusted
    assert asyncio.run(_pyhanko_ok(token, value, [], intermediates)) is False
    # one byte of the TSA's signature changed: the direct check finds it, as pyHanko does
    at = token.rfind(token[-8:])
    tampered = token[:at] + bytes([token[at] ^ 0x01]) + token[at + 1 :]
    assert timestamps._direct_check(tampered, value, roots=roots, intermediates=intermediates).ok is False
    assert asyncio.run(_pyhanko_ok(tampered, value, roots, intermediates)) is False


def test_a_hub_token_read_in_place_gets_the_verdicts_of_asn1crypto_and_pyhanko(hub: Hub) -> None:
    """The token read by the small DER reader (the path every hub token takes) gives what the asn1crypto reading
    and pyHanko's full validation give: good, over another signature, untrusted, its signature or its TSTInfo
    tampered; a token the reader does not walk goes to the fuller checks and is still judged."""
    from seal import authority, derread, timestamps

    with hub.factory() as db:
        stamper = service.hub_timestamper(db, hub.app.state.vault)
        roots, intermediates = authority.trusted_certificates(db)
        db.commit()
    value = b"the seal signature value"
    token = timestamps.stamp(value, stamper)
    at = token.rfind(token[-8:])
    bad_signature = token[:at] + bytes([token[at] ^ 0x01]) + token[at + 1 :]
    when = token.index(b"\x18\x0f") + 15  # the last digit of the TSTInfo's genTime (YYYYMMDDHHMMSSZ)
    bad_time = token[:when] + bytes([token[when] ^ 0x01]) + token[when + 1 :]
    cases = [
        (token, value, roots, True),
        (token, b"another signature", roots, False),
        (token, value, [], False),
        (bad_signature, value, roots, False),
        (bad_time, value, roots, False),
    ]
    for token_der, signed, trusted, expected in cases:
        read = timestamps._fast_check(token_der, signed, roots=trusted, intermediates=intermediates)
        parsed = timestamps._direct_check(token_der, signed, roots=trusted, intermediates=intermediates)
        assert read == parsed
        assert read.ok is expected
        assert asyncio.run(_pyhanko_ok(token_der, signed, trusted, intermediates)) is expected
    assert timestamps._fast_check(token, value, roots=[], intermediates=intermediates).untrusted
    # BER the reader refuses (indefinite length on the outer SEQUENCE): the fuller checks decide, as before
    body = token[2 + (token[1] & 0x7F) :] if token[1] & 0x80 else token[2:]
    indefinite = b"\x30\x80" + body + b"\x00\x00"
    with pytest.raises(derread.Unreadable):
        timestamps._fast_check(indefinite, value, roots=roots, intermediates=intermediates)
    assert timestamps.check(indefinite, value, roots=roots, intermediates=intermediates).ok is asyncio.run(
        _pyhanko_ok(indefinite, value, roots, intermediates)
    )
    truncated = timestamps.check(token[:-1], value, roots=roots, intermediates=intermediates)
    assert truncated.ok is False
    assert "cannot be read" in truncated.message


async def _pyhanko_ok(token: bytes, value: bytes, roots: list[x509.Certificate], intermediates: list[x509.Certificate]) -> bool:
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    from seal import pdf as pades

    context = ValidationContext(
        trust_roots=[pades.asn1_cert(c) for c in roots], other_certs=[pades.asn1_cert(c) for c in intermediates]
    )
    try:
        status = await validate_tst_signed_data(
            cms.ContentInfo.load(token)["content"], context, lambda algorithm: hashlib.new(algorithm, value).digest()
        )
    except Exception:
        return False
    return bool(status.get("intact") and status.get("valid") and status.get("trust_problem_indic") is None)


def _asn1crypto_token(
    stamper: tsa.HubTimeStamper, imprint: tsp.MessageImprint, nonce: int | None, certs: bool, now: datetime, serial: int
) -> bytes:
    """The token as asn1crypto builds it from its parts (how the TSA made tokens before they were assembled from
    bytes): the reference the assembled token must equal byte for byte."""
    from asn1crypto import cms, core
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    hub_tsa = stamper.tsa
    cert = asn1_x509.Certificate.load(hub_tsa.certificate_der)
    info: dict[str, object] = {
        "version": "v1",
        "policy": tsa.POLICY,
        "message_imprint": imprint,
        "serial_number": serial,
        "gen_time": core.GeneralizedTime(now),
        "accuracy": {"seconds": 1},
        "tsa": asn1_x509.GeneralName(name="directory_name", value=cert.subject),
    }
    if nonce is not None:
        info["nonce"] = nonce
    tst_der = tsp.TSTInfo(info).dump()
    signing_certificate = {
        "type": "signing_certificate_v2",
        "values": [
            {
                "certs": [
                    {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "cert_hash": hashlib.sha256(hub_tsa.certificate_der).digest(),
                        "issuer_serial": {
                            "issuer": [asn1_x509.GeneralName(name="directory_name", value=cert.issuer)],
                            "serial_number": cert.serial_number,
                        },
                    }
                ]
            }
        ],
    }
    signed_attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["tst_info"]},
            {"type": "signing_time", "values": [cms.Time(name="utc_time", value=now)]},
            {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
            signing_certificate,
        ]
    )
    signature = hub_tsa.private.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
    signed_data: dict[str, object] = {
        "version": "v3",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "tst_info", "content": cms.ParsableOctetString(tst_der)},
        "signer_infos": [
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    name="issuer_and_serial_number", value={"issuer": cert.issuer, "serial_number": cert.serial_number}
                ),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": signed_attrs,
                "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                "signature": signature,
            }
        ],
    }
    if certs:
        signed_data["certificates"] = [
            cert,
            asn1_x509.Certificate.load(hub_tsa.issuer.public_bytes(serialization.Encoding.DER)),
        ]
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)}).dump())


def _without_signature(token: bytes) -> list[bytes]:
    """Every part of the token as encoded (not encoded again), but its SignerInfo's signature (ECDSA signatures
    differ on every signing)."""
    from asn1crypto import cms

    info = cms.ContentInfo.load(token)
    signed = info["content"]
    signer = signed["signer_infos"][0]
    parts = [info["content_type"].dump(), *(signed[k].dump() for k in ("version", "digest_algorithms", "encap_content_info"))]
    parts += [signed["certificates"].dump(), signed["crls"].dump(), len(signed["signer_infos"]).to_bytes(1, "big")]
    keys = ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm", "unsigned_attrs")
    return parts + [signer[k].dump() for k in keys]


@pytest.mark.parametrize("nonce", [None, 0, 1, 0x7F, 0x80, 0xFFFF, 1 << 62 | 12345, -1, -128, -129])
@pytest.mark.parametrize("certs", [True, False])
def test_the_token_assembled_from_bytes_is_the_one_asn1crypto_builds(hub: Hub, nonce: int | None, certs: bool) -> None:
    """Every part of a token, encoded once or per token, is what asn1crypto encodes from the same values; the
    signature is over the DER of the signed attributes (checked with the TSA's public key)."""
    from asn1crypto import cms
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    with hub.factory() as db:
        stamper = service.hub_timestamper(db, hub.app.state.vault)
        db.commit()
    now = datetime(2026, 12, 7, 6, 5, 9, tzinfo=UTC)
    for digest, algorithm in ((hashlib.sha256(b"x").digest(), "sha256"), (hashlib.sha512(b"x").digest(), "sha512")):
        imprint = tsp.MessageImprint({"hash_algorithm": {"algorithm": algorithm}, "hashed_message": digest})
        for serial in (1 << 126 | 1, (1 << 127) - 1, 1 << 126 | 0xFF):
            ours = tsa.token_der(
                stamper.tsa, imprint=imprint.dump(), nonce=nonce, with_certificates=certs, now=now, serial=serial
            )
            reference = _asn1crypto_token(stamper, imprint, nonce, certs, now, serial)
            assert _without_signature(ours) == _without_signature(reference)
            signer = cms.ContentInfo.load(ours)["content"]["signer_infos"][0]
            stamper.tsa.certificate.public_key().verify(  # type: ignore[union-attr]
                signer["signature"].native, signer["signed_attrs"].untag().dump(), ec.ECDSA(hashes.SHA256())
            )


def test_a_token_made_directly_is_what_pyhanko_and_the_checks_accept(hub: Hub) -> None:
    """The sealing path's direct stamp (no request, no event loop) gives a token pyHanko validates, asn1crypto reads
    (imprint, nonce, certificates) and the hub's own checks accept, over this value only."""
    from seal import authority, timestamps

    with hub.factory() as db:
        stamper = service.hub_timestamper(db, hub.app.state.vault)
        roots, intermediates = authority.trusted_certificates(db)
        db.commit()
    value = b"the seal signature value"
    token = stamper.stamp_sha256(hashlib.sha256(value).digest())
    from asn1crypto import cms

    info = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": cms.ContentInfo.load(token)})
    tst = info["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert tst["message_imprint"]["hashed_message"].native == hashlib.sha256(value).digest()
    assert tst["nonce"].native is not None and tst["policy"].dotted == tsa.POLICY
    assert len(info["time_stamp_token"]["content"]["certificates"]) == 2
    assert asyncio.run(_pyhanko_ok(token, value, roots, intermediates)) is True
    assert asyncio.run(_pyhanko_ok(token, b"another value", roots, intermediates)) is False
    assert timestamps.check(token, value, roots=roots, intermediates=intermediates).ok
    assert timestamps._direct_check(token, value, roots=roots, intermediates=intermediates).ok
    with pytest.raises(Exception, match="32 bytes"):
        stamper.stamp_sha256(b"short")
