"""The memory of verified tokens: short, bounded by the token's expiry, emptied by a revocation's commit."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ops.auth import Principal, Role, TokenCache
from ops.errors import Unauthenticated
from tests.conftest import Hub


def _principal(exp: float) -> Principal:
    return Principal(subject="c1", roles=frozenset({Role.WINDOW}), claims={"exp": exp})


def test_a_remembered_token_is_forgotten_after_the_cache_time_or_at_its_expiry() -> None:
    cache = TokenCache()
    cache.put("long", _principal(time.time() + 3600), ttl=0.05)
    cache.put("expired", _principal(time.time() - 1), ttl=60)
    assert cache.get("long") is not None
    assert cache.get("expired") is None  # never remembered past the token's own expiry
    time.sleep(0.06)
    assert cache.get("long") is None


def test_the_cache_is_bounded() -> None:
    cache = TokenCache(max_entries=3)
    for i in range(5):
        cache.put(f"t{i}", _principal(time.time() + 3600), ttl=60)
    assert [cache.get(f"t{i}") is not None for i in range(5)] == [False, False, True, True, True]


def test_a_revoked_client_is_refused_on_its_next_call_even_though_its_token_was_remembered(
    client: TestClient, hub: Hub, db: Session
) -> None:
    window = hub.system()
    assert client.get("/me", headers=window.headers).status_code == 200  # now remembered
    assert client.get("/me", headers=window.headers).status_code == 200
    revoked = client.post(
        f"/clients/{window.client.client_id}/revoke",  # type: ignore[union-attr]
        json={"reason": "终端丢失"},
        headers=hub.admin.headers,
    )
    assert revoked.status_code == 200, revoked.text
    refused = client.get("/me", headers=window.headers)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


class _SlowCheck:
    """A token check that takes a while and counts how often it runs."""

    def __init__(self, *, fails: bool = False) -> None:
        self.calls = 0
        self.fails = fails
        self.release = threading.Event()

    def __call__(self) -> Principal:
        self.calls += 1
        self.release.wait(5)
        if self.fails:
            raise Unauthenticated("the token's signature does not verify")
        return _principal(time.time() + 3600)


async def _burst(cache: TokenCache, check: _SlowCheck, n: int, *, ttl: float = 60) -> list[Principal | BaseException]:
    callers = [asyncio.ensure_future(cache.principal("tok", check, ttl)) for _ in range(n)]
    await asyncio.sleep(0.05)  # every caller is now waiting
    check.release.set()
    return await asyncio.gather(*callers, return_exceptions=True)


def test_a_burst_of_calls_with_one_token_checks_it_once() -> None:
    """A busy client's calls all arrive when its entry expires: one check, every call answered by it."""
    cache, check = TokenCache(), _SlowCheck()
    answers = asyncio.run(_burst(cache, check, 20))
    assert check.calls == 1
    assert all(isinstance(a, Principal) and a.subject == "c1" for a in answers)
    assert cache.get("tok") is not None  # and remembered for the next calls


def test_a_refused_token_is_refused_to_every_caller_waiting_on_the_check() -> None:
    cache, check = TokenCache(), _SlowCheck(fails=True)
    answers = asyncio.run(_burst(cache, check, 5))
    assert check.calls == 1 and all(isinstance(a, Unauthenticated) for a in answers)
    assert cache.get("tok") is None
    check.fails, check.release = False, threading.Event()
    check.release.set()
    assert asyncio.run(cache.principal("tok", check, 60)).subject == "c1"  # the next call checks afresh


def test_a_check_under_way_when_the_cache_is_emptied_does_not_refill_it() -> None:
    """A revocation commits while a token is being checked: the check's answer is not remembered."""
    cache, check = TokenCache(), _SlowCheck()

    async def scenario() -> Principal:
        waiting = asyncio.ensure_future(cache.principal("tok", check, 60))
        await asyncio.sleep(0.05)
        cache.clear()  # what a revocation's commit does
        check.release.set()
        return await waiting

    assert asyncio.run(scenario()).subject == "c1"
    assert cache.get("tok") is None


def test_a_caller_going_away_does_not_cancel_the_check_others_wait_for() -> None:
    cache, check = TokenCache(), _SlowCheck()

    async def scenario() -> Principal:
        first = asyncio.ensure_future(cache.principal("tok", check, 60))
        second = asyncio.ensure_future(cache.principal("tok", check, 60))
        await asyncio.sleep(0.05)
        first.cancel()
        check.release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(scenario()).subject == "c1" and check.calls == 1


def test_a_deactivated_departments_token_is_refused_on_its_next_call_even_though_it_was_remembered(
    client: TestClient, hub: Hub
) -> None:
    system = hub.system()
    assert client.get("/me", headers=system.headers).status_code == 200  # now remembered
    deactivated = client.patch(f"/departments/{system.department_id}", json={"active": False}, headers=hub.admin.headers)
    assert deactivated.status_code == 200, deactivated.text
    refused = client.get("/me", headers=system.headers)
    assert refused.status_code == 401 and "deactivated" in refused.json()["detail"]
    assert client.get("/departments", headers=system.headers).status_code == 401

    reactivated = client.patch(f"/departments/{system.department_id}", json={"active": True}, headers=hub.admin.headers)
    assert reactivated.status_code == 200, reactivated.text
    assert client.get("/me", headers=system.headers).status_code == 200  # the same token, its department active again
