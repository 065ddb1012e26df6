"""好差评 between departments: the consumer rates a decision or a data delivery from a rating link; a poor
rating opens a rectification item for the provider, which answers; the report shows the rates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.exchange.conftest import Clock, World


def _decided(world: World, clock: Clock) -> dict[str, Any]:
    clock.set("2026-11-02 10:00")
    req = world.file(world.persons)
    clock.set("2026-11-03 10:00")
    world.act(world.admin, req["id"], "accept")
    clock.set("2026-11-04 10:00")
    decided = world.act(world.provider, req["id"], "decision", {"approve": True})
    assert decided.status_code == 200, decided.text
    return req


def test_the_consumer_rates_a_decision_by_link_and_the_provider_answers_the_poor_rating(world: World, clock: Clock) -> None:
    req = _decided(world, clock)
    assert world.client.post(f"/exchange/requests/{req['id']}/rating-token", headers=world.provider.headers).status_code == 403
    made = world.client.post(f"/exchange/requests/{req['id']}/rating-token", headers=world.consumer.headers)
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json()["link"].endswith(f"/console/ratings/new/{token}")

    # The provider (not the party served) and another department cannot rate with it.
    for who in (world.provider, world.other):
        refused = world.client.post("/ratings", json={"token": token, "score": 5}, headers=who.headers)
        assert refused.status_code == 403, refused.text
    rated = world.client.post(
        "/ratings", json={"token": token, "score": 1, "comment": "答复理由不清"}, headers=world.consumer.headers
    )
    assert rated.status_code == 201, rated.text
    item = rated.json()["rectification"]
    assert item["status"] == "open"
    # The same decision through the exchange's own endpoint is the same event: rated once.
    again = world.act(world.consumer, req["id"], "rating", {"rating": "good"})
    assert again.status_code == 409

    # The provider answers; the consumer reads it with its rating.
    assert world.client.get("/ratings/rectifications", headers=world.consumer.headers).json()["items"] == []
    replied = world.client.post(
        f"/ratings/rectifications/{item['id']}/reply",
        json={"reply": "已补充答复理由并电话沟通。"},
        headers=world.provider.headers,
    )
    assert replied.status_code == 200 and replied.json()["late"] is False
    mine = world.client.get("/ratings/mine", headers=world.consumer.headers).json()["items"]
    assert mine[0]["rectification"]["reply"] == "已补充答复理由并电话沟通。"

    # The exchange's steps happened in November (its clock); the rating was given today (the rating link's).
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    report = world.client.get(f"/exchange/report?start=2026-11-01&end={today}", headers=world.admin.headers).json()
    provider = {d["department_id"]: d for d in report["departments"]}[world.provider.department_id]
    assert provider["ratings"] == {"poor": 1} and provider["on_time_rate"] == 1.0
    assert provider["rectification_rate"] == 1.0 and provider["reply_on_time_rate"] == 1.0


def test_a_poor_rating_through_the_exchange_endpoint_opens_a_rectification_and_a_delivery_is_rated_too(
    world: World, clock: Clock
) -> None:
    req = _decided(world, clock)
    poor = world.act(world.consumer, req["id"], "rating", {"rating": "poor", "comment": "太慢"})
    assert poor.status_code == 201 and poor.json()["rating"] == "poor"
    queue = world.client.get("/ratings/rectifications?status=open", headers=world.provider.headers).json()["items"]
    assert len(queue) == 1 and queue[0]["event_kind"] == "sharing_request.decision" and queue[0]["comment"] == "太慢"
    assert world.client.get(f"/exchange/requests/{req['id']}", headers=world.consumer.headers).status_code == 200

    grant = world.granted(world.open_data)
    made = world.client.post(f"/exchange/grants/{grant['id']}/rating-token", headers=world.consumer.headers)
    assert made.status_code == 201, made.text
    rated = world.client.post("/ratings", json={"token": made.json()["token"], "score": 4}, headers=world.consumer.headers)
    assert rated.status_code == 201 and rated.json()["event_kind"] == "data.delivery" and rated.json()["rectification"] is None
    assert world.client.post(f"/exchange/grants/{grant['id']}/rating-token", headers=world.other.headers).status_code == 404
