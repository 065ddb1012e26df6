"""A department seals an OFD document (GB/T 33190 §18) with its SM2 seal: what it gets back is opened by easyofd,
its seal and seal signature decode with a decoder generated from the standard's ASN.1 module, gmssl verifies the
SM2 signature, and the hub's verifier says "valid"; another producer's sealed document keeps its signature when
the hub adds one. A change after sealing, and every kind of bad input, is caught with its reason."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ops.auth import Principal, Role
from ops.config import Settings
from ops.db import utcnow
from ops.errors import PayloadTooLarge
from seal import service
from seal.models import Seal, SealUse
from tests.conftest import Actor, Hub
from tests.seal.helpers import grant, hub_tsa, plain_ofd, seal_body, sealer
from tests.seal.test_der import _asn1, _gmssl_verify, _sm2_seal, _sm3
from tests.seal.test_ofd import _rezip, _sample, _verify

PURPOSE = "发文用印"


def _seal_ofd(client: TestClient, who: Actor, data: bytes, **form: Any) -> Any:
    return client.post(
        "/seal/ofd",
        headers=who.headers,
        files={"file": ("通知.ofd", data, "application/ofd")},
        data={"purpose": PURPOSE, **{k: str(v) for k, v in form.items()}},
    )


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        return {name: package.read(name) for name in package.namelist()}


def _uses(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(SealUse)) or 0)


def _easyofd_reads(data: bytes) -> Any:
    easyofd = pytest.importorskip("easyofd")
    reader = easyofd.OFD()
    reader.read(data, fmt="binary")
    assert reader.data  # an independent reader opens the package, its pages and its signatures
    return reader


def test_a_department_seals_an_ofd_that_other_implementations_read_and_the_hub_verifies(
    client: TestClient, hub: Hub, db: Session
) -> None:
    module = _asn1()
    department, seal = _sm2_seal(client, hub)
    system = sealer(hub, department)
    original = plain_ofd(pages=2)
    response = _seal_ofd(client, system, original, page=1, x_mm=120, y_mm=200.5, size_mm=40)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ofd"
    sealed = response.content
    files = _entries(sealed)
    # The original files keep their bytes; OFD.xml now names the list of signatures.
    for name, body in _entries(original).items():
        if name != "OFD.xml":
            assert files[name] == body, name
    assert b"<ofd:Signatures>/Doc_0/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody>" in files["OFD.xml"]
    listing = files["Doc_0/Signs/Signatures.xml"].decode()
    assert '<ofd:MaxSignId>2</ofd:MaxSignId><ofd:Signature ID="1" Type="Seal"' in listing
    assert 'BaseLoc="/Doc_0/Signs/Sign_0/Signature.xml"' in listing
    signature_xml = files["Doc_0/Signs/Sign_0/Signature.xml"]
    text = signature_xml.decode()
    assert "<ofd:SignatureMethod>1.2.156.10197.1.501</ofd:SignatureMethod>" in text
    assert '<ofd:References CheckMethod="1.2.156.10197.1.401">' in text
    # the StampAnnot: the second page's ID, where the picture was asked to go (40 mm wide, the seal is round)
    assert '<ofd:StampAnnot ID="2" PageRef="12" Boundary="120 200.5 40 40"/>' in text
    assert "<ofd:BaseLoc>/Doc_0/Signs/Sign_0/Seal.esl</ofd:BaseLoc>" in text
    # Every file but the list of signatures and the signature's own files is protected by its SM3 digest.
    refs = dict(re.findall(r'FileRef="/([^"]+)"><ofd:CheckValue>([^<]+)<', text))
    expected = {n for n in files if n != "Doc_0/Signs/Signatures.xml" and not n.startswith("Doc_0/Signs/Sign_0/")}
    assert set(refs) == expected
    assert all(base64.b64decode(value) == _sm3(files[name]) for name, value in refs.items())

    # The seal signature and the seal, decoded by asn1tools from the standard's module; gmssl checks the signatures.
    decoded = module.decode("SES-Signature", files["Doc_0/Signs/Sign_0/SignedValue.dat"])
    tbs = decoded["toSign"]
    assert tbs["version"] == 4 and decoded["signatureAlgID"] == "1.2.156.10197.1.501"
    assert tbs["dataHash"][0] == _sm3(signature_xml)  # what is signed is the Signature.xml file itself
    assert tbs["propertyInfo"] == "/Doc_0/Signs/Sign_0/Signature.xml"
    assert _gmssl_verify(decoded["cert"], module.encode("TBS-Sign", tbs), decoded["signature"][0])
    assert not _gmssl_verify(decoded["cert"], module.encode("TBS-Sign", tbs) + b"\x00", decoded["signature"][0])
    eseal = module.decode("SESeal", files["Doc_0/Signs/Sign_0/Seal.esl"])
    assert eseal == tbs["eseal"] and eseal["eSealInfo"]["esID"] == seal["code"]
    assert _gmssl_verify(eseal["cert"], module.encode("SES-SealInfo", eseal["eSealInfo"]), eseal["signedValue"][0])

    # easyofd opens it and finds the seal signature on the second page, where it was put; the hub's verifier says
    # valid, every check passed.
    found = _easyofd_reads(sealed).data[0]["signatures_page_id"]
    [(page_index, [stamp])] = found.items()
    assert page_index == 1 and stamp["Boundary"] == "120 200.5 40 40"
    assert base64.b64decode(stamp["SignedValue"]) == files["Doc_0/Signs/Sign_0/SignedValue.dat"]
    report = _verify(client, sealed).json()
    assert report["verdict"] == "valid", report
    [signature] = report["signatures"]
    assert signature["provider"]["ProviderName"] == "govhub"
    assert {ref["status"] for ref in signature["references"]} == {"passed"} and len(signature["references"]) == len(expected)
    assert signature["checks"]["seal_file"]["status"] == "passed"
    assert signature["checks"]["chain"]["status"] == "passed"
    # stamped by the hub's own TSA, the default time stamper
    assert signature["checks"]["timestamp"]["status"] == "passed"
    assert signature["checks"]["timestamp"]["message"].startswith("RFC 3161 time stamp at")

    # The use is on the seal's page, with the sealed document's hash, and in the audit trail.
    uses = client.get(f"/seals/{seal['id']}/uses", headers=hub.admin.headers).json()["items"]
    assert [(u["kind"], u["purpose"]) for u in uses] == [("ofd", PURPOSE)]
    assert uses[0]["document_hash"] == hashlib.sha256(sealed).hexdigest()
    assert response.headers["x-seal-use-id"] == uses[0]["id"]


def test_sealing_another_producers_sealed_ofd_adds_a_second_signature_and_both_verify(client: TestClient, hub: Hub) -> None:
    theirs = _sample("sesv4-ofdrw.ofd")
    department, _ = _sm2_seal(client, hub)
    response = _seal_ofd(client, sealer(hub, department), theirs, x_mm=140, y_mm=230)
    assert response.status_code == 200, response.text
    sealed = response.content
    files = _entries(sealed)
    for name, body in _entries(theirs).items():
        if name != "Doc_0/Signs/Signatures.xml":
            assert files[name] == body, name  # their files, OFD.xml among them, are untouched
    listing = files["Doc_0/Signs/Signatures.xml"].decode()
    # their MaxSignId was 2 (signature 1, its stamp 2): ours is 3, its stamp 4
    assert (
        '<ofd:MaxSignId>4</ofd:MaxSignId><ofd:Signature ID="1" Type="Seal" BaseLoc="/Doc_0/Signs/Sign_0/Signature.xml"/>'
        in listing
    )
    assert '<ofd:Signature ID="3" Type="Seal" BaseLoc="/Doc_0/Signs/Sign_1/Signature.xml"/>' in listing
    ours = files["Doc_0/Signs/Sign_1/Signature.xml"].decode()
    assert 'PageRef="1"' in ours and 'ID="4"' in ours
    # our signature also protects their signature's files
    assert 'FileRef="/Doc_0/Signs/Sign_0/SignedValue.dat"' in ours
    found = _easyofd_reads(sealed).data[0]["signatures_page_id"]
    assert [s["Boundary"] for s in found[0]] == ["50 50 40 40", "140 230 42 42"]  # both seals on the page
    report = _verify(client, sealed).json()
    first, second = report["signatures"]
    assert first["provider"]["ProviderName"] == "ofdrw-sign" and second["provider"]["ProviderName"] == "govhub"
    # theirs: intact, its issuer not trusted here; ours: valid
    assert first["checks"]["references"]["status"] == "passed" and first["checks"]["signature"]["status"] == "passed"
    assert first["checks"]["signature_xml"]["status"] == "passed"
    assert first["checks"]["chain"]["status"] == "indeterminate" and first["verdict"] != "valid"
    assert second["verdict"] == "valid", second


def test_a_change_after_sealing_is_found_and_named(client: TestClient, hub: Hub) -> None:
    department, _ = _sm2_seal(client, hub)
    sealed = _seal_ofd(client, sealer(hub, department), plain_ofd()).content
    page = "Doc_0/Pages/Page_0/Content.xml"

    def one_byte(name: str, body: bytes) -> bytes:
        return body.replace("第1页".encode(), "第7页".encode()) if name == page else body

    report = _verify(client, _rezip(sealed, one_byte)).json()
    assert report["verdict"] == "invalid"
    [signature] = report["signatures"]
    assert signature["checks"]["references"]["status"] == "failed"
    assert page in signature["checks"]["references"]["message"]
    assert [r["file"] for r in signature["references"] if r["status"] == "failed"] == ["/" + page]

    def edit_signature(name: str, body: bytes) -> bytes:  # move the stamp after signing
        return body.replace(b'Boundary="', b'Boundary="1') if name.endswith("Sign_0/Signature.xml") else body

    edited = _verify(client, _rezip(sealed, edit_signature)).json()
    assert edited["verdict"] == "invalid"
    assert edited["signatures"][0]["checks"]["signature_xml"]["status"] == "failed"
    assert "changed after signing" in edited["signatures"][0]["checks"]["signature_xml"]["message"]


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, body in entries.items():
            package.writestr(name, body)
    return out.getvalue()


def _with(name: str, body: bytes) -> bytes:
    return _rezip(plain_ofd(), lambda n, b: body if n == name else b)


XXE = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><ofd:OFD xmlns:ofd="x">&x;</ofd:OFD>'


@pytest.mark.parametrize(
    ("make", "form", "says"),
    [
        (lambda: plain_ofd()[:300], {}, "not a readable OFD package"),
        (lambda: _zip({"OFD.xml": b"<a/>", "Doc_0/big.bin": b"\x00" * (8 * 1024 * 1024)}), {}, "zip bomb"),
        (lambda: _zip({"OFD.xml": b"<a/>", "Doc_0/../../etc/x": b"x"}), {}, "'..' component"),
        (lambda: _with("OFD.xml", XXE), {}, "declares a DTD or entities"),
        (lambda: b"PK\x03\x04 not a zip at all", {}, "not a readable OFD package"),
        (lambda: _zip({"Doc_0/Document.xml": b"<a/>"}), {}, "no OFD.xml"),
        (lambda: _rezip(plain_ofd(), lambda n, b: None if n.endswith("Content.xml") else b), {}, "is not in the package"),
        (lambda: _rezip(plain_ofd(), lambda n, b: None if n.endswith("Document.xml") else b), {}, "(DocRoot) is not in"),
        (lambda: plain_ofd(pages=2), {"page": 2}, "the document has 2 page(s) (0 to 1); there is no page 2"),
        (lambda: plain_ofd(width_mm=100, height_mm=100), {"x_mm": 70, "y_mm": 10}, "which is 100 x 100 mm"),
        (lambda: plain_ofd(), {"x_mm": 190, "y_mm": 100}, "does not fit on page 0, which is 210 x 297 mm"),
        (lambda: plain_ofd(), {"x_mm": -1, "y_mm": 10}, "does not fit on page 0"),
        (lambda: plain_ofd(), {"x_mm": 10}, "give both x_mm and y_mm"),
        (lambda: plain_ofd(), {"size_mm": 1000}, "size_mm"),
        (lambda: plain_ofd(), {"x_mm": "nan", "y_mm": 10}, "finite"),
    ],
)
def test_bad_documents_and_positions_are_refused_with_the_reason_and_nothing_is_recorded(
    client: TestClient, hub: Hub, db: Session, make: Any, form: dict[str, Any], says: str
) -> None:
    department, _ = _sm2_seal(client, hub)
    response = _seal_ofd(client, sealer(hub, department), make(), **form)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.json()["detail"], response.json()
    assert _uses(db) == 0


def test_only_an_authorised_caller_with_a_usable_sm2_seal_seals(client: TestClient, hub: Hub, db: Session) -> None:
    department, seal = _sm2_seal(client, hub)
    document = plain_ofd()
    # not authorised on the seal: 403, the refusal recorded, no use
    outsider = hub.system(department, name="其他系统")
    refused = _seal_ofd(client, outsider, document)
    assert refused.status_code == 403 and "not authorised to use seal" in refused.json()["detail"]
    assert _uses(db) == 0
    # another department's seal: not found; the platform administrator is no department's staff
    system = sealer(hub, department)
    stranger = hub.department("另一个部门")
    assert _seal_ofd(client, sealer(hub, stranger), document, seal_id=seal["id"]).status_code == 404
    assert _seal_ofd(client, hub.admin, document).status_code == 403
    assert client.post("/seal/ofd", files={"file": ("a.ofd", document)}, data={"purpose": PURPOSE}).status_code == 401
    # a P-256 seal cannot make an OFD seal signature
    p256 = client.post(
        "/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm="ES256", seal_type="合同专用章")
    )
    assert p256.status_code == 201, p256.text
    wrong = _seal_ofd(client, sealer(hub, department, name="合同系统"), document, seal_id=p256.json()["id"])
    assert wrong.status_code == 409 and "use a seal with SM2" in wrong.json()["detail"]
    # expired, then revoked: refused with the reason
    db.execute(update(Seal).where(Seal.id == seal["id"]).values(valid_to=utcnow() - timedelta(minutes=1)))
    db.commit()
    expired = _seal_ofd(client, system, document, seal_id=seal["id"])
    assert expired.status_code == 409 and "outside its validity period" in expired.json()["detail"]
    db.execute(update(Seal).where(Seal.id == seal["id"]).values(valid_to=utcnow() + timedelta(days=30)))
    db.commit()
    client.post(f"/seals/{seal['id']}/revoke", headers=hub.admin.headers, json={"reason": "机构撤并"}).raise_for_status()
    revoked = _seal_ofd(client, system, document, seal_id=seal["id"])
    assert revoked.status_code == 409 and "revoked" in revoked.json()["detail"]
    assert _seal_ofd(client, system, document).status_code == 409  # no usable SM2 seal left
    assert _uses(db) == 0


def test_a_seal_that_needs_approval_seals_the_approved_ofd_once_and_a_hub_system_needs_its_own_authorisation(
    client: TestClient, hub: Hub, db: Session, app: Any
) -> None:
    department, seal = _sm2_seal(client, hub)
    clerk = sealer(hub, department, name="公文系统")
    admin = hub.actor(department, "department_admin", name="办公室主任")
    approver = hub.actor(department, "department_admin", name="分管领导")
    body = {"subject": approver.client.client_id, "subject_kind": "client", "may_use": False, "may_approve": True}  # type: ignore[union-attr]
    assert client.post(f"/seals/{seal['id']}/authorisations", json=body, headers=admin.headers).status_code == 201
    etag = client.get(f"/seals/{seal['id']}", headers=admin.headers).headers["ETag"]
    policy = {"requires_approval": True, "approval_valid_hours": 24}
    assert (
        client.put(f"/seals/{seal['id']}/use-policy", json=policy, headers={**admin.headers, "If-Match": etag}).status_code == 200
    )
    document = plain_ofd()
    without = _seal_ofd(client, clerk, document)
    assert without.status_code == 403 and "approval" in without.json()["detail"]
    asked = {"document_name": "通知.ofd", "document_hash": hashlib.sha256(document).hexdigest(), "purpose": PURPOSE}
    request_id = client.post(f"/seals/{seal['id']}/use-requests", json=asked, headers=clerk.headers).json()["id"]
    assert client.post(f"/seal/use-requests/{request_id}/approve", json={}, headers=approver.headers).status_code == 200
    other = _seal_ofd(client, clerk, plain_ofd(pages=2), approval_id=request_id)
    assert other.status_code == 409 and "another document" in other.json()["detail"]
    sealed = _seal_ofd(client, clerk, document, approval_id=request_id)
    assert sealed.status_code == 200, sealed.text
    again = _seal_ofd(client, clerk, document, approval_id=request_id)
    assert again.status_code == 409 and "already used" in again.json()["detail"]
    use = db.scalars(select(SealUse).where(SealUse.request_id == request_id)).one()
    assert use.kind == "ofd" and use.id == sealed.headers["x-seal-use-id"]
    # The certificate hub sealing for a person: the system itself must be authorised on the seal.
    person = Principal(subject="person-7f3a", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=department.id)
    with pytest.raises(service.SealUseRefused):
        service.seal_ofd(
            db, vault=app.state.vault, settings=hub.settings, department_id=department.id, ofd_bytes=document,
            purpose="证照", actor=person, system=service.CERTHUB,
        )  # fmt: skip


def test_an_ofd_sealed_with_a_time_stamp_carries_it_and_a_too_large_one_is_refused(
    client: TestClient, hub: Hub, db: Session, app: Any
) -> None:
    department, seal = _sm2_seal(client, hub)
    system = Principal(subject="records-system", roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=department.id)
    grant(db, str(seal["id"]), system.subject)

    def seal_it(settings: Settings, **extra: Any) -> Any:
        return service.seal_ofd(
            db, vault=app.state.vault, settings=settings, department_id=department.id, ofd_bytes=plain_ofd(pages=3),
            purpose="带时间戳用印", actor=system, **extra,
        )  # fmt: skip

    sealed = seal_it(app.state.settings, timestamper=hub_tsa(db, app.state.vault), page=2)
    report = service.verify_ofd(db, ofd_bytes=sealed.data, settings=app.state.settings)
    [signature] = report.signatures
    assert report.verdict == "valid", signature.reasons
    assert signature.checks["timestamp"].status == "passed" and signature.timestamp_time is not None
    assert sealed.page_id == "14" and sealed.boundary == (148.0, 235.0, 42.0, 42.0)  # the bottom right by default
    with pytest.raises(PayloadTooLarge):
        seal_it(Settings(seal_max_pdf_bytes=1024))
    assert _uses(db) == 1


def test_a_package_the_hub_just_wrote_seals_like_the_same_package_read_back_and_bad_placements_are_refused() -> None:
    from datetime import UTC, datetime

    from seal import ofd, ofdsign

    data = plain_ofd()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = tuple((name, archive.read(name)) for name in archive.namelist() if not name.endswith("/"))
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    signed: list[bytes] = []

    def sign_value(signature_xml: bytes, _where: str) -> bytes:
        signed.append(signature_xml)
        return b"\x30\x00"

    common: dict[str, Any] = {"seal_der": b"\x30\x00", "sign_value": sign_value, "at": at, "width_mm": 40, "height_mm": 40}
    page_id = re.search(rb'<ofd:Page ID="([^"]+)"', dict(files)["Doc_0/Document.xml"])
    assert page_id is not None
    written = ofdsign.WrittenOfd(
        files=files, doc_root="Doc_0/Document.xml", page_id=page_id.group(1).decode(), page_box=(0, 0, 210, 297)
    )
    fast = ofdsign.seal_written(written, x_mm=20, y_mm=30, **common)
    safe = ofdsign.seal_package(data, x_mm=20, y_mm=30, **common)
    # the same signature (every file's SM3, the stamp's place) and the same files in the package
    assert fast.signature_xml == safe.signature_xml and fast.references == safe.references
    assert _entries(fast.data) == _entries(safe.data)

    signed.clear()
    with pytest.raises(ofd.OfdError, match="does not fit on page 0"):
        ofdsign.seal_written(written, x_mm=190, y_mm=30, **common)
    listed = ofdsign.WrittenOfd(
        files=(*files, ("Doc_0/Signs/Signatures.xml", b"<x/>")), doc_root=written.doc_root, page_id=written.page_id,
        page_box=written.page_box,
    )  # fmt: skip
    with pytest.raises(ofd.OfdError, match=r"Signatures\.xml is in the package already"):
        ofdsign.seal_written(listed, **common)
    assert signed == []  # refused before anything is signed


def test_a_withdrawn_authorisation_or_a_suspended_seal_stops_ofd_sealing_at_once(
    client: TestClient, hub: Hub, db: Session
) -> None:
    """Sealing an OFD remembers the seal chosen and the use checks passed (seal/caches.py, ``choices``); a change
    in this process is seen by the next use: a withdrawn authorisation refuses it (403, recorded), a new one lets
    it through, a suspended seal stops it."""
    from ops.auth import Principal, Role

    department, seal = _sm2_seal(client, hub)
    system = sealer(hub, department)
    document = plain_ofd()
    for _ in range(2):  # the second use takes what the first remembered
        assert _seal_ofd(client, system, document).status_code == 200
    admin = Principal(subject="部门管理员", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=department.id)
    (granted,) = [
        a
        for a in service.seal_authorisations(db, who=admin, seal_id=seal["id"])
        if a.withdrawn_at is None and a.subject == system.client.client_id
    ]
    service.withdraw(db, who=admin, seal_id=seal["id"], authorisation_id=granted.id, reason="系统下线")
    db.commit()
    refused = _seal_ofd(client, system, document)
    assert refused.status_code == 403 and "not authorised to use seal" in refused.json()["detail"]
    grant(db, str(seal["id"]), system.client.client_id, kind="client")
    db.commit()
    assert _seal_ofd(client, system, document).status_code == 200
    client.post(f"/seals/{seal['id']}/suspend", headers=hub.admin.headers, json={"reason": "印章送检"}).raise_for_status()
    assert _seal_ofd(client, system, document).status_code == 409
    assert _uses(db) == 3
