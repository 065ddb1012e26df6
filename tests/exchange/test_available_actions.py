"""What the console offers on a request is what the API lets that person do: `available_actions` and the
rules the actions check when they are sent never disagree, in any state of a request."""

from __future__ import annotations

from typing import Any

import pytest

from exchange import service
from ops.auth import Principal, Role
from tests.conftest import Actor
from tests.exchange.conftest import World

# Each action the request page may offer, and the API call that takes it (with a valid body).
CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "accept": ("accept", {}),
    "provide": ("provide", {}),
    "extension_decision": ("extension/decision", {"approve": True}),
    "coordinate": ("coordination", {"outcome": "uphold", "reason": "维持不予共享"}),
    "decide": ("decision", {"approve": True}),
    "extension": ("extension", {"days": 3, "reason": "需会同派出所核实数据口径"}),
    "withdraw": ("withdraw", {"reason": "业务调整"}),
    "escalate": ("escalate", {"reason": "请平台协调处理"}),
    "rate": ("rating", {"rating": "good"}),
}

STATES = ("submitted", "provider_review", "extension_asked", "rejected", "coordinating", "granted", "rated", "withdrawn")


def _in_state(world: World, state: str) -> str:
    """A new request for the conditional resource, taken to `state` through the API."""
    steps: dict[str, list[tuple[Actor, str, dict[str, Any]]]] = {
        "submitted": [],
        "provider_review": [(world.admin, "accept", {})],
        "extension_asked": [(world.admin, "accept", {}), (world.provider, *CALLS["extension"])],
        "rejected": [(world.admin, "accept", {}), (world.provider, "decision", {"approve": False, "reason": "无法律依据"})],
        "granted": [(world.admin, "accept", {}), (world.provider, "decision", {"approve": True})],
        "withdrawn": [(world.consumer, *CALLS["withdraw"])],
    }
    steps["coordinating"] = [*steps["rejected"], (world.consumer, *CALLS["escalate"])]
    steps["rated"] = [*steps["granted"], (world.consumer, *CALLS["rate"])]
    request_id: str = world.file(world.persons)["id"]
    for who, action, body in steps[state]:
        response = world.act(who, request_id, action, body)
        assert response.status_code in (200, 201), (state, action, response.text)
    return request_id


def _offered(world: World, who: Actor, request_id: str) -> dict[str, bool]:
    if who is world.admin:
        principal = world.hub.admin_principal()
    else:
        principal = Principal(subject="staff", roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=who.department_id)
    with world.hub.factory() as db:
        req = service.get_request(db, who=world.hub.admin_principal(), request_id=request_id)
        deadline = service.deadlines_of(db, [request_id]).get(request_id)
        rated = service.rating_for(db, request_id) is not None
        return service.available_actions(principal, req, deadline=deadline, rated=rated)


@pytest.mark.parametrize("state", STATES)
def test_each_party_is_offered_exactly_the_actions_the_api_accepts_from_it(world: World, state: str) -> None:
    request_id = _in_state(world, state)
    parties = {"platform": world.admin, "provider": world.provider, "consumer": world.consumer}
    offered = {name: _offered(world, who, request_id) for name, who in parties.items()}
    assert set(offered["consumer"]) == set(CALLS)
    # Refused, and refused for who or when it is (never for the body): nothing changes, so all on one request.
    for name, who in parties.items():
        for action, (path, body) in CALLS.items():
            if not offered[name][action]:
                response = world.act(who, request_id, path, body)
                assert response.status_code in (403, 409), (state, name, action, response.text)
    # Accepted: each on a request of its own in the same state.
    for name, who in parties.items():
        for action, (path, body) in CALLS.items():
            if offered[name][action]:
                response = world.act(who, _in_state(world, state), path, body)
                assert response.status_code in (200, 201), (state, name, action, response.text)


def test_a_department_that_is_no_party_is_offered_nothing(world: World) -> None:
    request_id = _in_state(world, "provider_review")
    assert not any(_offered(world, world.other, request_id).values())
    assert world.client.get(f"/exchange/requests/{request_id}", headers=world.other.headers).status_code == 404
