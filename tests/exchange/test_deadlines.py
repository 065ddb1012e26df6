"""Deadlines of sharing requests in working days, and their supervision: overdue sweep, breaches, notifications,
calendar loads that recompute open deadlines, webhooks, grant expiry."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import service, tasks
from exchange.models import DeadlineBreach, Notification
from tests.exchange.conftest import Clock, World


def test_a_request_filed_on_the_eve_of_national_day_is_reviewed_by_the_tiaoxiu_saturday(world: World, clock: Clock) -> None:
    # 10-01..07 are holidays; 10-08, 10-09 and Saturday 10-10 (调休) are working days 1, 2 and 3.
    clock.set("2026-09-30 16:00")
    req = world.file(world.persons)
    assert req["deadline"]["due_last_day"] == "2026-10-10"
    assert req["deadline"]["due_at"].startswith("2026-10-10T16:00:00")  # 24:00 Beijing time
    assert req["deadline"]["provisional"] is False
    clock.set("2026-10-09 09:00")
    accepted = world.act(world.admin, req["id"], "accept").json()
    # Ten working days from Friday 10-09: 10-10 (Saturday, 调休) is day one, Sunday 10-11 is off.
    assert accepted["deadline"]["due_last_day"] == "2026-10-22"


def test_during_the_holiday_the_time_left_counts_only_working_days(world: World, clock: Clock) -> None:
    clock.set("2026-09-30 16:00")
    req = world.file(world.persons)
    clock.set("2026-10-03 12:00")  # a holiday: 10-08, 10-09, 10-10 remain
    detail = world.client.get(f"/exchange/requests/{req['id']}", headers=world.consumer.headers).json()
    assert detail["deadline"]["working_days_left"] == 3 and detail["deadline"]["overdue"] is False


def test_a_provider_decision_across_the_spring_festival_2026(world: World, clock: Clock) -> None:
    # 02-14 (Saturday) and 02-28 (Saturday) are 调休 working days; 02-15..23 are the holiday.
    clock.set("2026-02-13 11:00")
    req = world.file(world.persons)
    assert req["deadline"]["due_last_day"] == "2026-02-25"
    accepted = world.act(world.admin, req["id"], "accept").json()
    assert accepted["deadline"]["due_last_day"] == "2026-03-05"


def test_a_filing_after_hours_or_on_a_holiday_counts_from_the_next_working_day(world: World, clock: Clock) -> None:
    clock.set("2026-11-06 23:30")  # Friday night: Monday is day one
    late = world.file(world.persons)
    clock.set("2026-11-07 10:00")  # Saturday
    weekend = world.file(world.persons)
    assert late["deadline"]["due_last_day"] == weekend["deadline"]["due_last_day"] == "2026-11-11"


def test_a_deadline_reaching_into_2027_is_provisional_until_the_calendar_is_loaded(world: World, clock: Clock) -> None:
    clock.set("2026-12-24 10:00")
    req = world.file(world.persons)
    accepted = world.act(world.admin, req["id"], "accept").json()
    # 2027 is not published: weekdays only, so 01-01 (a Friday) counts and day ten is 01-07.
    assert accepted["deadline"]["provisional"] is True
    assert accepted["deadline"]["due_last_day"] == "2027-01-07"

    loaded = world.client.put(
        "/calendar/years/2027",
        json={"source": "国办发明电〔2026〕12号", "holidays": [{"date": "2027-01-01", "name": "元旦"}], "workdays": []},
        headers=world.admin.headers,
    )
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["deadlines_recomputed"] >= 1
    after = world.client.get(f"/exchange/requests/{req['id']}", headers=world.consumer.headers).json()
    assert after["deadline"]["provisional"] is False
    assert after["deadline"]["due_last_day"] == "2027-01-08"


def test_a_conditional_request_not_decided_in_10_working_days_is_marked_overdue(world: World, clock: Clock, db: Session) -> None:
    clock.set("2026-11-02 10:00")
    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")
    clock.set("2026-11-16 23:59")
    assert tasks.sweep_overdue(db) == 0
    clock.set("2026-11-17 00:01")
    assert tasks.sweep_overdue(db) == 1
    assert tasks.sweep_overdue(db) == 0  # each breach is recorded once
    db.flush()

    breach = db.scalars(select(DeadlineBreach).where(DeadlineBreach.request_id == req["id"])).one()
    assert breach.department_id == world.provider.department_id and breach.step == "decision"
    detail = world.client.get(f"/exchange/requests/{req['id']}", headers=world.provider.headers).json()
    assert detail["deadline"]["overdue"] is True
    clock.set("2026-11-18 10:00")
    later = world.client.get(f"/exchange/requests/{req['id']}", headers=world.provider.headers).json()
    assert later["deadline"]["working_days_left"] == -2
    notes = world.client.get("/exchange/notifications", headers=world.provider.headers).json()["items"]
    assert any(n["kind"] == "deadline.overdue" and n["request_id"] == req["id"] for n in notes)
    breaches = world.client.get("/exchange/breaches", headers=world.provider.headers).json()["items"]
    assert [b["request_id"] for b in breaches] == [req["id"]]
    assert world.client.get("/exchange/breaches", headers=world.consumer.headers).json()["items"] == []
    overdue = world.client.get("/exchange/requests?overdue=true", headers=world.provider.headers).json()["items"]
    assert [r["id"] for r in overdue] == [req["id"]]


def test_a_review_not_done_in_3_working_days_is_a_breach_of_the_platform(world: World, clock: Clock, db: Session) -> None:
    clock.set("2026-11-02 10:00")
    req = world.file(world.persons)
    clock.set("2026-11-06 09:00")
    assert tasks.sweep_overdue(db) == 1
    db.flush()
    breach = db.scalars(select(DeadlineBreach).where(DeadlineBreach.request_id == req["id"])).one()
    assert breach.department_id is None and breach.step == "review"
    notes = world.client.get("/exchange/notifications", headers=world.admin.headers).json()["items"]
    assert any(n["kind"] == "deadline.overdue" for n in notes)
    # A late acceptance still works, and the completed step stays counted as late in the report.
    assert world.act(world.admin, req["id"], "accept").status_code == 200
    report = world.client.get("/exchange/report?start=2026-11-01&end=2026-11-30", headers=world.admin.headers).json()
    platform = next(d for d in report["departments"] if d["department_id"] == "platform")
    assert platform["steps_completed"] == 1 and platform["on_time_rate"] == 0.0


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_first = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers.items()), body))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(500)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "fail_first": 1})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_notifications_are_pushed_to_the_webhook_signed_and_retried(
    world: World, clock: Clock, db: Session, receiver: tuple[str, type[_Receiver]]
) -> None:
    url, handler = receiver
    secret = "s3cret-of-the-police-bureau"
    assert (
        world.client.put("/exchange/webhook", json={"url": url, "secret": "short"}, headers=world.provider.headers).status_code
        == 422
    )
    assert (
        world.client.put("/exchange/webhook", json={"url": url, "secret": secret}, headers=world.provider.headers).status_code
        == 204
    )
    clock.set("2026-11-02 10:00")
    req = world.file(world.persons)
    world.act(world.admin, req["id"], "accept")  # the provider is notified: a request to decide

    now = clock.now
    assert tasks.deliver_webhooks(db, now=now, max_attempts=5) == 0  # the receiver fails the first try
    note = db.scalars(select(Notification).where(Notification.department_id == world.provider.department_id)).one()
    assert note.attempts == 1 and note.last_error == "HTTP 500" and not note.delivered
    assert tasks.deliver_webhooks(db, now=now, max_attempts=5) == 0  # not yet due again
    assert tasks.deliver_webhooks(db, now=clock.advance(minutes=1), max_attempts=5) == 1
    assert note.delivered

    headers, body = handler.received[-1]
    stamp = headers["X-Govhub-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Govhub-Signature"] == expected
    assert json.loads(body)["request_id"] == req["id"]


def test_grants_expire_at_the_end_of_their_last_day(world: World, clock: Clock, db: Session) -> None:
    clock.set("2026-11-02 10:00")
    grant = world.granted(world.open_data, valid_until="2026-11-30")
    clock.set("2026-11-30 23:59")
    assert world.client.get(f"/exchange/grants/{grant['id']}/export", headers=world.consumer.headers).status_code == 200
    clock.set("2026-12-01 00:00")
    refused = world.client.get(f"/exchange/grants/{grant['id']}/export", headers=world.consumer.headers)
    assert refused.status_code == 403 and "expired" in refused.json()["detail"]
    assert tasks.expire_grants(db) == 1
    assert tasks.expire_grants(db) == 0
    db.flush()
    state = world.client.get(f"/exchange/grants/{grant['id']}", headers=world.consumer.headers).json()["state"]
    assert state == "expired"
    feed = world.client.get("/exchange/events", headers=world.provider.headers).json()["items"]
    assert feed[-1]["kind"] == "grant.expired"


def test_an_operator_runs_the_sweep_and_the_report_from_the_shell(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import MASTER_KEY

    env = {**os.environ, "GOVHUB_DATA_DIR": str(tmp_path), "GOVHUB_MASTER_KEY": MASTER_KEY}
    env.pop("GOVHUB_DATABASE_URL", None)

    def govhub(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "govhub.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    assert govhub("db", "upgrade").returncode == 0
    swept = govhub("exchange", "sweep")
    assert swept.returncode == 0 and "0 step(s) newly overdue" in swept.stdout, swept.stderr
    report = govhub("exchange", "report", "--start", "2026-11-01", "--end", "2026-11-30", "--json")
    assert report.returncode == 0 and json.loads(report.stdout)["departments"] == []
    bad = govhub("exchange", "report", "--start", "2026-11-31", "--end", "2026-11-30")
    assert bad.returncode != 0 and "not a date" in bad.stderr


def test_the_state_gauges_show_requests_by_state_overdue_departments_and_active_grants(
    world: World, clock: Clock, db: Session
) -> None:
    from prometheus_client import REGISTRY

    clock.set("2026-11-02 10:00")
    late = world.file(world.persons)
    world.act(world.admin, late["id"], "accept")
    world.granted(world.open_data)
    clock.set("2026-11-20 10:00")
    tasks.sweep_overdue(db)
    figures = service.publish_gauges(db)
    assert figures == {
        "by_state": {**{s: 0 for s in figures["by_state"]}, "provider_review": 1, "granted": 1},
        "overdue": {world.provider.department_id: 1},
        "on_time_rate": 1.0,
        "grants_active": 1,
    }
    assert REGISTRY.get_sample_value("govhub_sharing_requests", {"state": "provider_review"}) == 1
    assert REGISTRY.get_sample_value("govhub_sharing_requests_overdue", {"department": world.provider.department_id}) == 1
    assert REGISTRY.get_sample_value("govhub_grants_active") == 1
