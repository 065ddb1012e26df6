"""Data that flows: a new dataset version's changes reach the grant's subscribers (a webhook, a change feed,
NATS JetStream), only granted fields, masked; retried, parked and replayed; every delivery on the trail.

The webhook subscriber is a real HTTP server on this machine; the broker is the NATS server at
127.0.0.1:4222 (skipped, saying why, where none listens)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from exchange import service
from exchange import tasks as exchange_tasks
from exchange.models import Delivery, OutboxEvent
from ops.codes import id_check_char
from ops.db import utcnow
from ops.scheduler import LeaseRunner
from tests.catalog_registry.helpers import publish, upload
from tests.conftest import Actor, Hub


def _person(i: int) -> tuple[str, str, str, str]:
    body = f"11010519900101{i:03d}"
    return (body + id_check_char(body), f"居民{i:02d}", f"北京市朝阳区幸福路{i}号", f"1990-01-{i + 1:02d}")


PEOPLE = [_person(i) for i in range(10)]
HEADER = "身份证号,姓名,户籍地址,出生日期\n"


def csv_of(rows: list[tuple[str, str, str, str]]) -> str:
    return HEADER + "".join(",".join(r) + "\n" for r in rows)


@dataclass
class Receiver:
    """A subscriber's webhook: answers with the scripted statuses (then 200), applies each event id once."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        if self.delay:
            time.sleep(self.delay)
        self.received.append((headers, body))
        status = self.script.pop(0) if self.script else 200
        if status == 200:
            event = json.loads(body)
            self.applied.setdefault(event["id"], event)  # at least once delivered, applied once
        return status


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = state.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/hj"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture()
def allow_private(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """This deployment delivers to local addresses (the test's receiver)."""
    monkeypatch.setattr(hub.settings, "webhook_allow_private", True)


@dataclass
class Granted:
    provider: Actor
    consumer: Actor
    entry_id: str
    grant_id: str


def granted(client: TestClient, hub: Hub, *, provider_name: str = "市公安局", consumer_name: str = "市民政局") -> Granted:
    """A published entry with a first dataset version, and a grant of 身份证号, 姓名, 出生日期 to the consumer."""
    provider = hub.system(hub.department(provider_name), "户籍系统")
    consumer = hub.system(hub.department(consumer_name), "救助系统")
    entry = publish(client, provider, hub.admin, sharing_type="conditional", conditions="仅限社会救助审核", allows_export=True)
    assert upload(client, provider, entry["id"], csv_of(PEOPLE)).status_code == 201
    filed = client.post(
        "/exchange/requests",
        json={
            "resource_id": entry["id"],
            "items": ["身份证号", "姓名", "出生日期"],
            "purpose": "低保资格审核",
            "scenario": "户籍变化时更新救助对象",
            "legal_basis": "《社会救助暂行办法》第十一条",
            "valid_until": (utcnow().date() + timedelta(days=200)).isoformat(),
            "contact_name": "李四",
            "contact_phone": "010-12345678",
        },
        headers=consumer.headers,
    )
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    assert client.post(f"/exchange/requests/{request_id}/accept", headers=hub.admin.headers).status_code == 200
    approved = client.post(f"/exchange/requests/{request_id}/decision", json={"approve": True}, headers=provider.headers)
    assert approved.status_code == 200, approved.text
    return Granted(provider, consumer, entry["id"], approved.json()["grant_id"])


def three_changed() -> list[tuple[str, str, str, str]]:
    rows = list(PEOPLE)
    for i in (2, 5, 7):
        rows[i] = (rows[i][0], rows[i][1] + "改", rows[i][2], rows[i][3])
    return rows


def take(hub: Hub) -> int:
    with hub.factory() as db:
        written = service.take_change_sets(db)
        db.commit()
    return written


def deliver(hub: Hub, *, now: Any = None, max_attempts: int = 8, timeout: float = 2.0) -> int:
    with hub.factory() as db:
        delivered = service.deliver_subscriptions(
            db, vault=hub.app.state.vault, allow_private=True, max_attempts=max_attempts, timeout=timeout, now=now
        )
        db.commit()
    return delivered


def subscribe(client: TestClient, who: Actor, grant_id: str, **body: Any) -> Any:
    return client.post(f"/exchange/grants/{grant_id}/subscriptions", json=body, headers=who.headers)


def test_a_new_version_with_three_changed_rows_reaches_a_webhook_and_a_feed_reader_with_exactly_those_rows(
    client: TestClient, hub: Hub, receiver: Receiver, allow_private: None
) -> None:
    g = granted(client, hub)
    hook = subscribe(client, g.consumer, g.grant_id, kind="webhook", url=receiver.url)
    assert hook.status_code == 201, hook.text
    secret = hook.json()["secret"]
    assert (
        secret and client.get(f"/exchange/subscriptions/{hook.json()['id']}", headers=g.consumer.headers).json()["secret"] is None
    )
    feed = subscribe(client, g.consumer, g.grant_id, kind="feed")
    assert feed.status_code == 201, feed.text
    feed_id = feed.json()["id"]

    uploaded = upload(client, g.provider, g.entry_id, csv_of(three_changed()))
    assert uploaded.status_code == 201, uploaded.text
    assert (uploaded.json()["rows_added"], uploaded.json()["rows_changed"], uploaded.json()["rows_removed"]) == (0, 3, 0)
    assert take(hub) == 1 and take(hub) == 0  # one event for the one grant, taken once
    assert deliver(hub) == 1 and deliver(hub) == 0

    ((headers, body),) = receiver.received
    stamp = headers["x-govhub-timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-govhub-signature"], expected)
    event = json.loads(body)
    assert headers["x-govhub-event-id"] == event["id"] and event["type"] == "dataset.changed"
    assert event["grant_id"] == g.grant_id and event["dataset_version"] == 2
    assert [c["op"] for c in event["changes"]] == ["changed"] * 3
    rows = sorted((c["row"] for c in event["changes"]), key=lambda r: r["出生日期"])
    assert [r["出生日期"] for r in rows] == ["1990-01-03", "1990-01-06", "1990-01-08"]
    assert [set(r) for r in rows] == [{"身份证号", "姓名", "出生日期"}] * 3  # 户籍地址 is not granted
    assert (
        rows[0]["身份证号"] == "110105" + "*" * 8 + PEOPLE[2][0][-4:] and rows[0]["姓名"] == "居***改"
    )  # masked as the grant says

    page = client.get(f"/exchange/subscriptions/{feed_id}/feed", headers=g.consumer.headers)
    assert page.status_code == 200, page.text
    (read,) = page.json()["items"]
    assert [c["row"] for c in read["changes"]] == [c["row"] for c in event["changes"]]
    again = client.get(
        f"/exchange/subscriptions/{feed_id}/feed", params={"cursor": page.json()["next_cursor"]}, headers=g.consumer.headers
    )
    assert again.status_code == 200 and again.json()["items"] == []

    # Every delivery is on the grant's trail, and on the trail of each holder whose row it carried.
    kinds = [a["kind"] for a in client.get("/exchange/accesses", headers=g.consumer.headers).json()["items"]]
    assert kinds.count("push") == 4 and kinds.count("feed") == 4  # the delivery, and one per holder (3)
    holder = hub.holder(PEOPLE[5][0], name="居民05")
    trail = client.get("/exchange/my-accesses", headers=holder.headers).json()["items"]
    assert {a["kind"] for a in trail} == {"push", "feed"} and all(
        a["consumer_department_id"] == g.consumer.department_id for a in trail
    )
    untouched = hub.holder(PEOPLE[0][0], name="居民00")
    assert client.get("/exchange/my-accesses", headers=untouched.headers).json()["items"] == []

    # Any version the grant covers is served: the one current when it was issued, and later ones.
    params = {"params": {"身份证号": PEOPLE[5][0]}}
    now = client.post(f"/exchange/grants/{g.grant_id}/lookup", json=params, headers=g.consumer.headers).json()["rows"]
    then = client.post(f"/exchange/grants/{g.grant_id}/lookup", json={**params, "version": 1}, headers=g.consumer.headers)
    assert then.status_code == 200, then.text
    assert now[0]["姓名"] == "居***改" and then.json()["rows"][0]["姓名"] == "居**5"
    exported = client.get(f"/exchange/grants/{g.grant_id}/export", params={"version": 1, "limit": 20}, headers=g.consumer.headers)
    assert exported.status_code == 200 and [r["姓名"] for r in exported.json()["rows"]][5] == "居**5"
    missing = client.post(f"/exchange/grants/{g.grant_id}/lookup", json={**params, "version": 9}, headers=g.consumer.headers)
    assert missing.status_code == 404 and "version 9" in missing.json()["detail"]


def test_added_and_removed_rows_are_changes_too(client: TestClient, hub: Hub) -> None:
    g = granted(client, hub)
    feed = subscribe(client, g.consumer, g.grant_id, kind="feed").json()["id"]
    rows = [*PEOPLE[1:], (_person(99)[0], "新居民", "北京市朝阳区新路1号", "1990-02-01")]
    assert upload(client, g.provider, g.entry_id, csv_of(rows)).json()["rows_added"] == 1
    take(hub)
    (event,) = client.get(f"/exchange/subscriptions/{feed}/feed", headers=g.consumer.headers).json()["items"]
    ops = {c["op"]: c["row"]["出生日期"] for c in event["changes"]}
    assert ops == {"added": "1990-02-01", "removed": "1990-01-01"}


def test_a_subscriber_that_fails_five_times_gets_the_event_applied_once(
    client: TestClient, hub: Hub, receiver: Receiver, allow_private: None
) -> None:
    g = granted(client, hub)
    assert subscribe(client, g.consumer, g.grant_id, kind="webhook", url=receiver.url).status_code == 201
    receiver.script = [500] * 5
    upload(client, g.provider, g.entry_id, csv_of(three_changed()))
    take(hub)
    moment = utcnow()
    waits = []
    for _ in range(6):
        deliver(hub, now=moment)
        with hub.factory() as db:
            (row,) = db.query(Delivery).all()
        if row.state == "delivered":
            break
        waits.append((row.next_attempt_at - moment).total_seconds())
        assert deliver(hub, now=moment) == 0  # not again before its backoff
        moment = row.next_attempt_at
    assert row.state == "delivered" and row.attempts == 6 and row.rows == 3
    assert waits == [5, 10, 20, 40, 80]  # exponential backoff
    assert len(receiver.received) == 6 and len({json.loads(b)["id"] for _, b in receiver.received}) == 1
    assert len(receiver.applied) == 1


def test_a_delivery_is_parked_after_its_attempts_and_replayed_by_the_subscriber(
    client: TestClient, hub: Hub, receiver: Receiver, allow_private: None
) -> None:
    g = granted(client, hub)
    sub = subscribe(client, g.consumer, g.grant_id, kind="webhook", url=receiver.url).json()["id"]
    receiver.script = [503] * 3
    upload(client, g.provider, g.entry_id, csv_of(three_changed()))
    take(hub)
    moment = utcnow()
    for _ in range(3):
        deliver(hub, now=moment, max_attempts=3)
        moment += timedelta(hours=2)
    parked = client.get(f"/exchange/subscriptions/{sub}/deliveries", params={"state": "parked"}, headers=g.consumer.headers)
    (item,) = parked.json()["items"]
    assert item["attempts"] == 3 and item["last_error"] == "HTTP 503"
    listed = client.get(f"/exchange/grants/{g.grant_id}/subscriptions", headers=g.provider.headers).json()["items"]
    assert listed[0]["parked"] == 1 and listed[0]["url"] == receiver.url
    assert deliver(hub, now=moment) == 0  # parked: not tried again by itself
    other = hub.system(hub.department("市税务局"))
    refused = client.post(f"/exchange/subscriptions/{sub}/replay", json={}, headers=other.headers)
    assert refused.status_code == 404
    bad = client.post(
        f"/exchange/subscriptions/{sub}/replay", json={"delivery_ids": [item["id"] + 1000]}, headers=g.consumer.headers
    )
    assert bad.status_code == 422
    replayed = client.post(f"/exchange/subscriptions/{sub}/replay", json={}, headers=g.consumer.headers)
    assert replayed.status_code == 200 and replayed.json() == {"replayed": 1}
    assert deliver(hub) == 1 and len(receiver.applied) == 1


def test_two_hub_processes_running_the_delivery_job_deliver_each_event_once(
    client: TestClient, hub: Hub, receiver: Receiver, allow_private: None
) -> None:
    g = granted(client, hub)
    subscribe(client, g.consumer, g.grant_id, kind="webhook", url=receiver.url)
    upload(client, g.provider, g.entry_id, csv_of(three_changed()))
    jobs = [j for j in exchange_tasks.jobs(hub.settings) if j.name in ("exchange.take_changes", "exchange.deliver_subscriptions")]
    first, second = LeaseRunner(hub.factory, jobs, owner="hub-1"), LeaseRunner(hub.factory, jobs, owner="hub-2")
    assert first.run_once("exchange.take_changes") and not second.run_once("exchange.take_changes")
    assert first.run_once("exchange.deliver_subscriptions")
    assert not second.run_once("exchange.deliver_subscriptions")  # the lease: one process runs a slot
    assert len(receiver.received) == 1 and len(receiver.applied) == 1


def test_unreachable_or_slow_subscribers_are_recorded_failures_and_block_nothing(
    client: TestClient, hub: Hub, receiver: Receiver, allow_private: None
) -> None:
    g = granted(client, hub)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/gone"
    assert subscribe(client, g.consumer, g.grant_id, kind="webhook", url=closed).status_code == 201
    assert subscribe(client, g.consumer, g.grant_id, kind="webhook", url=receiver.url).status_code == 201
    receiver.delay = 1.5
    started = time.monotonic()
    assert upload(client, g.provider, g.entry_id, csv_of(three_changed())).status_code == 201
    take(hub)
    lookup = client.post(
        f"/exchange/grants/{g.grant_id}/lookup", json={"params": {"身份证号": PEOPLE[0][0]}}, headers=g.consumer.headers
    )
    assert lookup.status_code == 200  # nothing waits on a subscriber
    assert time.monotonic() - started < 5
    started = time.monotonic()
    assert deliver(hub, timeout=0.5) == 0
    assert time.monotonic() - started < 4  # each call times out
    with hub.factory() as db:
        errors = sorted(str(d.last_error) for d in db.query(Delivery).all())
    assert errors[0].startswith("ConnectError") and errors[1].startswith("ReadTimeout")


def test_bad_input_is_refused_with_a_clear_4xx(client: TestClient, hub: Hub) -> None:
    g = granted(client, hub)
    for url in (
        "http://127.0.0.1:8080/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "http://localhost/x",
    ):
        refused = subscribe(client, g.consumer, g.grant_id, kind="webhook", url=url)
        assert refused.status_code == 422 and refused.json()["code"] == "webhook_address_refused", (url, refused.text)
    assert subscribe(client, g.consumer, g.grant_id, kind="webhook", url="ftp://example.org/x").status_code == 422
    assert subscribe(client, g.consumer, g.grant_id, kind="webhook").status_code == 422
    assert subscribe(client, g.consumer, g.grant_id, kind="feed", url="https://example.org/x").status_code == 422
    assert subscribe(client, g.consumer, g.grant_id, kind="carrier-pigeon").status_code == 422

    stranger = hub.system(hub.department("市税务局"))
    assert subscribe(client, stranger, g.grant_id, kind="feed").status_code == 404  # someone else's grant
    assert subscribe(client, g.provider, g.grant_id, kind="feed").status_code == 404  # the provider does not consume

    feed = subscribe(client, g.consumer, g.grant_id, kind="feed").json()["id"]
    other = subscribe(client, g.consumer, g.grant_id, kind="feed").json()["id"]
    theirs = client.get(f"/exchange/subscriptions/{other}/feed", headers=g.consumer.headers).json()["next_cursor"]
    body, _, tag = theirs.partition(".")
    for cursor in ("garbage", theirs, body + "." + tag[::-1], "eyJ4IjoxfQ.AAAA"):
        bad = client.get(f"/exchange/subscriptions/{feed}/feed", params={"cursor": cursor}, headers=g.consumer.headers)
        assert bad.status_code == 400 and bad.json()["code"] == "bad_cursor", cursor
    assert client.get(f"/exchange/subscriptions/{feed}/feed", headers=stranger.headers).status_code == 404

    revoked = client.post(f"/exchange/grants/{g.grant_id}/revoke", json={"reason": "用途已结束"}, headers=g.provider.headers)
    assert revoked.status_code == 200, revoked.text
    after = subscribe(client, g.consumer, g.grant_id, kind="feed")
    assert after.status_code == 403 and after.json()["code"] == "grant_not_usable"
    read = client.get(f"/exchange/subscriptions/{feed}/feed", headers=g.consumer.headers)
    assert read.status_code == 403 and read.json()["code"] == "grant_not_usable"
    upload(client, g.provider, g.entry_id, csv_of(three_changed()))
    assert take(hub) == 0  # a revoked grant gets no more events


def test_a_revoked_grant_parks_what_was_waiting_for_it(
    client: TestClient, hub: Hub, receiver: Receiver, allow_private: None
) -> None:
    g = granted(client, hub)
    subscribe(client, g.consumer, g.grant_id, kind="webhook", url=receiver.url)
    upload(client, g.provider, g.entry_id, csv_of(three_changed()))
    take(hub)
    client.post(f"/exchange/grants/{g.grant_id}/revoke", json={"reason": "用途已结束"}, headers=g.provider.headers)
    assert deliver(hub) == 0 and receiver.received == []
    with hub.factory() as db:
        (row,) = db.query(Delivery).all()
    assert row.state == "parked" and "no longer active" in str(row.last_error)


def test_supervising_departments_receive_the_event_types_they_subscribed_to(
    client: TestClient, hub: Hub, receiver: Receiver, allow_private: None
) -> None:
    platform = client.post(
        "/exchange/supervision/subscriptions",
        json={"event_types": ["request.filed", "grant.revoked"], "kind": "feed"},
        headers=hub.admin.headers,
    )
    assert platform.status_code == 201, platform.text
    wrong = client.post(
        "/exchange/supervision/subscriptions", json={"event_types": ["request.lost"], "kind": "feed"}, headers=hub.admin.headers
    )
    assert wrong.status_code == 422
    g = granted(client, hub)
    own = client.post(
        "/exchange/supervision/subscriptions",
        json={"event_types": ["grant.revoked", "request.decided"], "kind": "webhook", "url": receiver.url},
        headers=g.provider.headers,
    )
    assert own.status_code == 201, own.text
    client.post(f"/exchange/grants/{g.grant_id}/revoke", json={"reason": "用途已结束"}, headers=g.provider.headers)
    feed = client.get(f"/exchange/subscriptions/{platform.json()['id']}/feed", headers=hub.admin.headers).json()["items"]
    assert [e["type"] for e in feed] == ["request.filed", "grant.revoked"]
    assert feed[1]["object_id"] == g.grant_id and feed[1]["reason"] == "用途已结束"
    assert deliver(hub) == 1
    (event,) = receiver.applied.values()
    assert event["type"] == "grant.revoked" and event["provider_department_id"] == g.provider.department_id


def test_an_overdue_request_reaches_the_platform_and_the_responsible_department(client: TestClient, hub: Hub) -> None:
    platform = client.post(
        "/exchange/supervision/subscriptions",
        json={"event_types": ["request.overdue"], "kind": "feed"},
        headers=hub.admin.headers,
    ).json()["id"]
    consumer = hub.system(hub.department("市民政局"))
    own = client.post(
        "/exchange/supervision/subscriptions", json={"event_types": ["request.overdue"], "kind": "feed"}, headers=consumer.headers
    ).json()["id"]
    provider = hub.system(hub.department("市公安局"))
    entry = publish(client, provider, hub.admin, sharing_type="conditional", conditions="仅限社会救助审核")
    body = {
        "resource_id": entry["id"],
        "items": ["姓名"],
        "purpose": "低保资格审核",
        "scenario": "核验",
        "legal_basis": "《社会救助暂行办法》",
        "valid_until": (utcnow().date() + timedelta(days=100)).isoformat(),
        "contact_name": "李四",
        "contact_phone": "010-1",
    }
    filed = client.post("/exchange/requests", json=body, headers=consumer.headers).json()
    with hub.factory() as db:  # the platform did not review it in time
        assert service.sweep_overdue(db, now=utcnow() + timedelta(days=30)) == 1
        db.commit()
    (seen,) = client.get(f"/exchange/subscriptions/{platform}/feed", headers=hub.admin.headers).json()["items"]
    assert seen["type"] == "request.overdue" and seen["request_id"] == filed["id"] and seen["step"] == "review"
    # The review is the platform's step: the consumer's own subscription has nothing to receive.
    assert client.get(f"/exchange/subscriptions/{own}/feed", headers=consumer.headers).json()["items"] == []


def nats_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1):
            return True
    except OSError:
        return False


def stream_messages(subject: str) -> list[tuple[str, dict[str, Any]]]:
    """(Nats-Msg-Id, event) of the messages JetStream holds on a subject, read with the NATS client."""
    import nats

    async def read() -> list[tuple[str, dict[str, Any]]]:
        nc = await nats.connect("nats://127.0.0.1:4222", connect_timeout=2)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(subject, stream=service_stream())
            found: list[tuple[str, dict[str, Any]]] = []
            while True:
                try:
                    messages = await sub.fetch(50, timeout=1)
                except Exception:
                    break
                for m in messages:
                    found.append(((m.headers or {}).get("Nats-Msg-Id", ""), json.loads(m.data)))
                    await m.ack()
            return found
        finally:
            await nc.close()

    return asyncio.run(read())


def service_stream() -> str:
    from exchange import broker

    return broker.STREAM


@pytest.mark.skipif(not nats_up(), reason="no NATS server listens on 127.0.0.1:4222")
def test_the_broker_stopped_during_an_upload_receives_everything_once_it_is_back(client: TestClient, hub: Hub) -> None:
    g = granted(client, hub)
    upload(client, g.provider, g.entry_id, csv_of(three_changed()))
    rows = three_changed()
    rows[0] = (rows[0][0], "改名", rows[0][2], rows[0][3])
    upload(client, g.provider, g.entry_id, csv_of(rows))
    assert take(hub) == 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = f"nats://127.0.0.1:{s.getsockname()[1]}"
    with hub.factory() as db:
        assert service.publish_outbox(db, url=down) == 0  # the broker is down: nothing is lost, nothing marked
        db.commit()
        assert all(e.published_at is None for e in db.query(OutboxEvent).filter(OutboxEvent.grant_id == g.grant_id))
    with hub.factory() as db:
        assert service.publish_outbox(db, url="nats://127.0.0.1:4222") >= 2  # with the supervision events
        db.commit()
        events = db.query(OutboxEvent).filter(OutboxEvent.grant_id == g.grant_id).order_by(OutboxEvent.id).all()
        assert all(e.published_at is not None for e in events)
        assert service.publish_outbox(db, url="nats://127.0.0.1:4222") == 0
        # Published again (as after a crash between the ack and the mark): JetStream drops the copy.
        for e in events:
            e.published_at = None
        db.flush()
        assert service.publish_outbox(db, url="nats://127.0.0.1:4222") == 2
        db.commit()
    received = stream_messages(f"govhub.grants.{g.grant_id}.changes")
    assert [msg_id for msg_id, _ in received] == [e.event_id for e in events]
    assert [len(event["changes"]) for _, event in received] == [3, 1]
    assert received[1][1]["changes"][0]["row"]["姓名"] == "改*"
    kinds = [a["kind"] for a in client.get("/exchange/accesses", headers=g.consumer.headers).json()["items"]]
    assert kinds.count("broker") >= 2
