"""Scenarios of long-term validation (长期验证): PDFs sealed at PAdES B-LT and B-LTA, validated by pyHanko offline
after the seal's certificate has expired, the renewal of a kept PDF's time stamp chain, and verification as of
a past time."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate, AdESPassed
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule
from pyhanko_certvalidator.registry import SimpleTrustManager
from sqlalchemy import select
from sqlalchemy.orm import Session

import ops.db
from ops.audit import AuditRecord
from ops.config import Settings
from seal import authority, ltv, service
from seal import pdf as pades
from seal.models import LtaRecord, Seal
from tests.conftest import Actor, Hub
from tests.seal.helpers import ltv_tsa, one_page_pdf, seal_body, sealer

# "Revocation checking on": the seal's certificate must have revocation data (the hub's CRL), and so must the
# issuing CA's when pyHanko slides back in time (the root's CRL); a TSA's certificate is checked where it names a
# source (the test TSA names none: the newest stamp of a chain is always judged with current data, which nothing
# embedded can give).
REVOCATION_ON = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CRL_OR_OCSP_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
    )
)
TSA_REVOCATION = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
        intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED,
    )
)


def _pyhanko_offline(pdf: bytes, root: x509.Certificate, at: datetime) -> Any:
    """pyHanko's own AdES long-term validation of the first signature, at `at`, from what the PDF embeds only."""
    trust_manager = SimpleTrustManager.build(trust_roots=[pades.asn1_cert(root)])
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(trust_manager=trust_manager, revinfo_policy=REVOCATION_ON),
            ts_cert_validation_policy=CertValidationPolicySpec(trust_manager=trust_manager, revinfo_policy=TSA_REVOCATION),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY),
        )
    )
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    timing = ValidationTimingInfo(validation_time=at, best_signature_time=at, point_in_time_validation=True)
    return asyncio.run(ades_lta_validation(reader.embedded_signatures[0], spec, timing_info=timing))


def _seal_pdf(client: TestClient, system: Actor, pdf: bytes, **form: str) -> Any:
    return client.post(
        "/seal/pdf",
        headers=system.headers,
        files={"file": ("notice.pdf", pdf, "application/pdf")},
        data={"purpose": "行政许可决定书用印", **form},
    )


@pytest.fixture()
def tsa(monkeypatch: pytest.MonkeyPatch, app: Any, session_factory: Any) -> Any:
    """The hub's time-stamp authority for these tests (a TSA certified by the hub's CA, in-process)."""
    with session_factory() as session:
        stamper = ltv_tsa(session, app.state.vault, public_url=app.state.settings.public_url)
        session.commit()
    monkeypatch.setattr(ltv, "timestamper_for", lambda *args: stamper)
    return stamper


def _seal_and_cert(hub: Hub, client: TestClient, db: Session) -> tuple[Actor, Seal, x509.Certificate]:
    department = hub.department()
    made = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id))
    assert made.status_code == 201, made.text
    seal = db.get(Seal, made.json()["id"])
    assert seal is not None
    return sealer(hub, department), seal, x509.load_pem_x509_certificate(seal.certificate_pem.encode())


def test_pyhanko_validates_a_b_lta_pdf_offline_after_the_seal_certificate_expired(
    client: TestClient, hub: Hub, db: Session, tsa: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealed at B-LTA, the PDF carries everything: pyHanko, with revocation checking on and no network, finds it
    valid a month after the seal's certificate expired; the hub, its clock moved there too, says which evidence
    carried the verdict."""
    system, _, cert = _seal_and_cert(hub, client, db)
    response = _seal_pdf(client, system, one_page_pdf(), level="B-LTA")
    assert response.status_code == 200, response.text
    sealed = response.content
    root = authority.root_certificates(db)[-1]
    later = cert.not_valid_after_utc + timedelta(days=30)

    result = _pyhanko_offline(sealed, root, later)
    assert result.ades_subindic == AdESPassed.OK, result.api_status.pretty_print_details() if result.api_status else result

    # the same seal at B-T (no revocation data, no document time stamp) cannot be validated then
    plain = _seal_pdf(client, system, one_page_pdf("another notice"), level="B-T")
    assert plain.status_code == 200, plain.text
    without = _pyhanko_offline(plain.content, root, later)
    assert without.ades_subindic != AdESPassed.OK
    assert isinstance(without.ades_subindic, AdESIndeterminate)

    monkeypatch.setattr(ops.db, "utcnow", lambda: later)  # the hub's clock, a month after the expiry
    report = client.post("/seal/verify/pdf", files={"file": ("sealed.pdf", sealed, "application/pdf")}).json()
    (only,) = report["signatures"]
    assert report["verdict"] == "valid", only["reasons"]
    assert only["level"] == "B-LTA"
    assert only["checks"]["revocation"]["status"] == "passed"
    assert only["checks"]["long_term"]["status"] == "passed"
    assert only["carried_by"][:2] == ["signature_timestamp", "dss_revocation"]
    kinds = [e["kind"] for e in only["evidence"]]
    assert kinds[:3] == ["signature", "signature_timestamp", "dss_revocation"] and "document_timestamp" in kinds
    b_t = client.post("/seal/verify/pdf", files={"file": ("plain.pdf", plain.content, "application/pdf")}).json()
    assert b_t["signatures"][0]["level"] == "B-T"
    assert "dss_revocation" not in b_t["signatures"][0]["carried_by"]  # the hub's own history stood in for it


def test_b_lt_embeds_the_hubs_crl_and_certificates_in_the_dss(client: TestClient, hub: Hub, db: Session, tsa: Any) -> None:
    system, seal, cert = _seal_and_cert(hub, client, db)
    response = _seal_pdf(client, system, one_page_pdf(), level="B-LT")
    assert response.status_code == 200, response.text
    root = authority.root_certificates(db)[-1]
    store = ltv.security_store(PdfFileReader(io.BytesIO(response.content), strict=False))
    assert any(crl.issuer == cert.issuer for crl in store.crls)
    assert any(c.subject == cert.issuer for c in store.certificates)
    assert store.ocsp_count >= 1  # the hub's OCSP answer for the seal's certificate, asked in-process
    assert (
        ltv.document_stamps(PdfFileReader(io.BytesIO(response.content), strict=False), roots=[root]) == []
    )  # B-LT: no document stamp
    assert db.scalars(select(LtaRecord).where(LtaRecord.seal_id == seal.id)).first() is None  # only B-LTA is kept


def test_a_signature_made_after_the_seal_was_revoked_is_invalid_with_the_reason(
    client: TestClient, hub: Hub, db: Session, app: Any, tsa: Any
) -> None:
    """A revoked seal's key used anyway (a stolen key): the hub refuses to seal, and a PDF signed outside the hub
    with that key and time-stamped is invalid, pyHanko given the hub's CRL agrees."""
    system, seal, cert = _seal_and_cert(hub, client, db)
    revoked = client.post(f"/seals/{seal.id}/revoke", headers=hub.admin.headers, json={"reason": "印章遗失"})
    assert revoked.status_code == 200, revoked.text
    refused = _seal_pdf(client, system, one_page_pdf(), level="B-LT")
    assert refused.status_code in (403, 409), refused.text
    db.expire_all()
    from ops.crypto import WrappedSecret
    from seal.common import key_purpose

    seal = db.get(Seal, seal.id)
    assert seal is not None
    pem = app.state.vault.unwrap(WrappedSecret.from_dict(seal.private_key), purpose=key_purpose(seal.id))
    forged = pades.sign(
        one_page_pdf(),
        cert=cert,
        chain=authority.intermediate_certificates(db),
        private_pem=pem,
        spec=pades.StampSpec(page=0, box=None, width_mm=40, height_mm=40, picture_png=None, label="stolen"),
        reason="盗用",
        signer_name="someone",
        field_name="Stolen",
        timestamper=tsa,
    )
    report = service.verify_pdf(db, pdf_bytes=forged, settings=app.state.settings)
    (only,) = report.signatures
    assert report.verdict == "invalid" and only.sub_indication == "REVOKED"
    assert "revoked" in only.checks["seal_valid_at_signing"].message
    assert any("revoked" in reason for reason in only.reasons)

    # the hub's CRL, as a verifier elsewhere would fetch it, tells pyHanko the same
    crl = service.current_crl(db, vault=app.state.vault, chain="p256", public_url=app.state.settings.public_url)
    context = ltv.ValidationContext(
        trust_roots=[pades.asn1_cert(authority.root_certificates(db)[-1])],
        other_certs=[pades.asn1_cert(c) for c in authority.intermediate_certificates(db)],
        crls=[crl],
        allow_fetching=False,
        revocation_mode="hard-fail",
    )
    from pyhanko.sign.validation import validate_pdf_signature

    status = validate_pdf_signature(PdfFileReader(io.BytesIO(forged), strict=False).embedded_signatures[0], context)
    assert status.intact and status.valid and not status.trusted
    assert (
        status.revocation_details is not None and status.revocation_details.revocation_reason.native == "cessation_of_operation"
    )


def test_the_renewal_job_adds_a_document_time_stamp_and_the_chain_still_validates(
    client: TestClient, hub: Hub, db: Session, app: Any, tsa: Any
) -> None:
    """A kept B-LTA PDF whose TSA certificate nears its expiry gets a new document time stamp from the job (with
    the DSS data of the last one first); pyHanko still validates it offline; the record shows the new state."""
    system, seal, cert = _seal_and_cert(hub, client, db)
    response = _seal_pdf(client, system, one_page_pdf(), level="B-LTA")
    assert response.status_code == 200, response.text
    record = db.scalars(select(LtaRecord).where(LtaRecord.seal_id == seal.id)).one()
    assert record.timestamps == 1 and record.renewals == 0 and record.last_error is None
    assert record.renew_after == record.last_tsa_expires_at - timedelta(days=365)

    nothing = service.renew_due(db, vault=app.state.vault, settings=app.state.settings, timestamper=tsa)
    assert nothing.renewed == [] and nothing.failed == {}  # not due yet

    done = service.renew_due(
        db, vault=app.state.vault, settings=app.state.settings, timestamper=tsa, now=record.renew_after + timedelta(seconds=1)
    )
    assert done.renewed == [record.id] and done.failed == {}
    db.refresh(record)
    assert record.timestamps == 2 and record.renewals == 1 and record.last_renewed_at is not None
    assert record.document != response.content and record.document.startswith(response.content)  # an incremental update
    audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "seal.lta.renew")).one()
    assert audit.object_id == record.id

    later = cert.not_valid_after_utc + timedelta(days=30)
    result = _pyhanko_offline(record.document, authority.root_certificates(db)[-1], later)
    assert result.ades_subindic == AdESPassed.OK, result.api_status.pretty_print_details() if result.api_status else result
    report = service.verify_pdf(db, pdf_bytes=record.document, settings=app.state.settings)
    assert report.verdict == "valid", report.signatures[0].reasons

    shown = client.get(f"/seal/lta-records/{record.id}", headers=system.headers)
    assert shown.status_code == 200 and shown.json()["timestamps"] == 2
    document = client.get(f"/seal/lta-records/{record.id}/document", headers=system.headers)
    assert document.status_code == 200 and document.content == record.document
    assert db.scalars(select(AuditRecord).where(AuditRecord.action == "seal.lta.document.read")).one().object_id == record.id
    other = sealer(hub, hub.department("另一个部门"), name="另一个系统")
    assert client.get(f"/seal/lta-records/{record.id}", headers=other.headers).status_code == 404
    listed = client.get("/seal/lta-records", headers=system.headers).json()["items"]
    assert [r["id"] for r in listed] == [record.id]


def test_a_weakened_digest_algorithm_makes_the_chain_due_at_once_and_the_renewal_uses_the_configured_one(
    client: TestClient, hub: Hub, db: Session, app: Any, tsa: Any
) -> None:
    system, seal, _ = _seal_and_cert(hub, client, db)
    assert _seal_pdf(client, system, one_page_pdf(), level="B-LTA").status_code == 200
    record = db.scalars(select(LtaRecord).where(LtaRecord.seal_id == seal.id)).one()
    assert record.last_digest_algorithm == "sha256"
    settings = app.state.settings.model_copy(
        update={"seal_lta_weakened_digests": "SHA-256", "seal_lta_digest_algorithm": "sha512"}
    )
    done = service.renew_due(db, vault=app.state.vault, settings=settings, timestamper=tsa)
    assert done.renewed == [record.id]
    db.refresh(record)
    assert record.last_digest_algorithm == "sha512" and record.timestamps == 2
    again = service.renew_due(db, vault=app.state.vault, settings=settings, timestamper=tsa)
    assert again.renewed == []  # sha512 is not weakened: nothing more to do
    both = settings.model_copy(update={"seal_lta_weakened_digests": "sha256,sha512"})
    refused = service.renew_due(db, vault=app.state.vault, settings=both, timestamper=tsa)
    assert refused.renewed == [] and "itself listed as weakened" in refused.failed[record.id]
    db.refresh(record)
    assert record.timestamps == 2  # nothing added


def test_with_the_time_stamp_authority_unreachable_the_renewal_waits_visibly(
    client: TestClient, hub: Hub, db: Session, app: Any, tsa: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    system, seal, _ = _seal_and_cert(hub, client, db)
    assert _seal_pdf(client, system, one_page_pdf(), level="B-LTA").status_code == 200
    record = db.scalars(select(LtaRecord).where(LtaRecord.seal_id == seal.id)).one()
    before = record.document
    unreachable = HTTPTimeStamper("http://127.0.0.1:9/tsa", timeout=2)  # nothing listens on the discard port
    run = service.renew_due(
        db, vault=app.state.vault, settings=app.state.settings, timestamper=unreachable, now=record.renew_after
    )
    assert run.renewed == [] and "did not answer" in run.failed[record.id]
    db.refresh(record)
    assert record.timestamps == 1 and record.document == before and record.last_attempt_at is not None
    shown = client.get(f"/seal/lta-records/{record.id}", headers=system.headers).json()
    assert "did not answer" in shown["last_error"]
    again = service.renew_due(db, vault=app.state.vault, settings=app.state.settings, timestamper=tsa, now=record.renew_after)
    assert again.renewed == [record.id]  # still due: the next run with the TSA back stamps it
    db.refresh(record)
    assert record.timestamps == 2 and record.last_error is None


def test_verification_as_of_a_past_time_says_which_evidence_carried_it(
    client: TestClient, hub: Hub, db: Session, app: Any, tsa: Any
) -> None:
    system, seal, _ = _seal_and_cert(hub, client, db)
    sealed = _seal_pdf(client, system, one_page_pdf(), level="B-LTA").content
    revoked = client.post(f"/seals/{seal.id}/revoke", headers=hub.admin.headers, json={"reason": "机构撤销"})
    assert revoked.status_code == 200
    now = client.post("/seal/verify/pdf", files={"file": ("s.pdf", sealed, "application/pdf")}).json()
    (signature,) = now["signatures"]
    assert now["verdict"] == "valid" and signature["checks"]["seal_status_now"]["status"] == "warning"  # revoked after
    stamped, revoked_at = (
        datetime.fromisoformat(signature["timestamp_time"]),
        datetime.fromisoformat(revoked.json()["revoked_at"]),
    )
    assert stamped < revoked_at
    before = (stamped + (revoked_at - stamped) / 2).isoformat()  # sealed, not yet revoked
    then = client.post("/seal/verify/pdf", params={"as_of": before}, files={"file": ("s.pdf", sealed, "application/pdf")}).json()
    (signature,) = then["signatures"]
    assert then["verdict"] == "valid" and signature["checks"]["seal_status_now"]["status"] == "passed"
    assert signature["as_of"].startswith(before[:19])
    assert signature["carried_by"] == ["signature", "dss_revocation"]


def test_bad_input_gets_a_clear_4xx(client: TestClient, hub: Hub, db: Session, tsa: Any) -> None:
    system, _, _ = _seal_and_cert(hub, client, db)
    unknown = _seal_pdf(client, system, one_page_pdf(), level="B-XL")
    assert unknown.status_code == 422 and "B-LTA" in unknown.json()["detail"]
    sealed = _seal_pdf(client, system, one_page_pdf(), level="B-LTA").content
    files = {"file": ("s.pdf", sealed, "application/pdf")}
    future = (datetime.now().astimezone() + timedelta(days=1)).isoformat()
    ahead = client.post("/seal/verify/pdf", params={"as_of": future}, files=files)
    assert ahead.status_code == 422 and "future" in ahead.json()["detail"]
    naive = client.post("/seal/verify/pdf", params={"as_of": "2026-01-01T00:00:00"}, files=files)
    assert naive.status_code == 422 and "time zone" in naive.json()["detail"]
    words = client.post("/seal/verify/pdf", params={"as_of": "last tuesday"}, files=files)
    assert words.status_code == 422
    garbage = client.post("/seal/verify/pdf", files={"file": ("g.pdf", b"%PDF-1.7 garbage \x00\x01", "application/pdf")})
    assert garbage.status_code == 422, garbage.text
    garbage_lta = _seal_pdf(client, system, b"not a pdf at all", level="B-LTA")
    assert garbage_lta.status_code == 422 and "not a PDF" in garbage_lta.json()["detail"]


def test_the_hubs_own_time_stamp_authority_makes_b_lta_by_default_and_b_b_has_no_stamp(
    client: TestClient, hub: Hub, db: Session
) -> None:
    """Without a stand-in TSA: the hub's own (seal/tsa.py) stamps the signature and the document."""
    system, seal, _ = _seal_and_cert(hub, client, db)
    lta = _seal_pdf(client, system, one_page_pdf(), level="B-LTA")
    assert lta.status_code == 200, lta.text
    report = client.post("/seal/verify/pdf", files={"file": ("s.pdf", lta.content, "application/pdf")}).json()
    assert report["verdict"] == "valid" and report["signatures"][0]["level"] == "B-LTA", report
    assert db.scalars(select(LtaRecord).where(LtaRecord.seal_id == seal.id)).one().timestamps == 1
    plain = _seal_pdf(client, system, one_page_pdf(), level="B-B")
    assert plain.status_code == 200
    b_b = client.post("/seal/verify/pdf", files={"file": ("s.pdf", plain.content, "application/pdf")}).json()
    assert b_b["signatures"][0]["level"] == "B-B" and b_b["signatures"][0]["timestamp_time"] is None
    default = _seal_pdf(client, system, one_page_pdf())
    b_t = client.post("/seal/verify/pdf", files={"file": ("s.pdf", default.content, "application/pdf")}).json()
    assert b_t["signatures"][0]["level"] == "B-T"


def test_settings_for_the_renewal_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVHUB_SEAL_LTA_RENEWAL_MARGIN_DAYS", "90")
    monkeypatch.setenv("GOVHUB_SEAL_LTA_WEAKENED_DIGESTS", "sha1, SHA-224")
    settings = Settings()
    assert settings.seal_lta_renewal_margin_days == 90 and ltv.weakened(settings) == {"sha1", "sha224"}


def test_after_the_tsa_certificate_expires_only_a_renewed_chain_keeps_the_evidence(
    client: TestClient, hub: Hub, db: Session, app: Any, tsa: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stamped by a TSA whose certificate lasts 5 years, a B-LTA PDF left alone lapses when that certificate
    expires: the hub says so and names the date. Renewed in time by a TSA with a 10-year certificate, the chain
    carries it past that date."""
    system, seal, cert = _seal_and_cert(hub, client, db)
    assert _seal_pdf(client, system, one_page_pdf(), level="B-LTA").status_code == 200
    record = db.scalars(select(LtaRecord).where(LtaRecord.seal_id == seal.id)).one()
    alone = record.document
    lapsed_on = record.last_tsa_expires_at
    longer = ltv_tsa(db, app.state.vault, public_url=app.state.settings.public_url, years=10)
    done = service.renew_due(db, vault=app.state.vault, settings=app.state.settings, timestamper=longer, now=record.renew_after)
    assert done.renewed == [record.id]
    db.refresh(record)
    assert record.last_tsa_expires_at > lapsed_on + timedelta(days=365 * 4)
    renewed = record.document
    then = lapsed_on + timedelta(days=30)  # the seal's and the first TSA's certificates have both expired
    monkeypatch.setattr(ops.db, "utcnow", lambda: then)
    left = service.verify_pdf(db, pdf_bytes=alone, settings=app.state.settings).signatures[0]
    assert left.verdict == "indeterminate" and left.checks["long_term"].status == "indeterminate"
    assert "lapsed" in left.checks["long_term"].message and left.sub_indication == "OUT_OF_BOUNDS_NO_POE"
    kept = service.verify_pdf(db, pdf_bytes=renewed, settings=app.state.settings).signatures[0]
    assert kept.verdict == "valid", kept.reasons
    assert kept.carried_by is not None and "document_timestamp" in kept.carried_by
    assert cert.not_valid_after_utc < then
