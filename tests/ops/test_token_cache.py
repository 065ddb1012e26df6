"""The memory of verified tokens: short, bounded by the token's expiry, emptied by a revocation's commit."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from ops.auth import Principal, Role, TokenCache
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
