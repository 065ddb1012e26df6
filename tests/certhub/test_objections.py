"""Objections (异议处理) and corrections (反馈纠错): suspended while open, decided by the issuer in working days."""

from __future__ import annotations

from datetime import timedelta

from certhub import service, tasks
from certhub.models import Objection
from ops.db import utcnow
from ops.workdays import add_working_days
from tests.certhub.conftest import World
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
    listed = world.client.get("/certhub/objections?status=open", headers=world.issuer.headers).json()
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
    objection = _object(world, cert, world.window, reason="照片与本人不符")
    assert objection["filer_kind"] == "department"
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
    objection = _object(world, cert, world.window)
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
    objection = _object(world, cert, world.window)
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
    objection = _object(world, cert, world.window)
    with world.hub.factory() as db:
        row = db.get(Objection, objection["id"])
        assert row is not None
        correct_due = row.due_at
        row.due_at = correct_due + timedelta(days=3)  # as if computed under an older calendar
        db.flush()
        year = correct_due.year
        assert tasks.recompute_objection_deadlines(db, year) == 1
        assert row.due_at == correct_due
        assert [tasks.recompute_objection_deadlines] == tasks.CALENDAR_LISTENERS
        db.commit()
