"""Scenarios of seal issuance (制发) and lifecycle: who may make seals, what is checked, what is kept."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from govhub.app import create_app
from govhub.database import prepare
from ops.audit import AuditRecord
from ops.config import Settings
from ops.db import check_write_intent, make_engine, utcnow
from seal import authority, keys, service, sesder, verification
from seal.models import Seal, SealEvent
from tests.conftest import MASTER_KEY, Hub
from tests.seal.helpers import SVG_PICTURE, png_picture, seal_body


@pytest.mark.parametrize("algorithm", ["SM2", "ES256", "EdDSA"])
def test_the_platform_issues_a_seal_bound_to_the_department_by_its_certificate(
    client: TestClient, hub: Hub, algorithm: str
) -> None:
    department = hub.department("测试市市场监督管理局")
    response = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm=algorithm))
    assert response.status_code == 201, response.text
    seal = response.json()
    assert seal["status"] == "active" and seal["algorithm"] == algorithm and response.headers["etag"] == '"1"'
    assert "private_key" not in seal and "PRIVATE" not in response.text
    cert = x509.load_pem_x509_certificate(seal["certificate_pem"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == department.code
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == seal["code"]
    ca = client.get("/seal/ca").json()
    # SM2 seals are certified by the SM2 issuing CA (SM2 with SM3), the others by the P-256 one
    issuing = x509.load_pem_x509_certificate(ca["sm2_issuing" if algorithm == "SM2" else "issuing"].encode())
    assert verification._issued_by(cert, issuing)
    other = x509.load_pem_x509_certificate(ca["issuing" if algorithm == "SM2" else "sm2_issuing"].encode())
    assert not verification._issued_by(cert, other)
    structure = client.get(f"/seals/{seal['id']}/structure", headers=hub.admin.headers).json()
    info = structure["view"]
    assert info["header"]["id"] == "ES" and info["header"]["version"] == 4 and info["esID"] == seal["code"]
    assert {"extnID": sesder.EXT_SEAL_TYPE, "critical": False, "extnValue": "公章"} in info["extDatas"]
    assert base64.b64decode(info["property"]["certList"][0]) == cert.public_bytes(serialization.Encoding.DER)
    assert info["picture"]["width"] == 42 and info["picture"]["type"] == "PNG"
    der = client.get(f"/seals/{seal['id']}/structure", headers={**hub.admin.headers, "Accept": "application/octet-stream"})
    assert der.headers["content-type"] == "application/octet-stream"
    assert der.content == base64.b64decode(structure["der_base64"])
    assert sesder.parse_seal(der.content).picture.startswith(b"\x89PNG")


def test_the_seal_structure_is_signed_by_the_maker_and_an_altered_one_is_detected(
    db: Session, hub: Hub, client: TestClient
) -> None:
    department = hub.department()
    created = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id)).json()
    seal = db.get(Seal, created["id"])
    assert seal is not None
    assert seal.structure_der is not None
    parsed = sesder.parse_seal(seal.structure_der)
    maker = x509.load_der_x509_certificate(parsed.maker_cert)
    assert parsed.maker_alg == "1.2.156.10197.1.501"  # SM2 with SM3, by the SM2 seal maker
    assert keys.verify_der("SM2", authority.spki_der(maker), parsed.maker_signed, parsed.maker_signature)
    altered = sesder.SESeal.load(seal.structure_der)
    altered["eSealInfo"]["property"]["name"] = "伪造的印章"
    forged = sesder.parse_seal(altered.dump(force=True))
    assert forged.name == "伪造的印章"
    assert not keys.verify_der("SM2", authority.spki_der(maker), forged.maker_signed, forged.maker_signature)


def test_an_svg_picture_is_accepted_and_served_with_its_type(client: TestClient, hub: Hub) -> None:
    department = hub.department()
    body = seal_body(
        department.id,
        picture={"type": "svg", "data_base64": base64.b64encode(SVG_PICTURE).decode(), "width_mm": 40, "height_mm": 40},
    )
    created = client.post("/seals", headers=hub.admin.headers, json=body)
    assert created.status_code == 201, created.text
    picture = client.get(f"/seals/{created.json()['id']}/picture", headers=hub.admin.headers)
    assert picture.headers["content-type"] == "image/svg+xml" and picture.content == SVG_PICTURE


@pytest.mark.parametrize(
    ("picture", "status", "says"),
    [
        (
            {"type": "png", "data_base64": base64.b64encode(b"GIF89a not a png").decode(), "width_mm": 40, "height_mm": 40},
            422,
            "not a PNG",
        ),
        ({"type": "png", "data_base64": "%%%not base64%%%", "width_mm": 40, "height_mm": 40}, 422, "base64"),
        (
            {"type": "png", "data_base64": base64.b64encode(png_picture()[:60]).decode(), "width_mm": 40, "height_mm": 40},
            422,
            "cannot be decoded",
        ),
        (
            {"type": "png", "data_base64": base64.b64encode(png_picture()).decode(), "width_mm": 400, "height_mm": 40},
            422,
            "width_mm",
        ),
        (
            {
                "type": "svg",
                "data_base64": base64.b64encode(
                    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
                ).decode(),
                "width_mm": 40,
                "height_mm": 40,
            },
            422,
            "script",
        ),
        (
            {
                "type": "svg",
                "data_base64": base64.b64encode(
                    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><svg xmlns="http://www.w3.org/2000/svg"/>'
                ).decode(),
                "width_mm": 40,
                "height_mm": 40,
            },
            422,
            "DOCTYPE",
        ),
        (
            {"type": "svg", "data_base64": base64.b64encode(b"<html></html>").decode(), "width_mm": 40, "height_mm": 40},
            422,
            "not an SVG",
        ),
        (
            {
                "type": "png",
                "data_base64": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 300_000).decode(),
                "width_mm": 40,
                "height_mm": 40,
            },
            413,
            "at most",
        ),
        ({"type": "gif", "data_base64": "R0lGOD", "width_mm": 40, "height_mm": 40}, 422, "picture.type"),
    ],
)
def test_a_bad_picture_is_refused_with_what_is_wrong(
    client: TestClient, hub: Hub, picture: dict[str, object], status: int, says: str
) -> None:
    department = hub.department()
    response = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, picture=picture))
    assert response.status_code == status, response.text
    assert says in response.text
    assert client.get("/seals", headers=hub.admin.headers).json()["items"] == []


def test_bad_seal_requests_get_clear_errors(client: TestClient, hub: Hub) -> None:
    department = hub.department()
    past = client.post(
        "/seals", headers=hub.admin.headers, json=seal_body(department.id, valid_to=(utcnow() - timedelta(days=1)).isoformat())
    )
    assert past.status_code == 422 and "valid_to" in past.json()["detail"]
    backdated = client.post(
        "/seals",
        headers=hub.admin.headers,
        json=seal_body(department.id, valid_from=(utcnow() - timedelta(days=30)).isoformat()),
    )
    assert backdated.status_code == 422 and backdated.json()["errors"][0]["field"] == "valid_from"
    naive = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, valid_to="2030-01-01T00:00:00"))
    assert naive.status_code == 422 and "time zone" in naive.text
    unknown_type = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, seal_type="私章"))
    assert unknown_type.status_code == 422 and "公章" in unknown_type.json()["detail"]
    unknown_alg = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, algorithm="RS256"))
    assert unknown_alg.status_code == 422 and unknown_alg.json()["errors"][0]["field"] == "algorithm"
    nobody = client.post("/seals", headers=hub.admin.headers, json=seal_body("no-such-department"))
    assert nobody.status_code == 404 and "department" in nobody.json()["detail"]
    malformed = client.post("/seals", headers={**hub.admin.headers, "content-type": "application/json"}, content=b"{not json")
    assert malformed.status_code == 400


def test_only_the_platform_makes_seals_and_a_department_sees_only_its_own(client: TestClient, hub: Hub) -> None:
    police = hub.department("公安局")
    health = hub.department("卫健委")
    police_system = hub.system(police)
    refused = client.post("/seals", headers=police_system.headers, json=seal_body(police.id))
    assert refused.status_code == 403
    own = client.post("/seals", headers=hub.admin.headers, json=seal_body(police.id)).json()
    other = client.post("/seals", headers=hub.admin.headers, json=seal_body(health.id)).json()
    listed = client.get("/seals", headers=police_system.headers).json()["items"]
    assert [s["id"] for s in listed] == [own["id"]]
    assert client.get(f"/seals/{other['id']}", headers=police_system.headers).status_code == 404
    assert client.get(f"/seals/{own['id']}", headers=police_system.headers).status_code == 200
    assert client.get("/seals").status_code == 401


def test_a_seal_is_suspended_resumed_and_revoked_with_reasons_each_change_recorded(
    client: TestClient, hub: Hub, db: Session
) -> None:
    department = hub.department()
    seal = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id)).json()
    url = f"/seals/{seal['id']}"
    suspended = client.post(f"{url}/suspend", headers={**hub.admin.headers, "If-Match": '"1"'}, json={"reason": "印章保管人变更"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    stale = client.post(f"{url}/resume", headers={**hub.admin.headers, "If-Match": '"1"'}, json={"reason": "恢复"})
    assert stale.status_code == 412
    again = client.post(f"{url}/suspend", headers=hub.admin.headers, json={"reason": "重复"})
    assert again.status_code == 409 and "suspended" in again.json()["detail"]
    resumed = client.post(f"{url}/resume", headers=hub.admin.headers, json={"reason": "保管人已交接"})
    assert resumed.json()["status"] == "active"
    no_reason = client.post(f"{url}/revoke", headers=hub.admin.headers, json={})
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    revoked = client.post(f"{url}/revoke", headers=hub.admin.headers, json={"reason": "机构撤并"})
    assert revoked.json()["status"] == "revoked" and revoked.json()["status_reason"] == "机构撤并"
    assert revoked.json()["revoked_at"] is not None
    back = client.post(f"{url}/resume", headers=hub.admin.headers, json={"reason": "想恢复"})
    assert back.status_code == 409
    system = hub.system(department)
    assert client.post(f"{url}/suspend", headers=system.headers, json={"reason": "部门自己停用"}).status_code == 403
    history = [e.status for e in db.scalars(select(SealEvent).where(SealEvent.seal_id == seal["id"]).order_by(SealEvent.at))]
    assert history == ["active", "suspended", "active", "revoked"]
    actions = [
        r.action for r in db.scalars(select(AuditRecord).where(AuditRecord.object_id == seal["id"]).order_by(AuditRecord.id))
    ]
    assert actions == ["seal.issue", "seal.suspend", "seal.resume", "seal.revoke"]


def test_a_seal_past_its_validity_is_marked_expired_by_the_scheduled_job(db: Session, hub: Hub, client: TestClient) -> None:
    from seal.tasks import JOBS

    department = hub.department()
    created = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id)).json()
    seal = db.get(Seal, created["id"])
    assert seal is not None
    seal.valid_to = utcnow() - timedelta(seconds=1)
    db.flush()
    job = next(j for j in JOBS if j.name == "seal.expire")
    assert job.run(db) == 1
    assert seal.status == "expired"
    assert job.run(db) == 0


def test_two_processes_making_the_authority_at_once_leave_one_consistent_signing_chain(db: Session, hub: Hub, app: Any) -> None:
    from seal import authority
    from tests.seal.helpers import grant, make_seal

    vault = app.state.vault
    authority.create_authority(db, vault)
    first = make_seal(db, vault, hub.department().id)
    authority.create_authority(db, vault)  # a second generation, as if another process raced the first
    second = make_seal(db, vault, hub.department().id)
    for seal in (first, second):
        grant(db, seal.id, hub.admin_principal().subject)
        signer = service.signer_for(db, seal=seal, vault=vault)
        leaf, issuing = (x509.load_pem_x509_certificate(p.encode()) for p in signer.certificate_chain_pem())
        leaf.verify_directly_issued_by(issuing)
        report = service.verify_detached(
            db,
            signature=service.sign_detached(
                db,
                vault=vault,
                department_id=seal.department_id,
                data=b"d",
                purpose="测试",
                actor=hub.admin_principal(),
                settings=hub.settings,
            ),
            data=b"d",
            settings=hub.settings,
        )
        assert report.verdict == "valid", report.reasons


def test_a_verifier_fetching_the_seal_ca_of_a_freshly_prepared_hub_gets_it(tmp_path: Path) -> None:
    """The first request to a new hub may be a verifier's read: the authority exists before it."""
    settings = Settings(data_dir=tmp_path, master_key=MASTER_KEY, public_url="http://hub.test", run_scheduler=False)  # type: ignore[arg-type]
    engine = make_engine(settings.effective_database_url)
    try:
        prepare(engine, settings)
        check_write_intent(engine)  # a read that writes fails here, as it fails now and then under load
        with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
            response = client.get("/seal/ca")
        assert response.status_code == 200, response.text
        assert "BEGIN CERTIFICATE" in response.json()["root"]
    finally:
        engine.dispose()
