"""Objections (异议处理) and corrections (反馈纠错): suspended while open, decided by the issuer in working days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from certhub import service, tasks
from certhub.models import Objection
from ops import audit
from ops.db import utcnow
from ops.workdays import add_working_days
from tests.certhub.conftest import DRIVING, ID_CARD, World, assert_same_refusal, driving_face, unknown_identifier
from tests.factories import citizen_id


def _object(world: World, cert: dict[str, object], who: object, reason: str = "住址有误") -> dict[str, object]:
    response = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/objections",
        json={"reason": reason},
        headers=who.headers,  # type: ignore[attr-defined]
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_holders_objection_suspends_the_certificate_until_the_issuer_corrects_it(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    holder = world.hub.holder(holder_code)
    objection = _object(world, cert, holder)
    with world.hub.factory() as db:
        expected = add_working_days(db, utcnow(), world.hub.settings.certificate_objection_working_days)
    assert objection["status"] == "open" and objection["filer_kind"] == "holder"
    assert objection["due_at"][:16] == expected.due_at.isoformat()[:16]
    shown = world.client.post(
        f"/certhub/me/certificates/{cert['identifier']}/presentations",
        json={"fields": ["name"], "audience": world.window.department.code},  # type: ignore[union-attr]
        headers=holder.headers,
    )
    assert shown.status_code == 409 and "suspended" in shown.json()["detail"]
    listed = world.client.get("/certhub/objections?status=open", headers=world.issuer.headers).json()["items"]
    assert [o["id"] for o in listed] == [objection["id"]]
    response = world.client.post(
        f"/certhub/objections/{objection['id']}/correct",
        json={"face": {"address": "北京市朝阳区建国路2号"}, "resolution": "核实后更正住址"},
        headers=world.issuer.headers,
    )
    assert response.status_code == 200, response.text
    closed = response.json()
    assert closed["status"] == "corrected" and closed["corrected_identifier"].split(".")[-2] == "002"
    assert [step["step"] for step in closed["history"]] == ["filed", "corrected"]
    new = world.client.get(f"/certhub/certificates/{closed['corrected_identifier']}", headers=holder.headers).json()
    assert new["status"] == "active" and new["face"]["address"] == "北京市朝阳区建国路2号"
    old = world.client.get(f"/certhub/certificates/{cert['identifier']}", headers=holder.headers).json()
    assert old["status"] == "superseded"
    again = world.client.post(
        f"/certhub/objections/{objection['id']}/dismiss", json={"resolution": "x"}, headers=world.issuer.headers
    )
    assert again.status_code == 409


def test_a_dismissed_objection_lifts_the_suspension(world: World) -> None:
    cert = world.issue()
    objection = _object(world, cert, world.issuer, reason="照片与本人不符")
    assert objection["filer_kind"] == "issuer"
    status = world.client.get(f"/certhub/certificates/{cert['identifier']}", headers=world.issuer.headers).json()["status"]
    assert status == "suspended"
    response = world.client.post(
        f"/certhub/objections/{objection['id']}/dismiss", json={"resolution": "核实无误"}, headers=world.issuer.headers
    )
    assert response.status_code == 200 and response.json()["status"] == "dismissed"
    status = world.client.get(f"/certhub/certificates/{cert['identifier']}", headers=world.issuer.headers).json()["status"]
    assert status == "active"


def test_only_the_issuer_decides_and_a_stranger_cannot_object_to_someone_elses_certificate(world: World) -> None:
    cert = world.issue()
    stranger = world.hub.holder(citizen_id())
    response = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/objections", json={"reason": "x"}, headers=stranger.headers
    )
    assert response.status_code == 404
    objection = _object(world, cert, world.issuer)
    other = world.hub.system(name="别的发证系统")
    response = world.client.post(
        f"/certhub/objections/{objection['id']}/dismiss", json={"resolution": "x"}, headers=other.headers
    )
    assert response.status_code == 404
    response = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/objections", json={"reason": ""}, headers=world.window.headers
    )
    assert response.status_code == 422


def test_an_objection_not_decided_in_time_is_flagged_overdue_by_the_job(world: World) -> None:
    cert = world.issue(citizen_id())
    objection = _object(world, cert, world.issuer)
    with world.hub.factory() as db:
        assert tasks.check_objection_deadlines(db) == 0
        row = db.get(Objection, objection["id"])
        assert row is not None
        row.due_at = utcnow() - timedelta(minutes=1)
        db.flush()
        assert tasks.check_objection_deadlines(db) == 1
        assert row.overdue and row.history[-1]["step"] == "overdue"
        assert service.mark_overdue_objections(db) == 0  # flagged once
        db.commit()


def test_loading_a_calendar_recomputes_open_objection_deadlines(world: World) -> None:
    cert = world.issue(citizen_id())
    objection = _object(world, cert, world.issuer)
    with world.hub.factory() as db:
        row = db.get(Objection, objection["id"])
        assert row is not None
        correct_due = row.due_at
        row.due_at = correct_due + timedelta(days=3)  # as if computed under an older calendar
        db.flush()
        year = correct_due.year
        assert tasks.recompute_objection_deadlines(db, year, settings=world.hub.settings) == 1
        assert row.due_at == correct_due
        # The listener the hub runs when a calendar is loaded is built from the hub's settings.
        [listener] = tasks.calendar_listeners(world.hub.settings)
        row.due_at = correct_due + timedelta(days=3)
        db.flush()
        assert listener(db, year) == 1
        assert row.due_at == correct_due
        longer = world.hub.settings.model_copy(update={"certificate_objection_working_days": 30})
        assert tasks.calendar_listeners(longer)[0](db, year) == 1
        assert row.due_at > correct_due
        db.commit()


def _status(world: World, cert: dict[str, Any]) -> str:
    response = world.client.get(f"/certhub/certificates/{cert['identifier']}", headers=world.issuer.headers)
    return str(response.json()["status"])


def _try(world: World, cert_id: str, who: Any, what: str = "objections", **params: str) -> Any:
    return world.client.post(
        f"/certhub/certificates/{cert_id}/{what}", params=params, json={"reason": "住址有误"}, headers=who.headers
    )


def test_a_window_client_cannot_suspend_a_citizens_certificate_by_objecting(world: World) -> None:
    cert = world.issue(citizen_id())
    unknown_id = unknown_identifier(cert)
    another_department = world.hub.system(name="别的部门系统")
    for stranger in (world.window, world.other_window, another_department, world.hub.holder(citizen_id())):
        response = _try(world, cert["identifier"], stranger)
        assert response.status_code == 404, response.text
        unknown = _try(world, unknown_id, stranger)
        assert_same_refusal(response, unknown, identifier=cert["identifier"], unknown_id=unknown_id)
        feedback = _try(world, cert["identifier"], stranger, "feedback")
        assert_same_refusal(
            feedback, _try(world, unknown_id, stranger, "feedback"), identifier=cert["identifier"], unknown_id=unknown_id
        )
    assert _status(world, cert) == "active"
    assert world.client.get("/certhub/objections", headers=world.issuer.headers).json()["items"] == []


def test_the_holder_the_issuer_the_platform_and_an_agent_allowed_to_object_suspend_by_objecting(world: World) -> None:
    holder_code, agent_code = citizen_id(), citizen_id()
    holder, agent = world.hub.holder(holder_code), world.hub.holder(agent_code, name="李四")
    by_holder, by_issuer, by_platform, by_agent = (world.issue(holder_code) for _ in range(4))
    for cert, who, kind in (
        (by_holder, holder, "holder"),
        (by_issuer, world.issuer, "issuer"),
        (by_platform, world.hub.admin, "platform"),
    ):
        response = _try(world, cert["identifier"], who)
        assert response.status_code == 201 and response.json()["filer_kind"] == kind, response.text
        assert _status(world, cert) == "suspended"
    # an agent: only with a delegation that lets it object, and only for the delegated types
    assert _try(world, by_agent["identifier"], agent, on_behalf_of=holder_code).status_code == 403
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    delegation = {"agent_code": agent_code, "agent_name": "李四", "actions": ["show"], "valid_until": later}
    assert world.client.post("/certhub/me/delegations", json=delegation, headers=holder.headers).status_code == 201
    response = _try(world, by_agent["identifier"], agent, on_behalf_of=holder_code)
    assert response.status_code == 403 and "no delegation" in response.json()["detail"]
    delegation.update(actions=["object"], type_codes=[ID_CARD])
    assert world.client.post("/certhub/me/delegations", json=delegation, headers=holder.headers).status_code == 201
    licence = world.issue(holder_code, type_code=DRIVING, face=driving_face(holder_code))
    refused = _try(world, licence["identifier"], agent, on_behalf_of=holder_code)
    unknown_id = unknown_identifier(licence)
    assert_same_refusal(
        refused, _try(world, unknown_id, agent, on_behalf_of=holder_code), identifier=licence["identifier"], unknown_id=unknown_id
    )
    response = _try(world, by_agent["identifier"], agent, on_behalf_of=holder_code)
    assert response.status_code == 201 and response.json()["filer_kind"] == "agent", response.text
    assert _status(world, by_agent) == "suspended"
    assert _status(world, licence) == "active"
    # the holder sees every objection to their certificates, whoever filed it
    seen = {o["certificate_identifier"] for o in world.client.get("/certhub/objections", headers=holder.headers).json()["items"]}
    assert seen == {c["identifier"] for c in (by_holder, by_issuer, by_platform, by_agent)}


def test_a_department_that_verified_a_certificate_reports_a_suspected_error_that_the_issuer_sees_and_the_status_stays_valid(
    world: World,
) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    holder = world.hub.holder(holder_code)
    shown = world.show(holder, cert["identifier"], fields=["name", "address"])
    assert world.verify(shown["token"])["valid"] is True
    # the window used it: it cannot suspend it, and is told where to report instead
    objection = _try(world, cert["identifier"], world.window)
    assert objection.status_code == 403 and "/feedback" in objection.json()["detail"]
    response = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/feedback",
        json={"reason": "住址与户口簿不一致"},
        headers=world.window.headers,
    )
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["status"] == "open" and report["filer_kind"] == "department"
    assert _status(world, cert) == "active"
    again = world.show(holder, cert["identifier"], fields=["name"])
    assert world.verify(again["token"])["valid"] is True
    # the issuer sees it and answers it; the window reads the answer
    listed = world.client.get("/certhub/feedback?status=open", headers=world.issuer.headers).json()["items"]
    assert [(r["id"], r["reason"]) for r in listed] == [(report["id"], "住址与户口簿不一致")]
    assert world.client.get(f"/certhub/feedback/{report['id']}", headers=world.other_window.headers).status_code == 404
    not_the_issuer = world.client.post(
        f"/certhub/feedback/{report['id']}/answer", json={"answer": "x"}, headers=world.hub.system(name="别的系统").headers
    )
    assert not_the_issuer.status_code == 404
    stale = {**world.issuer.headers, "If-Match": '"99"'}
    assert world.client.post(f"/certhub/feedback/{report['id']}/answer", json={"answer": "x"}, headers=stale).status_code == 412
    answered = world.client.post(
        f"/certhub/feedback/{report['id']}/answer", json={"answer": "核实无误，住址已于近期迁移"}, headers=world.issuer.headers
    )
    assert answered.status_code == 200 and answered.json()["status"] == "answered", answered.text
    read = world.client.get(f"/certhub/feedback/{report['id']}", headers=world.window.headers).json()
    assert read["answer"] == "核实无误，住址已于近期迁移"
    twice = world.client.post(f"/certhub/feedback/{report['id']}/answer", json={"answer": "x"}, headers=world.issuer.headers)
    assert twice.status_code == 409
    assert _status(world, cert) == "active"
    with world.hub.factory() as db:
        actions = [r.action for r in audit.records_for(db, object_type="cert_feedback", object_id=report["id"])]
    assert sorted(actions) == ["feedback.answer", "feedback.file"]
