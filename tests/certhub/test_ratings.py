"""好差评 at the window: the holder rates a verification from a link, a poor rating opens a rectification item
that the window's department answers (late if past its working-day deadline), the report and the export."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import select, update

from ops.audit import AuditRecord
from ops.db import utcnow
from ops.ratings.models import Rectification
from ops.ratings.service import EXPORT_FIELDS, RATING_AUDIENCE
from ops.workdays.service import SHANGHAI, calendar
from tests.certhub.conftest import World
from tests.factories import citizen_id


@pytest.fixture()
def served(world: World) -> dict[str, Any]:
    """A holder whose ID card a window verified: the holder, the verification's access row and a rating link."""
    code = citizen_id()
    cert = world.issue(code)
    holder = world.hub.holder(code)
    shown = world.show(holder, cert["identifier"], fields=["name"])
    assert world.verify(shown["token"], nonce=shown["nonce"])["valid"] is True
    accesses = world.client.get("/certhub/me/accesses", headers=holder.headers).json()["items"]
    (verification,) = [a for a in accesses if a["action"] == "verify"]
    made = world.client.post(f"/certhub/me/accesses/{verification['id']}/rating-token", headers=holder.headers)
    assert made.status_code == 201, made.text
    link = made.json()["link"]
    token = urlparse(link).path.rsplit("/", 1)[1]
    assert token == made.json()["token"]
    staff = world.hub.actor(world.window.department, "department_admin", name="东城中心管理员")
    return {"holder": holder, "code": code, "access": verification, "token": token, "staff": staff}


def _rate(world: World, who: Any, token: str, score: int, comment: str | None = None) -> Any:
    return world.client.post("/ratings", json={"token": token, "score": score, "comment": comment}, headers=who.headers)


def test_a_poor_rating_opens_a_rectification_that_the_department_answers_in_time(world: World, served: dict[str, Any]) -> None:
    holder, staff = served["holder"], served["staff"]
    rated = _rate(world, holder, served["token"], 2, "窗口让我等了四十分钟")
    assert rated.status_code == 201, rated.text
    item = rated.json()["rectification"]
    assert item["status"] == "open" and rated.json()["event_kind"] == "certificate.verify"
    # The deadline: 5 working days (the default setting) in the Beijing calendar, counted by ops.workdays.
    with world.hub.factory() as db:
        expected = calendar(db).add_working_days(utcnow(), world.hub.settings.rectification_working_days).due_at
    assert abs((expected - utcnow()) - (_at(item["due_at"]) - utcnow())) < timedelta(minutes=5)
    assert _at(item["due_at"]).astimezone(SHANGHAI).date() > utcnow().astimezone(SHANGHAI).date()

    queue = world.client.get("/ratings/rectifications?status=open", headers=world.hub.admin.headers).json()["items"]
    assert [q["id"] for q in queue] == [item["id"]] and queue[0]["comment"] == "窗口让我等了四十分钟"
    own = world.client.get("/ratings/rectifications", headers=staff.headers).json()["items"]
    assert [q["id"] for q in own] == [item["id"]]
    # Another department sees none of it and cannot answer it.
    other_staff = world.hub.actor(world.other_window.department, "department_admin", name="天津中心管理员")
    assert world.client.get("/ratings/rectifications", headers=other_staff.headers).json()["items"] == []
    foreign = world.client.post(
        f"/ratings/rectifications/{item['id']}/reply", json={"reply": "不关我们的事"}, headers=other_staff.headers
    )
    assert foreign.status_code == 404

    replied = world.client.post(
        f"/ratings/rectifications/{item['id']}/reply", json={"reply": "已增开两个窗口，并致电致歉。"}, headers=staff.headers
    )
    assert replied.status_code == 200, replied.text
    assert replied.json()["status"] == "replied" and replied.json()["late"] is False
    twice = world.client.post(f"/ratings/rectifications/{item['id']}/reply", json={"reply": "再说一次"}, headers=staff.headers)
    assert twice.status_code == 409

    # The holder reads the reply with the rating.
    mine = world.client.get("/ratings/mine", headers=holder.headers).json()["items"]
    assert mine[0]["score"] == 2 and mine[0]["rectification"]["reply"] == "已增开两个窗口，并致电致歉。"


def test_a_good_rating_opens_nothing_and_each_event_is_rated_once(world: World, served: dict[str, Any]) -> None:
    rated = _rate(world, served["holder"], served["token"], 5)
    assert rated.status_code == 201 and rated.json()["rectification"] is None
    again = _rate(world, served["holder"], served["token"], 1)
    assert again.status_code == 409 and "already rated" in again.json()["detail"]
    with world.hub.factory() as db:
        assert db.scalars(select(Rectification)).all() == []


def test_only_the_holder_served_may_rate_and_a_forged_or_expired_token_is_refused(world: World, served: dict[str, Any]) -> None:
    stranger = world.hub.holder(citizen_id())
    by_stranger = _rate(world, stranger, served["token"], 1)
    assert by_stranger.status_code == 403 and "only the holder" in by_stranger.json()["detail"]
    by_window = _rate(world, world.window, served["token"], 1)
    assert by_window.status_code == 403

    head, body, signature = served["token"].split(".")
    forged_body = json.loads(_b64(body))
    forged_body["dep"] = world.other_window.department_id  # blame another department
    forged = ".".join([head, _unb64(json.dumps(forged_body)), signature])
    refused = _rate(world, served["holder"], forged, 1)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_rating_token"

    keyring = world.hub.app.state.keyring
    settings = world.hub.settings
    old = keyring.sign(
        {
            "iss": settings.token_issuer or settings.public_url,
            "sub": served["code"],
            "aud": RATING_AUDIENCE,
            "iat": 1,
            "exp": 2,
            "evk": "certificate.verify",
            "evi": served["access"]["id"],
            "dep": world.window.department_id,
        }
    )
    expired = _rate(world, served["holder"], old, 1)
    assert expired.status_code == 422 and "expired" in expired.json()["detail"]
    # An access token is no rating token.
    not_rating = _rate(world, served["holder"], served["holder"].headers["Authorization"].split()[1], 1)
    assert not_rating.status_code == 422
    # A holder cannot get a rating link for someone else's access.
    assert (
        world.client.post(f"/certhub/me/accesses/{served['access']['id']}/rating-token", headers=stranger.headers).status_code
        == 404
    )
    assert _rate(world, served["holder"], served["token"], 4).status_code == 201  # the holder still can


def test_a_late_reply_is_recorded_as_late_and_the_report_and_export_show_it(world: World, served: dict[str, Any]) -> None:
    item = _rate(world, served["holder"], served["token"], 1, '=HYPERLINK("http://x")').json()["rectification"]
    with world.hub.factory() as db:
        db.execute(update(Rectification).values(due_at=utcnow() - timedelta(hours=1)))
        db.commit()
    queue = world.client.get("/ratings/rectifications", headers=world.hub.admin.headers).json()["items"]
    assert queue[0]["overdue"] is True
    late = world.client.post(
        f"/ratings/rectifications/{item['id']}/reply", json={"reply": "已整改，回复晚了。"}, headers=served["staff"].headers
    )
    assert late.status_code == 200 and late.json()["late"] is True
    with world.hub.factory() as db:
        record = db.scalars(select(AuditRecord).where(AuditRecord.action == "rectification.reply")).one()
        assert record.outcome == "late"

    today = utcnow().astimezone(SHANGHAI).date()
    period = f"start={today - timedelta(days=1)}&end={today}"
    report = world.client.get(f"/exchange/report?{period}", headers=world.hub.admin.headers).json()
    (row,) = [d for d in report["departments"] if d["department_id"] == world.window.department_id]
    assert row["ratings"] == {"poor": 1} and row["average_score"] == 1.0
    assert row["rectifications_opened"] == 1 and row["rectification_rate"] == 1.0 and row["reply_on_time_rate"] == 0.0
    assert "on_time_rate" in row

    lines = world.client.get(f"/ratings/export?{period}", headers=world.hub.admin.headers)
    assert lines.status_code == 200 and lines.headers["content-type"].startswith("application/x-ndjson")
    (record_,) = [json.loads(line) for line in lines.text.splitlines()]
    assert list(record_) == EXPORT_FIELDS
    assert record_["score"] == 1 and record_["reply_late"] is True and record_["department_name"] == "北京市政务服务中心"
    table = world.client.get(f"/ratings/export?{period}&format=csv", headers=world.hub.admin.headers)
    rows = list(csv.DictReader(io.StringIO(table.text.lstrip("\ufeff"))))
    assert len(rows) == 1 and rows[0]["score"] == "1" and rows[0]["comment"].startswith("'=")  # no formula in a spreadsheet
    assert world.client.get(f"/ratings/export?{period}", headers=served["staff"].headers).status_code == 403
    bad = world.client.get(f"/ratings/export?start={today}&end={today - timedelta(days=3)}", headers=world.hub.admin.headers)
    assert bad.status_code == 422


def _at(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _b64(part: str) -> str:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def _unb64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
