"""Scenarios of seal use under control (用印管理): a seal is used only by the people and systems its
department authorised, and a seal may need a second person's approval (用印审批) for each use."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ops.audit import AuditRecord
from ops.auth import Principal, Role
from ops.db import utcnow
from seal import service
from seal.models import SealUse, SealUseRequest
from tests.conftest import Actor, Hub
from tests.seal.helpers import one_page_pdf, seal_body

DATA = "关于开展政务数据共享工作的通知".encode()


@dataclass
class Office:
    """A department with a seal, its administrator, a clerk's system, an approver and an outsider."""

    seal: dict[str, Any]
    admin: Actor
    clerk: Actor
    approver: Actor
    outsider: Actor

    def authorise(self, client: TestClient, who: Actor, *, may_use: bool = True, may_approve: bool = False) -> Any:
        assert who.client is not None
        body = {"subject": who.client.client_id, "subject_kind": "client", "may_use": may_use, "may_approve": may_approve}
        return client.post(f"/seals/{self.seal['id']}/authorisations", json=body, headers=self.admin.headers)


@pytest.fixture()
def office(client: TestClient, hub: Hub) -> Office:
    department = hub.department("北京市市场监督管理局")
    seal = client.post("/seals", headers=hub.admin.headers, json=seal_body(department.id, name="北京市市场监督管理局"))
    assert seal.status_code == 201, seal.text
    return Office(
        seal=seal.json(),
        admin=hub.actor(department, "department_admin", name="办公室主任"),
        clerk=hub.system(department, name="公文系统"),
        approver=hub.actor(department, "department_admin", name="分管领导"),
        outsider=hub.system(department, name="其他系统"),
    )


def _sign(client: TestClient, who: Actor, seal_id: str, data: bytes = DATA, **extra: Any) -> Any:
    body = {"purpose": "发文用印", "seal_id": seal_id, "data_base64": base64.b64encode(data).decode(), **extra}
    return client.post("/seal/sign", json=body, headers=who.headers)


def _refusals(db: Session, seal_id: str) -> list[AuditRecord]:
    query = select(AuditRecord).where(AuditRecord.object_id == seal_id, AuditRecord.outcome == "refused").order_by(AuditRecord.id)
    return list(db.scalars(query))


def test_only_the_systems_a_department_authorised_use_its_seal(client: TestClient, hub: Hub, db: Session, office: Office) -> None:
    seal_id = office.seal["id"]
    refused = _sign(client, office.clerk, seal_id)
    assert refused.status_code == 403 and "not authorised to use seal" in refused.json()["detail"]
    # The refusal is recorded, although the request failed.
    (record,) = _refusals(db, seal_id)
    assert record.action == "seal.use" and record.actor == office.clerk.client.client_id  # type: ignore[union-attr]
    # The department administrator authorises the clerk's system; it seals, and the use is on the seal's log.
    granted = office.authorise(client, office.clerk)
    assert granted.status_code == 201, granted.text
    signed = _sign(client, office.clerk, seal_id)
    assert signed.status_code == 200, signed.text
    pdf = client.post(
        "/seal/pdf", headers=office.clerk.headers, files={"file": ("a.pdf", one_page_pdf())}, data={"purpose": "发文用印"}
    )
    assert pdf.status_code == 200, pdf.text
    uses = client.get(f"/seals/{seal_id}/uses", headers=office.admin.headers).json()["items"]
    assert [u["kind"] for u in uses] == ["pdf", "data"] and {u["actor"] for u in uses} == {office.clerk.client.client_id}  # type: ignore[union-attr]
    # Another system of the same department is still refused; withdrawing the authorisation stops the clerk at once.
    assert _sign(client, office.outsider, seal_id).status_code == 403
    withdrawn = client.post(
        f"/seals/{seal_id}/authorisations/{granted.json()['id']}/withdraw",
        json={"reason": "岗位调整"},
        headers=office.admin.headers,
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_at"]
    assert _sign(client, office.clerk, seal_id).status_code == 403
    assert len(_refusals(db, seal_id)) == 3
    listed = client.get(f"/seals/{seal_id}/authorisations", headers=office.clerk.headers).json()["items"]
    assert [(a["subject"], a["withdrawn_at"] is not None) for a in listed] == [(office.clerk.client.client_id, True)]  # type: ignore[union-attr]


def test_who_may_authorise_and_whom(client: TestClient, hub: Hub, office: Office) -> None:
    seal_id = office.seal["id"]
    # A system of the department may not authorise (itself or others); the platform does not decide for the department.
    body = {"subject": office.clerk.client.client_id, "subject_kind": "client"}  # type: ignore[union-attr]
    assert client.post(f"/seals/{seal_id}/authorisations", json=body, headers=office.clerk.headers).status_code == 403
    assert client.post(f"/seals/{seal_id}/authorisations", json=body, headers=hub.admin.headers).status_code == 403
    # Another department's administrator does not even see the seal.
    stranger = hub.actor(hub.department("天津市市场监督管理局", region="120000"), "department_admin")
    assert client.post(f"/seals/{seal_id}/authorisations", json=body, headers=stranger.headers).status_code == 404
    # A client of another department, an unknown client or hub system, or a system that would approve: refused, saying why.
    other_client = hub.system(hub.department("天津市公安局", region="120000"))
    cases = [
        ({"subject": other_client.client.client_id, "subject_kind": "client"}, "another department"),  # type: ignore[union-attr]
        ({"subject": "gh_nobody", "subject_kind": "client"}, "no active client"),
        ({"subject": "printer", "subject_kind": "system"}, "no system"),
        ({"subject": "certhub", "subject_kind": "system", "may_approve": True}, "never approve"),
        ({"subject": "某人", "subject_kind": "person", "may_use": False}, "use the seal, approve its uses, or both"),
        ({"subject": "某人", "subject_kind": "robot"}, "subject_kind"),
    ]
    for body, says in cases:
        response = client.post(f"/seals/{seal_id}/authorisations", json=body, headers=office.admin.headers)
        assert response.status_code == 422 and says in response.text, (body, response.text)
    # A person is authorised by their id (people sign in through the identity provider).
    person = client.post(
        f"/seals/{seal_id}/authorisations",
        json={"subject": "person-7f3a", "subject_kind": "person", "may_use": False, "may_approve": True, "note": "分管领导"},
        headers=office.admin.headers,
    )
    assert person.status_code == 201 and person.json()["may_approve"] is True


def _require_approval(client: TestClient, office: Office, hours: int = 24) -> None:
    etag = client.get(f"/seals/{office.seal['id']}", headers=office.admin.headers).headers["ETag"]
    response = client.put(
        f"/seals/{office.seal['id']}/use-policy",
        json={"requires_approval": True, "approval_valid_hours": hours},
        headers={**office.admin.headers, "If-Match": etag},
    )
    assert response.status_code == 200 and response.json()["requires_approval"] is True, response.text


def _request(client: TestClient, office: Office, data: bytes = DATA, name: str = "通知.txt") -> Any:
    body = {"document_name": name, "document_hash": hashlib.sha256(data).hexdigest(), "purpose": "发文用印"}
    return client.post(f"/seals/{office.seal['id']}/use-requests", json=body, headers=office.clerk.headers)


def test_a_seal_that_needs_approval_is_used_once_per_approval_by_the_requester(
    client: TestClient, hub: Hub, db: Session, office: Office
) -> None:
    seal_id = office.seal["id"]
    assert office.authorise(client, office.clerk).status_code == 201
    assert office.authorise(client, office.approver, may_use=False, may_approve=True).status_code == 201
    _require_approval(client, office)
    # Without an approval the authorised clerk is refused, and told what to do.
    without = _sign(client, office.clerk, seal_id)
    assert without.status_code == 403 and "approval" in without.json()["detail"]
    requested = _request(client, office)
    assert requested.status_code == 201 and requested.json()["status"] == "pending", requested.text
    request_id = requested.json()["id"]
    # Pending: not usable yet. The requester cannot approve it; someone not authorised to approve cannot either.
    assert _sign(client, office.clerk, seal_id, approval_id=request_id).status_code == 409
    own = client.post(f"/seal/use-requests/{request_id}/approve", json={}, headers=office.clerk.headers)
    assert own.status_code == 403 and "not authorised to approve" in own.json()["detail"]
    assert office.authorise(client, office.clerk, may_approve=True).status_code == 201  # even when it may approve others'
    own = client.post(f"/seal/use-requests/{request_id}/approve", json={}, headers=office.clerk.headers)
    assert own.status_code == 403 and "never by its requester" in own.json()["detail"]
    assert client.post(f"/seal/use-requests/{request_id}/approve", json={}, headers=office.outsider.headers).status_code == 403
    # The approver approves; the clerk seals this document, once.
    approved = client.post(f"/seal/use-requests/{request_id}/approve", json={"reason": "同意"}, headers=office.approver.headers)
    assert approved.status_code == 200 and approved.json()["status"] == "approved" and approved.json()["expires_at"]
    another_document = _sign(client, office.clerk, seal_id, data=b"another text", approval_id=request_id)
    assert another_document.status_code == 409 and "another document" in another_document.json()["detail"]
    assert _sign(client, office.outsider, seal_id, approval_id=request_id).status_code == 403
    used = _sign(client, office.clerk, seal_id, approval_id=request_id)
    assert used.status_code == 200, used.text
    twice = _sign(client, office.clerk, seal_id, approval_id=request_id)
    assert twice.status_code == 409 and "already used" in twice.json()["detail"]
    # The request, the approval and the use are each recorded and linked.
    request = db.get(SealUseRequest, request_id)
    assert request is not None and request.status == "used" and request.decided_by == office.approver.client.client_id  # type: ignore[union-attr]
    use = db.scalars(select(SealUse).where(SealUse.request_id == request_id)).one()
    assert request.use_id == use.id and use.actor == office.clerk.client.client_id  # type: ignore[union-attr]
    actions = [r.action for r in db.scalars(select(AuditRecord).where(AuditRecord.object_id == seal_id).order_by(AuditRecord.id))]
    for action in ("seal.use_policy", "seal.use_request", "seal.use_request.approve", "seal.use.data"):
        assert action in actions
    refused = {r.action for r in _refusals(db, seal_id)}
    assert refused == {"seal.use", "seal.use_request.approve"}
    # A PDF through its own approval (the hash of the PDF as sent).
    pdf = one_page_pdf()
    pdf_request = _request(client, office, data=pdf, name="通知.pdf").json()["id"]
    assert client.post(f"/seal/use-requests/{pdf_request}/approve", json={}, headers=office.approver.headers).status_code == 200
    sealed = client.post(
        "/seal/pdf",
        headers=office.clerk.headers,
        files={"file": ("a.pdf", pdf)},
        data={"purpose": "发文用印", "approval_id": pdf_request},
    )
    assert sealed.status_code == 200, sealed.text
    listed = client.get(f"/seals/{seal_id}/use-requests", headers=office.admin.headers).json()["items"]
    assert [r["status"] for r in listed] == ["used", "used"]


def test_an_expired_or_refused_approval_and_a_revoked_seal(client: TestClient, hub: Hub, db: Session, office: Office) -> None:
    seal_id = office.seal["id"]
    assert office.authorise(client, office.clerk).status_code == 201
    assert office.authorise(client, office.approver, may_use=False, may_approve=True).status_code == 201
    _require_approval(client, office, hours=1)
    expiring = _request(client, office).json()["id"]
    assert client.post(f"/seal/use-requests/{expiring}/approve", json={}, headers=office.approver.headers).status_code == 200
    db.execute(update(SealUseRequest).where(SealUseRequest.id == expiring).values(expires_at=utcnow() - timedelta(minutes=1)))
    db.commit()
    expired = _sign(client, office.clerk, seal_id, approval_id=expiring)
    assert expired.status_code == 409 and "expired" in expired.json()["detail"]
    refused_request = _request(client, office).json()["id"]
    refusal = client.post(
        f"/seal/use-requests/{refused_request}/refuse", json={"reason": "文号有误"}, headers=office.approver.headers
    )
    assert refusal.status_code == 200 and refusal.json()["status"] == "refused"
    assert _sign(client, office.clerk, seal_id, approval_id=refused_request).status_code == 409
    again = client.post(f"/seal/use-requests/{refused_request}/approve", json={}, headers=office.approver.headers)
    assert again.status_code == 409 and "already refused" in again.json()["detail"]
    # A request for a seal revoked meanwhile cannot be approved.
    pending = _request(client, office).json()["id"]
    client.post(f"/seals/{seal_id}/revoke", json={"reason": "机构撤并"}, headers=hub.admin.headers).raise_for_status()
    on_revoked = client.post(f"/seal/use-requests/{pending}/approve", json={}, headers=office.approver.headers)
    assert on_revoked.status_code == 409 and "revoked" in on_revoked.json()["detail"]
    assert db.get(SealUseRequest, pending).status == "pending"  # type: ignore[union-attr]
    # Bad requests: not a SHA-256, an unknown seal or request.
    bad = client.post(
        f"/seals/{seal_id}/use-requests",
        json={"document_name": "x", "document_hash": "z" * 64, "purpose": "用印"},
        headers=office.clerk.headers,
    )
    assert bad.status_code == 422 and "SHA-256" in bad.text
    assert client.post("/seal/use-requests/nope/approve", json={}, headers=office.approver.headers).status_code == 404


def test_a_person_principal_is_authorised_by_subject(db: Session, hub: Hub, client: TestClient, office: Office, app: Any) -> None:
    """A signed-in person is a principal whose subject is the person's id: authorised by that id."""
    department_id = office.seal["department_id"]
    person = Principal(subject="person-7f3a", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=department_id)
    admin = Principal(subject="办公室主任", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=department_id)

    def sign() -> dict[str, Any]:
        return service.sign_detached(
            db,
            vault=app.state.vault,
            department_id=department_id,
            data=DATA,
            purpose="发文用印",
            actor=person,
            settings=hub.settings,
        )

    with pytest.raises(service.SealUseRefused):
        sign()
    service.authorise(
        db,
        who=admin,
        seal_id=office.seal["id"],
        subject="person-7f3a",
        subject_kind="person",
        may_use=True,
        may_approve=False,
        note=None,
    )
    assert sign()  # a SES_Signature
    # A client authorisation of the same string does not make a hub system of it, nor the reverse.
    with pytest.raises(service.SealUseRefused):
        service.seal_pdf(
            db, vault=app.state.vault, settings=hub.settings, department_id=department_id, pdf=one_page_pdf(), purpose="证照",
            actor=person, system=service.CERTHUB,
        )  # fmt: skip


def test_upgrading_keeps_the_certificate_hub_sealing_copies_with_the_existing_seals(tmp_path: Any, settings: Any) -> None:
    """A hub upgraded to use control: its seals keep sealing certificate copies (certhub authorised on each)."""
    import os
    import uuid

    from alembic import command

    from govhub.database import alembic_config, upgrade
    from ops.cli import CLI_ADMIN
    from ops.crypto import KeyVault
    from ops.db import make_engine
    from ops.identity import service as identity
    from ops.identity.schemas import DepartmentCreate
    from seal.models import SealAuthorisation
    from tests.factories import uscc
    from tests.seal.helpers import make_seal

    base = os.environ.get("GOVHUB_TEST_DATABASE_URL")
    if base:
        from ops.hubprocess import drop_postgres, fresh_postgres

        url, name = fresh_postgres(base)
    else:
        url, name = f"sqlite:///{tmp_path}/upgrade-{uuid.uuid4().hex}.db", ""
    engine = make_engine(url)
    try:
        upgrade(engine, settings)
        with Session(engine) as db:
            department = identity.create_department(
                db, who=CLI_ADMIN, data=DepartmentCreate(code=uscc(), name="北京市公安局", level="province", region_code="110000")
            )  # type: ignore[arg-type]
            seal_id = make_seal(db, KeyVault.from_settings(settings), department.id).id
            db.commit()
        with engine.begin() as connection:  # back to before use control, the seal kept
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0003_seal")
        upgrade(engine, settings)
        with Session(engine) as db:
            (granted,) = db.scalars(select(SealAuthorisation).where(SealAuthorisation.seal_id == seal_id)).all()
            assert (granted.subject, granted.subject_kind, granted.may_use, granted.may_approve) == (
                "certhub",
                "system",
                True,
                False,
            )
    finally:
        engine.dispose()
        if name and base:
            drop_postgres(base, name)
