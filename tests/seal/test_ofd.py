"""Verifying whole OFD documents (GB/T 33190) sealed by other producers: every signed file's digest, the
GB/T 38540 seal signature over Signature.xml, and the trust checks, per signature; and what a hostile or
broken upload gets (zip bombs, path tricks, entity expansion, truncation, missing files): a clear 4xx or an
"invalid" verdict with its reason, never a 500. easyofd, an OFD reader that is not ours, opens the samples."""

from __future__ import annotations

import base64
import io
import json
import random
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ops.audit import AuditRecord
from tests.seal.test_der import SAMPLES, _ofd_samples

VERIFY = "/seal/verify/ofd"


def _sample(name: str) -> bytes:
    path = SAMPLES / "ofd" / name
    if not path.is_file():
        pytest.skip(f"no OFD sample at {path} (set GOVHUB_SAMPLES_DIR)")
    return path.read_bytes()


def _rezip(data: bytes, change: Callable[[str, bytes], bytes | None]) -> bytes:
    """A copy of the package with entries changed (None drops one)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = change(info.filename, src.read(info))
            if body is not None:
                dst.writestr(info.filename, body)
    return out.getvalue()


def _verify(client: TestClient, data: bytes, name: str = "document.ofd") -> Any:
    return client.post(VERIFY, files={"file": (name, data, "application/ofd")})


def _signed_files(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        xml = package.read("Doc_0/Signs/Sign_0/Signature.xml").decode()
    return [part.split('"', 1)[0].lstrip("/") for part in xml.split('FileRef="')[1:]]


def test_other_producers_ofd_documents_are_verified_file_by_file_and_open_in_easyofd(client: TestClient, db: Session) -> None:
    easyofd = pytest.importorskip("easyofd")
    seen: dict[str, Any] = {}
    for path in _ofd_samples():
        reader = easyofd.OFD()
        reader.read(str(path), fmt="path")  # an independent reader opens the package and its pages
        assert reader.data, path.name
        response = _verify(client, path.read_bytes(), path.name)
        assert response.status_code == 200, (path.name, response.text)
        seen[path.name] = body = response.json()
        [signature] = body["signatures"]
        assert signature["kind"] == "ofd" and signature["stamp_annots"] and signature["references"]
        checks = signature["checks"]
        if path.name.startswith("sesv4"):
            assert checks["references"]["status"] == "passed", checks
            assert all(ref["status"] == "passed" for ref in signature["references"])
            assert checks["signature_xml"]["status"] == "passed" and checks["signature"]["status"] == "passed"
            assert "the maker is not trusted" in checks["seal_structure"]["message"]
            assert checks["chain"]["status"] == "indeterminate"
            assert signature["format"] == "GB/T 38540 SES_Signature version 4 (DER)"
    ofdrw, gomain = seen["sesv4-ofdrw.ofd"], seen["sesv4-gomain-invoice.ofd"]
    assert ofdrw["signatures"][0]["checks"]["seal_file"]["status"] == "passed"  # Seal.esl is the seal inside
    assert gomain["signatures"][0]["checks"]["seal_file"]["status"] == "not_applicable"  # it keeps no Seal.esl
    assert ofdrw["signatures"][0]["provider"]["ProviderName"] == "ofdrw-sign"
    assert ofdrw["signatures"][0]["check_method"] == "SM3" and len(ofdrw["signatures"][0]["references"]) == 5
    # the ofdrw seal was valid 2020-04-22 .. 2022-04-22 and used in 2026: invalid for that reason alone
    assert ofdrw["verdict"] == "invalid" and ofdrw["signatures"][0]["checks"]["seal_period"]["status"] == "failed"
    assert ofdrw["signatures"][0]["sub_indication"] == "EXPIRED"
    # the gomain e-invoice: everything checks out but its issuer is a test CA
    assert gomain["verdict"] == "indeterminate" and gomain["signatures"][0]["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND"
    assert gomain["signatures"][0]["check_method"] == "1.2.156.10197.1.401" and len(gomain["signatures"][0]["references"]) == 13
    legacy = seen.get("sesv1-legacy.ofd")
    if legacy is not None:  # read and reported: its files were rewritten after signing (re-indented XML)
        [sig] = legacy["signatures"]
        assert sig["format"] == "GB/T 38540 SES_Signature version 1 (DER)" and sig["seal"]["version"] == 1
        assert sig["provider"]["Company"] == "dms360.cn" and sig["checks"]["references"]["status"] == "failed"
        assert legacy["verdict"] == "invalid" and sig["reasons"]
    recorded = db.scalars(select(AuditRecord).where(AuditRecord.action == "seal.verify.ofd")).all()
    assert sorted(r.outcome for r in recorded) == sorted(b["verdict"] for b in seen.values())


@pytest.mark.parametrize("name", ["sesv4-ofdrw.ofd", "sesv4-gomain-invoice.ofd"])
def test_one_changed_byte_in_any_signed_file_is_invalid_and_names_the_file(client: TestClient, name: str) -> None:
    original = _sample(name)
    files = _signed_files(original)
    assert files
    for target in files:

        def flip(entry: str, body: bytes, target: str = target) -> bytes:
            if entry != target:
                return body
            changed = bytearray(body)
            # the middle byte; in OFD.xml (which the verifier reads to find the signatures) one in the DocID
            at = body.index(b"DocID>") + 6 if entry == "OFD.xml" else len(changed) // 2
            changed[at] ^= 0x01
            return bytes(changed)

        body = _verify(client, _rezip(original, flip)).json()
        [sig] = body["signatures"]
        assert body["verdict"] == "invalid" and sig["sub_indication"] == "HASH_FAILURE", (target, body)
        assert sig["checks"]["references"]["status"] == "failed" and f"/{target}" in sig["checks"]["references"]["message"]
        failed = [ref["file"] for ref in sig["references"] if ref["status"] == "failed"]
        assert failed == [f"/{target}"], (target, failed)
        assert sig["checks"]["signature"]["status"] == "passed"  # only the file changed, not the seal signature


def test_a_signature_xml_edited_after_signing_is_invalid(client: TestClient) -> None:
    original = _sample("sesv4-gomain-invoice.ofd")

    def edit(entry: str, body: bytes) -> bytes:
        return body.replace(b"20201004072855.302Z", b"20211004072855.302Z") if entry.endswith("Sign_0/Signature.xml") else body

    body = _verify(client, _rezip(original, edit)).json()
    [sig] = body["signatures"]
    assert body["verdict"] == "invalid" and sig["sub_indication"] == "HASH_FAILURE"
    assert sig["checks"]["signature_xml"]["status"] == "failed"
    assert "changed after signing" in sig["checks"]["signature_xml"]["message"]
    assert sig["signature_date_time"] == "20211004072855.302Z"

    def drop_reference(entry: str, body: bytes) -> bytes:  # a protected file's reference quietly removed
        if not entry.endswith("Sign_0/Signature.xml"):
            return body
        start = body.index(b'<ofd:Reference FileRef="/Doc_0/Res/image_80.jb2">')
        return body[:start] + body[body.index(b"</ofd:Reference>", start) + len(b"</ofd:Reference>") :]

    dropped = _verify(client, _rezip(original, drop_reference)).json()
    assert dropped["verdict"] == "invalid" and dropped["signatures"][0]["checks"]["signature_xml"]["status"] == "failed"


def test_a_seal_file_other_than_the_seal_inside_the_signature_is_invalid(client: TestClient) -> None:
    """Seal.esl swapped and its reference digest recomputed: every digest passes, the seal file check does not."""
    from seal import ofd

    original = _sample("sesv4-ofdrw.ofd")
    other = b"\x30\x03\x02\x01\x04"
    old_value = base64.b64encode(ofd.digest("SM3", zipfile.ZipFile(io.BytesIO(original)).read("Doc_0/Signs/Sign_0/Seal.esl")))
    new_value = base64.b64encode(ofd.digest("SM3", other))

    def swap(entry: str, body: bytes) -> bytes:
        if entry.endswith("Seal.esl"):
            return other
        return body.replace(old_value, new_value) if entry.endswith("Signature.xml") else body

    body = _verify(client, _rezip(original, swap)).json()
    [sig] = body["signatures"]
    assert sig["checks"]["references"]["status"] == "passed"
    assert sig["checks"]["seal_file"]["status"] == "failed" and "is not the seal inside" in sig["checks"]["seal_file"]["message"]
    assert body["verdict"] == "invalid"


def test_a_signed_file_missing_or_a_reference_outside_the_package_is_invalid(client: TestClient) -> None:
    original = _sample("sesv4-gomain-invoice.ofd")
    missing = _verify(client, _rezip(original, lambda entry, body: None if entry == "Doc_0/Res/image_80.jb2" else body)).json()
    [sig] = missing["signatures"]
    assert missing["verdict"] == "invalid"
    assert "/Doc_0/Res/image_80.jb2: the file is missing" in sig["checks"]["references"]["message"]

    no_value = _verify(client, _rezip(original, lambda e, b: None if e.endswith("SignedValue.dat") else b)).json()
    assert no_value["verdict"] == "invalid"
    assert "SignedValue" in no_value["signatures"][0]["checks"]["signature_xml"]["message"]

    def escape(entry: str, body: bytes) -> bytes:
        if not entry.endswith("Signature.xml"):
            return body
        return body.replace(b'FileRef="/OFD.xml"', b'FileRef="../../../../etc/passwd"')

    outside = _verify(client, _rezip(original, escape)).json()
    refs = outside["signatures"][0]["checks"]["references"]["message"]
    assert outside["verdict"] == "invalid" and "../../../../etc/passwd: names a path outside the package" in refs

    not_der = b"\x30\x03\x02\x01\x04"
    garbage = _verify(client, _rezip(original, lambda e, b: not_der if e.endswith("SignedValue.dat") else b)).json()
    assert garbage["verdict"] == "invalid"
    assert "not a GB/T 38540 seal signature" in garbage["signatures"][0]["checks"]["seal_structure"]["message"]


def test_damaged_signed_parts_are_refused_or_invalid_never_a_500(client: TestClient) -> None:
    """Random bytes changed in the files a verifier reads or that are signed: a 4xx, or "invalid"."""
    rng = random.Random(20261207)
    original = _sample("sesv4-gomain-invoice.ofd")
    targets = ["OFD.xml", "Doc_0/Signs/Sign_0/Signature.xml", "Doc_0/Signs/Sign_0/SignedValue.dat", *_signed_files(original)]
    for _ in range(40):
        target = rng.choice(targets)

        def damage(entry: str, body: bytes, target: str = target) -> bytes:
            if entry != target:
                return body
            changed = bytearray(body)
            for _ in range(rng.randint(1, 3)):
                changed[rng.randrange(len(changed))] ^= rng.randint(1, 255)
            return bytes(changed)

        response = _verify(client, _rezip(original, damage))
        assert response.status_code in (200, 422), (target, response.status_code, response.text)
        if response.status_code == 200:
            assert response.json()["verdict"] == "invalid", (target, response.json())
    raw = bytearray(original)
    for _ in range(20):  # damage to the archive itself
        damaged = bytearray(raw)
        damaged[rng.randrange(len(damaged))] ^= rng.randint(1, 255)
        response = _verify(client, bytes(damaged))
        assert response.status_code in (200, 422), response.text


def _bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("OFD.xml", b"<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
        package.writestr("Doc_0/Res/zeros.bin", b"\0" * (50 * 1024 * 1024))  # 50 MB in ~50 KB
    return out.getvalue()


def _named(name: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        package.writestr("OFD.xml", b"<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
        package.writestr(zipfile.ZipInfo(name), b"x")
    return out.getvalue()


def _many(count: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for i in range(count):
            package.writestr(f"Doc_0/Res/{i}.xml", b"<a/>")
    return out.getvalue()


def _twice() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package, pytest.warns(UserWarning, match="Duplicate name"):
        package.writestr("OFD.xml", b"<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
        package.writestr("OFD.xml", b"<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'><ofd:DocBody/></ofd:OFD>")
    return out.getvalue()


XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:DocRoot>&x;</ofd:DocRoot></ofd:DocBody></ofd:OFD>"""
LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<ofd:Signatures xmlns:ofd="http://www.ofdspec.org/2016"><ofd:MaxSignId>&d;</ofd:MaxSignId></ofd:Signatures>"""


def test_hostile_and_broken_packages_are_refused_with_the_reason(client: TestClient) -> None:
    original = _sample("sesv4-gomain-invoice.ofd")
    cases: dict[str, tuple[bytes, str]] = {
        "truncated": (original[: len(original) * 2 // 3], "not a readable OFD package"),
        "not a zip": (b"%PDF-1.7 this is no OFD", "not a readable OFD package"),
        "zip bomb": (_bomb(), "zip bomb"),
        "parent path": (_named("../../evil.xml"), "a '..' component"),
        "absolute path": (_named("/etc/cron.d/evil"), "an absolute path"),
        "backslash": (_named("Doc_0\\..\\evil.xml"), "a backslash"),
        "external entity": (_rezip(original, lambda e, b: XXE if e == "OFD.xml" else b), "declares a DTD or entities"),
        "billion laughs": (
            _rezip(original, lambda e, b: LAUGHS if e.endswith("Signs/Signatures.xml") else b),
            "declares a DTD or entities",
        ),
        "unknown encoding": (
            _rezip(original, lambda e, b: b.replace(b'encoding="UTF-8"', b'encoding="UTF-g"') if e == "OFD.xml" else b),
            "not well-formed XML",
        ),
        "too many entries": (_many(5001), "5001 entries; at most 5000"),
        "one name twice": (_twice(), "two entries named 'OFD.xml'"),
        "no OFD.xml": (_rezip(original, lambda e, b: None if e == "OFD.xml" else b), "no OFD.xml"),
        "unsigned": (_rezip(original, lambda e, b: None if "/Signs/" in e else b), "Signatures file"),
    }
    for case, (data, reason) in cases.items():
        response = _verify(client, data)
        assert response.status_code == 422, (case, response.status_code, response.text)
        assert reason in response.json()["detail"], (case, response.json())
    assert _verify(client, b"").status_code == 422


def test_the_reader_refuses_a_package_over_its_total_unpacked_size() -> None:
    from seal import ofd

    sample = _sample("sesv4-gomain-invoice.ofd")
    with pytest.raises(ofd.OfdError, match="unpacks to 38614 bytes; at most 20000"):  # checked before any is read
        ofd.Package(sample, ofd.Limits(total_bytes=20_000))
    assert len(ofd.read_document(ofd.Package(sample, ofd.Limits(total_bytes=40_000))).signatures) == 1


def test_a_truncated_entry_inside_an_intact_directory_is_refused(client: TestClient) -> None:
    """The central directory is whole, but the bytes of a signed file were damaged in transit."""
    original = _sample("sesv4-gomain-invoice.ofd")
    with zipfile.ZipFile(io.BytesIO(original)) as package:
        info = package.getinfo("Doc_0/Pages/Page_0/Content.xml")
    damaged = bytearray(original)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    damaged[start : start + 40] = b"\xff" * 40
    response = _verify(client, bytes(damaged))
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        sig = response.json()["signatures"][0]
        assert response.json()["verdict"] == "invalid"
        assert "/Doc_0/Pages/Page_0/Content.xml" in sig["checks"]["references"]["message"]


def test_too_large_an_upload_gets_413(settings: Any, engine: Any, session_factory: Any, storage: Any) -> None:
    from govhub.app import create_app

    small = settings.model_copy(update={"seal_max_pdf_bytes": 1024})
    app = create_app(small, engine=engine, session_factory=session_factory, storage=storage)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = _verify(client, _sample("sesv4-ofdrw.ofd"))
    assert response.status_code == 413 and "1024 bytes" in response.json()["detail"]


def test_an_operator_verifies_an_ofd_from_the_shell(govhub: Callable[..., tuple[str, str]], tmp_path: Path) -> None:
    govhub("db", "upgrade")
    path = SAMPLES / "ofd" / "sesv4-gomain-invoice.ofd"
    if not path.is_file():
        pytest.skip(f"no OFD sample at {path}")
    out, _ = govhub("seals", "verify-ofd", str(path))
    report = json.loads(out)
    assert report["verdict"] == "indeterminate" and report["signatures"][0]["checks"]["references"]["status"] == "passed"
    broken = tmp_path / "broken.ofd"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(SystemExit) as stopped:
        govhub("seals", "verify-ofd", str(broken))
    assert "not a readable OFD package" in str(stopped.value)
