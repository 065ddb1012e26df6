"""Scenarios of sealing (用印) and public verification (核验) of PDFs and detached seal signatures."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select
from sqlalchemy.orm import Session

from ops.audit import AuditRecord
from ops.auth import Principal, Role
from seal import authority, service, sesder, sm2ca
from seal import pdf as pades
from seal.models import SealUse
from tests.conftest import Actor, Hub
from tests.seal.helpers import grant, hub_tsa, one_page_pdf, seal_body, sealer


def _issue(client: TestClient, hub: Hub, department_id: str, **kwargs: object) -> dict[str, object]:
    response = client.post("/seals", headers=hub.admin.headers, json=seal_body(department_id, **kwargs))  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    return dict(response.json())


def _seal_pdf(client: TestClient, system: Actor, pdf: bytes, **form: str) -> bytes:
    response = client.post(
        "/seal/pdf",
        headers=system.headers,
        files={"file": ("notice.pdf", pdf, "application/pdf")},
        data={"purpose": "行政许可决定书用印", **form},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response.content


def _verify_pdf(client: TestClient, pdf: bytes) -> dict[str, object]:
    response = client.post("/seal/verify/pdf", files={"file": ("sealed.pdf", pdf, "application/pdf")})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_a_department_seals_a_pdf_and_anyone_verifies_it_as_valid(
    client: TestClient, hub: Hub, db: Session, algorithm: str
) -> None:
    department = hub.department("测试市市场监督管理局")
    seal = _issue(client, hub, department.id, algorithm=algorithm)
    system = sealer(hub, department)
    sealed = _seal_pdf(client, system, one_page_pdf(), page="0", box="400,60,520,180")
    report = _verify_pdf(client, sealed)
    assert report["verdict"] == "valid", report
    (only,) = report["signatures"]  # type: ignore[misc]
    assert only["indication"] == "TOTAL_PASSED"
    assert {name: c["status"] for name, c in only["checks"].items()} == {
        "document_integrity": "passed",
        "signature": "passed",
        "chain": "passed",
        "seal_valid_at_signing": "passed",
        "seal_status_now": "passed",
        "timestamp": "passed",  # the hub's own record of the sealing proves when it was made
        "revocation": "not_applicable",  # B-T: no revocation data embedded; the hub's history decides
        "long_term": "passed",  # the seal's certificate is still valid: the signature carries the verdict
    }
    assert only["level"] == "B-T" and only["carried_by"] == ["signature", "hub_record"]
    assert only["seal"]["id"] == seal["id"] and only["signer"]["organization_identifier"] == department.code
    use = db.scalars(select(SealUse).where(SealUse.seal_id == seal["id"])).one()
    assert use.kind == "pdf" and use.purpose == "行政许可决定书用印" and use.actor == system.client.client_id  # type: ignore[union-attr]
    uses = client.get(f"/seals/{seal['id']}/uses", headers=system.headers).json()["items"]
    assert uses[0]["document_hash"] == use.document_hash


def test_a_hub_sealed_pdf_validates_with_pyhankos_own_validator_given_the_hub_root(
    client: TestClient, hub: Hub, db: Session
) -> None:
    department = hub.department()
    _issue(client, hub, department.id)
    sealed = _seal_pdf(client, sealer(hub, department), one_page_pdf())
    from cryptography import x509

    root_pem = client.get("/seal/ca").json()["root"]
    root = pades.asn1_cert(x509.load_pem_x509_certificate(root_pem.encode()))
    signature = PdfFileReader(io.BytesIO(sealed)).embedded_signatures[0]
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[root], allow_fetching=False))
    assert status.bottom_line, status.summary()
    assert status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
    page = PdfFileReader(io.BytesIO(sealed)).root["/Pages"]["/Kids"][0].get_object()
    widget = page["/Annots"][0].get_object()
    assert widget["/Subtype"] == "/Widget" and [round(float(v)) for v in widget["/Rect"]][2] > 0  # a visible stamp


def test_a_pdf_changed_after_sealing_is_invalid(client: TestClient, hub: Hub) -> None:
    department = hub.department()
    _issue(client, hub, department.id)
    sealed = _seal_pdf(client, sealer(hub, department), one_page_pdf("Approved: 10 units"))
    tampered = sealed.replace(b"Approved: 10 units", b"Approved: 99 units")
    assert tampered != sealed
    report = _verify_pdf(client, tampered)
    assert report["verdict"] == "invalid"
    assert report["signatures"][0]["checks"]["document_integrity"]["status"] == "failed"  # type: ignore[index]
    # an incremental update appended after sealing (new page content) is caught too
    writer = IncrementalPdfFileWriter(io.BytesIO(sealed))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 18 Tf 72 700 Td (Approved: 99 units) Tj ET"))
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    appended = _verify_pdf(client, out.getvalue())
    assert appended["verdict"] == "invalid"
    assert "changed after sealing" in appended["signatures"][0]["checks"]["document_integrity"]["message"]  # type: ignore[index]


def test_a_pdf_verifier_reports_a_seal_revoked_after_signing_as_revoked_since(client: TestClient, hub: Hub) -> None:
    department = hub.department()
    seal = _issue(client, hub, department.id)
    sealed = _seal_pdf(client, sealer(hub, department), one_page_pdf())
    client.post(f"/seals/{seal['id']}/revoke", headers=hub.admin.headers, json={"reason": "印章遗失"}).raise_for_status()
    report = _verify_pdf(client, sealed)
    checks = report["signatures"][0]["checks"]  # type: ignore[index]
    assert checks["seal_valid_at_signing"]["status"] == "passed"
    assert checks["seal_status_now"]["status"] == "warning" and "印章遗失" in checks["seal_status_now"]["message"]
    assert report["verdict"] == "valid"  # sealed before the revocation, and the hub's record proves it
    assert any("revoked" in r for r in report["signatures"][0]["reasons"])  # type: ignore[index]


def test_a_department_uses_only_its_own_active_seals(client: TestClient, hub: Hub) -> None:
    police = hub.department("公安局")
    health = hub.department("卫健委")
    police_seal = _issue(client, hub, police.id)
    health_seal = _issue(client, hub, health.id)
    police_system = sealer(hub, police)
    pdf = one_page_pdf()
    other = client.post(
        "/seal/pdf",
        headers=police_system.headers,
        files={"file": ("a.pdf", pdf)},
        data={"purpose": "用别人的章", "seal_id": str(health_seal["id"])},
    )
    assert other.status_code == 404
    client.post(f"/seals/{police_seal['id']}/suspend", headers=hub.admin.headers, json={"reason": "暂停"}).raise_for_status()
    suspended = client.post(
        "/seal/pdf",
        headers=police_system.headers,
        files={"file": ("a.pdf", pdf)},
        data={"purpose": "用印", "seal_id": str(police_seal["id"])},
    )
    assert suspended.status_code == 409 and "suspended" in suspended.json()["detail"]
    none_left = client.post("/seal/pdf", headers=police_system.headers, files={"file": ("a.pdf", pdf)}, data={"purpose": "用印"})
    assert none_left.status_code == 409 and "no active seal" in none_left.json()["detail"]
    assert (
        client.post("/seal/pdf", headers=hub.admin.headers, files={"file": ("a.pdf", pdf)}, data={"purpose": "用印"}).status_code
        == 403
    )
    assert client.post("/seal/pdf", files={"file": ("a.pdf", pdf)}, data={"purpose": "用印"}).status_code == 401


def test_an_sm2_seal_cannot_make_a_pades_signature_and_says_so(client: TestClient, hub: Hub) -> None:
    department = hub.department()
    _issue(client, hub, department.id, algorithm="SM2")
    response = client.post(
        "/seal/pdf", headers=sealer(hub, department).headers, files={"file": ("a.pdf", one_page_pdf())}, data={"purpose": "用印"}
    )
    assert response.status_code == 409 and "ES256 or EdDSA" in response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "form", "status", "says"),
    [
        (b"hello, not a pdf", {}, 422, "not a PDF"),
        (b"%PDF-1.7\n garbage garbage", {}, 422, "cannot be read"),
        (b"", {}, 422, "empty"),
        (None, {"page": "5"}, 422, "page 5 does not exist"),
        (None, {"box": "1,2,3"}, 422, "four numbers"),
        (None, {"box": "500,500,900,900"}, 422, "outside the page"),
        (None, {"purpose": ""}, 422, "purpose"),
    ],
)
def test_bad_pdf_sealing_requests_get_a_clear_4xx(
    client: TestClient, hub: Hub, content: bytes | None, form: dict[str, str], status: int, says: str
) -> None:
    department = hub.department()
    _issue(client, hub, department.id)
    data = {"purpose": "用印", **form}
    response = client.post(
        "/seal/pdf",
        headers=sealer(hub, department).headers,
        files={"file": ("a.pdf", one_page_pdf() if content is None else content)},
        data=data,
    )
    assert response.status_code == status, response.text
    assert says in response.text


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"\x00\x01garbage", "not a PDF"), (b"%PDF-1.4\n%%EOF", "cannot be read"), (b"", "empty")],
)
def test_garbage_given_to_the_pdf_verifier_gets_a_clear_4xx(client: TestClient, content: bytes, says: str) -> None:
    response = client.post("/seal/verify/pdf", files={"file": ("x.pdf", content)})
    assert 400 <= response.status_code < 500 and says in response.json()["detail"]


def test_an_unsealed_pdf_is_reported_as_carrying_no_signature(client: TestClient) -> None:
    response = client.post("/seal/verify/pdf", files={"file": ("x.pdf", one_page_pdf())})
    assert response.status_code == 422 and "no signature" in response.json()["detail"]


@pytest.mark.parametrize("algorithm", ["SM2", "ES256", "EdDSA"])
def test_a_json_document_is_sealed_with_a_detached_signature_and_verified(client: TestClient, hub: Hub, algorithm: str) -> None:
    department = hub.department()
    seal = _issue(client, hub, department.id, algorithm=algorithm)
    system = sealer(hub, department)
    document = {"证照名称": "营业执照", "持证主体": "某某科技有限公司", "金额": 100}
    signed = client.post("/seal/sign", headers=system.headers, json={"purpose": "电子证照签发", "document": document})
    assert signed.status_code == 200, signed.text
    view = signed.json()["view"]
    signature = signed.json()["der_base64"]  # the DER SES_Signature; the view only shows it
    assert view["toSign"]["version"] == 4 and view["toSign"]["eseal"]["esID"] == seal["code"]
    assert (
        view["signatureAlgID"]
        == {"SM2": "1.2.156.10197.1.501", "ES256": "1.2.840.10045.4.3.2", "EdDSA": "1.3.101.112"}[algorithm]
    )
    reordered = dict(reversed(list(document.items())))  # the canonical form does not depend on key order
    report = client.post("/seal/verify/signature", json={"signature": signature, "document": reordered}).json()
    assert report["verdict"] == "valid", report
    assert report["seal"]["id"] == seal["id"] and report["kind"] == "detached"
    changed = client.post("/seal/verify/signature", json={"signature": signature, "document": {**document, "金额": 1000}}).json()
    assert changed["verdict"] == "invalid" and changed["sub_indication"] == "HASH_FAILURE"
    forged = sesder.SESSignature.load(base64.b64decode(signature))
    forged["toSign"]["timeInfo"] = datetime(2020, 1, 1, tzinfo=UTC)
    backdated = client.post(
        "/seal/verify/signature", json={"signature": base64.b64encode(forged.dump(force=True)).decode(), "document": document}
    ).json()
    assert backdated["verdict"] == "invalid" and backdated["checks"]["signature"]["status"] == "failed"


def test_bytes_are_sealed_and_verified_and_the_use_is_recorded(client: TestClient, hub: Hub, db: Session) -> None:
    department = hub.department()
    seal = _issue(client, hub, department.id, algorithm="SM2")
    system = sealer(hub, department)
    data = "共享数据交换回执".encode()
    signed = client.post(
        "/seal/sign", headers=system.headers, json={"purpose": "数据交换回执", "data_base64": base64.b64encode(data).decode()}
    )
    assert signed.status_code == 200
    report = client.post(
        "/seal/verify/signature", json={"signature": signed.json(), "data_base64": base64.b64encode(data).decode()}
    ).json()
    assert report["verdict"] == "valid"
    use = db.scalars(select(SealUse).where(SealUse.seal_id == seal["id"])).one()
    assert use.kind == "data" and use.hash_alg == "SM3" and use.purpose == "数据交换回执"
    audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "seal.use.data")).one()
    assert audit.purpose == "数据交换回执" and audit.department_id == department.id


def test_a_detached_signature_of_a_seal_revoked_later_is_reported_with_the_revocation(
    client: TestClient, hub: Hub, db: Session
) -> None:
    department = hub.department()
    seal = _issue(client, hub, department.id)
    system = sealer(hub, department)
    signed = client.post("/seal/sign", headers=system.headers, json={"purpose": "回执", "document": {"a": 1}}).json()
    client.post(f"/seals/{seal['id']}/revoke", headers=hub.admin.headers, json={"reason": "密钥泄露"}).raise_for_status()
    report = client.post("/seal/verify/signature", json={"signature": signed, "document": {"a": 1}}).json()
    assert (
        report["checks"]["seal_status_now"]["status"] == "warning"
        and "密钥泄露" in report["checks"]["seal_status_now"]["message"]
    )
    # without the hub's record of the use, the time stamp (the hub's TSA's) still proves it predates the revocation
    db.query(SealUse).filter(SealUse.seal_id == seal["id"]).delete()
    db.flush()
    service.clear_caches()  # a use record never changes: the hub remembers it, so one removed by hand must be forgotten
    stamped = client.post("/seal/verify/signature", json={"signature": signed, "document": {"a": 1}}).json()
    assert stamped["verdict"] == "valid" and stamped["checks"]["timestamp"]["status"] == "passed", stamped
    # without the time stamp either (it is outside what the seal signs), nothing proves it
    parsed = sesder.SESSignature.load(base64.b64decode(signed["der_base64"]))
    unstamped = sesder.signature(
        parsed["toSign"], cert=parsed["cert"].native, alg=parsed["signatureAlgID"].dotted, value=parsed["signature"].native
    )
    body = {"signature": base64.b64encode(unstamped).decode(), "document": {"a": 1}}
    unproven = client.post("/seal/verify/signature", json=body).json()
    assert unproven["verdict"] == "indeterminate" and unproven["sub_indication"] == "REVOKED_NO_POE"
    after = client.post("/seal/sign", headers=system.headers, json={"purpose": "回执", "document": {"a": 1}})
    assert after.status_code == 409


def test_a_signature_from_an_untrusted_authority_is_indeterminate(client: TestClient, hub: Hub, db: Session) -> None:
    department = hub.department()
    _issue(client, hub, department.id)
    signed = client.post(
        "/seal/sign", headers=sealer(hub, department).headers, json={"purpose": "回执", "document": {"a": 1}}
    ).json()
    for row in db.scalars(select(authority.AuthorityKey)):
        row.role = f"old-{row.role}"[:16]  # the verifier no longer knows this hub's CA
    db.flush()
    report = client.post("/seal/verify/signature", json={"signature": signed, "document": {"a": 1}}).json()
    assert report["verdict"] == "indeterminate" and report["checks"]["chain"]["status"] == "indeterminate"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"signature": {}, "document": {"a": 1}}, "toSign"),
        ({"signature": {"toSign": {"eseal": {}}, "signatureAlgorithm": "1.2.3"}, "document": {"a": 1}}, "signatureAlgorithm"),
        (
            {"signature": {"toSign": {"eseal": {}}, "signatureAlgorithm": "1.3.101.112", "cert": "!!"}, "document": {"a": 1}},
            "base64",
        ),
        (
            {"signature": {"toSign": {"eseal": {}}, "signatureAlgorithm": "1.3.101.112", "cert": "AAAA"}, "document": {"a": 1}},
            "certificate",
        ),
        ({"signature": {"toSign": {}}, "document": {"a": 1}, "data_base64": "AA=="}, "exactly one"),
        ({"signature": "not an object", "document": {"a": 1}}, "signature"),
        ({"document": {"a": 1}}, "signature"),
    ],
)
def test_garbage_given_to_the_signature_verifier_gets_a_clear_4xx(client: TestClient, body: dict[str, object], says: str) -> None:
    response = client.post("/seal/verify/signature", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert says in response.text


def test_a_pdf_sealed_with_a_time_stamp_is_pades_b_t(client: TestClient, hub: Hub, db: Session, app: Any) -> None:
    """With a time-stamp authority configured, the seal carries an RFC 3161 token over its signature."""
    department = hub.department()
    seal = _issue(client, hub, department.id)
    vault = app.state.vault
    system = Principal(subject="records-system", roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=department.id)
    grant(db, str(seal["id"]), system.subject)
    sealed = service.seal_pdf(
        db,
        vault=vault,
        department_id=department.id,
        pdf=one_page_pdf(),
        purpose="带时间戳用印",
        actor=system,
        timestamper=hub_tsa(db, vault),
        settings=app.state.settings,
    )
    report = service.verify_pdf(db, pdf_bytes=sealed, settings=app.state.settings)
    signature = report.signatures[0]
    assert report.verdict == "valid", signature.reasons
    assert signature.timestamp_time is not None and signature.checks["timestamp"].status == "passed"
    assert "B-T" in signature.checks["timestamp"].message


def test_a_detached_signature_carries_an_rfc3161_time_stamp_that_proves_it_predates_a_revocation(
    client: TestClient, hub: Hub, db: Session, app: Any
) -> None:
    department = hub.department()
    seal = _issue(client, hub, department.id, algorithm="SM2")
    system = Principal(subject="records-system", roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=department.id)
    grant(db, str(seal["id"]), system.subject)
    signed = service.sign_detached(
        db,
        vault=app.state.vault,
        department_id=department.id,
        data=b"receipt",
        purpose="回执",
        actor=system,
        timestamper=hub_tsa(db, app.state.vault),
        settings=app.state.settings,
    )
    assert signed["view"]["timeStamp"]
    service.revoke_seal(db, who=hub.admin_principal(), seal_id=str(seal["id"]), reason="印章遗失")
    db.query(SealUse).filter(SealUse.seal_id == seal["id"]).delete()  # only the time stamp is left as proof
    db.flush()
    report = service.verify_detached(db, signature=signed, data=b"receipt", settings=app.state.settings)
    assert report.checks["timestamp"].status == "passed" and report.timestamp_time is not None
    assert report.verdict == "valid" and report.checks["seal_status_now"].status == "warning"
    other = sesder.SESSignature.load(base64.b64decode(signed["der_base64"]))
    other["timeStamp"] = b"not a token"
    broken = service.verify_detached(db, signature=other.dump(force=True), data=b"receipt", settings=app.state.settings)
    assert broken.checks["timestamp"].status == "failed" and broken.verdict == "invalid"


def test_a_seal_of_a_trusted_other_hub_chains_but_its_status_is_indeterminate_here(
    client: TestClient, hub: Hub, db: Session, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """互通互认: another hub's root in the trust file makes its seals chain; their status is theirs to tell."""
    from pathlib import Path

    from cryptography.hazmat.primitives import serialization

    from seal import repository, service

    department = hub.department()
    _issue(client, hub, department.id, algorithm="SM2")
    signed = client.post(
        "/seal/sign", headers=sealer(hub, department).headers, json={"purpose": "跨省互认", "document": {"a": 1}}
    ).json()
    # this hub's authority becomes "the other hub": forgotten here, its certificates given in the trust file
    bundle = Path(str(tmp_path)) / "other-hub.pem"
    bundle.write_bytes(
        b"".join(
            c.public_bytes(serialization.Encoding.PEM)
            for c in authority.root_certificates(db) + authority.intermediate_certificates(db)
        )
        + b"".join(sm2ca.pem(c).encode() for c in sm2ca.certificates(db, sm2ca.ROOT) + sm2ca.certificates(db, sm2ca.ISSUING))
    )
    for row in db.scalars(select(authority.AuthorityKey)):
        row.role = f"old-{row.role}"[:16]
    db.flush()
    monkeypatch.setattr(repository, "seal_state_by_serial", lambda _db, _serial, _hash: (None, None))
    service.clear_caches()  # the authority and the seal were changed by hand: what the process remembers goes
    untrusted = service.verify_detached(db, signature=signed, data=b'{"a":1}', settings=hub.settings)
    assert untrusted.verdict == "indeterminate" and untrusted.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
    with_bundle = hub.settings.model_copy(update={"seal_trusted_roots_file": bundle})
    trusted = service.verify_detached(db, signature=signed, data=b'{"a":1}', settings=with_bundle)
    assert trusted.checks["chain"].status == "passed" and trusted.checks["seal_structure"].status == "passed"
    assert trusted.checks["seal_valid_at_signing"].status == "passed"
    assert trusted.verdict == "indeterminate" and trusted.sub_indication == "TRY_LATER"


def test_no_seal_endpoint_ever_returns_a_private_key(client: TestClient, hub: Hub) -> None:
    department = hub.department()
    seal = _issue(client, hub, department.id, algorithm="SM2")
    system = sealer(hub, department)
    signed = client.post("/seal/sign", headers=system.headers, json={"purpose": "回执", "document": {"a": 1}})
    bodies = [
        client.get(f"/seals/{seal['id']}", headers=hub.admin.headers).text,
        client.get("/seals", headers=system.headers).text,
        client.get(f"/seals/{seal['id']}/structure", headers=system.headers).text,
        client.get("/seal/jwks").text,
        client.get("/seal/ca").text,
        signed.text,
    ]
    for body in bodies:
        assert "PRIVATE KEY" not in body and "wrapped_dek" not in body and '"d":' not in body
    jwks = client.get("/seal/jwks", params={"department_code": department.code}).json()
    assert [k["kid"] for k in jwks["keys"]] == [seal["kid"]] and jwks["keys"][0]["dept_code"] == department.code
    assert client.get("/seal/jwks", params={"department_code": "NOSUCHCODE"}).json() == {"keys": []}


def test_two_departments_seal_the_same_pdf_and_both_seals_verify(client: TestClient, hub: Hub) -> None:
    """A joint document (联合发文): the second seal is added after the first, which stays valid."""
    first, second = hub.department("市场监督管理局"), hub.department("税务局")
    _issue(client, hub, first.id)
    _issue(client, hub, second.id, algorithm="EdDSA")
    once = _seal_pdf(client, sealer(hub, first), one_page_pdf(), box="300,60,420,180")
    twice = _seal_pdf(client, sealer(hub, second), once, box="440,60,560,180")
    report = _verify_pdf(client, twice)
    assert [s["signer"]["organization_identifier"] for s in report["signatures"]] == [first.code, second.code]  # type: ignore[index]
    assert report["verdict"] == "valid", report


def test_a_signature_made_before_its_seal_expired_stays_valid_with_a_warning(client: TestClient, hub: Hub, db: Session) -> None:
    from ops.db import utcnow
    from seal.models import Seal
    from seal.tasks import JOBS

    department = hub.department()
    created = _issue(client, hub, department.id)
    signed = client.post(
        "/seal/sign", headers=sealer(hub, department).headers, json={"purpose": "回执", "document": {"a": 1}}
    ).json()
    seal = db.get(Seal, created["id"])
    assert seal is not None
    seal.valid_to = utcnow()  # the validity period ends just after the signature was made
    db.flush()
    next(job for job in JOBS if job.name == "seal.expire").run(db)
    report = client.post("/seal/verify/signature", json={"signature": signed, "document": {"a": 1}}).json()
    assert report["checks"]["seal_valid_at_signing"]["status"] == "passed"
    assert (
        report["checks"]["seal_status_now"]["status"] == "warning" and "expired" in report["checks"]["seal_status_now"]["message"]
    )
    assert report["verdict"] == "valid"
    refused = client.post("/seal/sign", headers=sealer(hub, department).headers, json={"purpose": "回执", "document": {"a": 1}})
    assert refused.status_code == 409
