"""Tokens of a deactivated department or a revoked client, across two `govhub serve` processes on one database:
the process that made the change refuses them at once, the other within GOVHUB_TOKEN_CACHE_SECONDS."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.hubprocess import ADMIN_ID, ADMIN_SECRET, HubProcess, drop_postgres, fresh_postgres
from tests.factories import uscc

pytestmark = pytest.mark.slow

CACHE_SECONDS = 2.0


@pytest.fixture(scope="module")
def two_hubs() -> Iterator[tuple[HubProcess, HubProcess]]:
    """Two hub processes on one database (a SQLite file in a shared data directory, or a fresh PostgreSQL database)."""
    base = os.environ.get("GOVHUB_TEST_DATABASE_URL", "")
    url, name = fresh_postgres(base) if base else ("", "")
    data_dir = Path(tempfile.mkdtemp(prefix="govhub-two-"))
    # One deployment behind one public address: both processes issue and accept the same tokens.
    env = {"GOVHUB_TOKEN_CACHE_SECONDS": str(CACHE_SECONDS), "GOVHUB_PUBLIC_URL": "https://hub.test"}
    try:
        with (
            HubProcess(database_url=url, env=env, scheduler=False, data_dir=data_dir) as first,
            HubProcess(database_url=url, env=env, scheduler=False, data_dir=data_dir) as second,
        ):
            yield first, second
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if name:
            drop_postgres(base, name)


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _bearer(hub: HubProcess, client_id: str, secret: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return {"Authorization": f"Bearer {_ok(httpx.post(hub.base + '/auth/token', data=form))['access_token']}"}


def _department_system(hub: HubProcess, admin: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """A new department with a system client: (department id, client id, the client's token headers)."""
    body = {"code": uscc(), "name": "市医保局", "level": "city", "region_code": "110100"}
    department = _ok(httpx.post(hub.base + "/departments", json=body, headers=admin), 201)
    created = _ok(
        httpx.post(
            hub.base + "/clients",
            json={"name": "医保系统", "roles": ["department_system"], "department_id": department["id"]},
            headers=admin,
        ),
        201,
    )
    return department["id"], created["client_id"], _bearer(hub, created["client_id"], created["client_secret"])


def _refused_within(hub: HubProcess, headers: dict[str, str], seconds: float) -> float:
    """How long after now `hub` starts refusing `headers` (fails if it still accepts them after `seconds`)."""
    started = time.monotonic()
    while True:
        status = httpx.get(hub.base + "/me", headers=headers).status_code
        elapsed = time.monotonic() - started
        if status == 401:
            return elapsed
        assert status == 200
        assert elapsed < seconds, f"still accepted {elapsed:.1f} s after the change"
        time.sleep(0.1)


def test_a_deactivated_departments_tokens_stop_working_in_every_hub_process(two_hubs: tuple[HubProcess, HubProcess]) -> None:
    first, second = two_hubs
    admin = _bearer(first, ADMIN_ID, ADMIN_SECRET)
    department_id, _client_id, system = _department_system(first, admin)
    for hub in (first, second):
        assert _ok(httpx.get(hub.base + "/me", headers=system))["department_id"] == department_id  # remembered by both

    _ok(httpx.patch(f"{first.base}/departments/{department_id}", json={"active": False}, headers=admin))

    refused = httpx.get(first.base + "/me", headers=system)  # the process that deactivated it: at once
    assert refused.status_code == 401 and "deactivated" in refused.json()["detail"]
    _refused_within(second, system, CACHE_SECONDS + 1.5)  # the other: within the cache time
    assert "deactivated" in httpx.get(second.base + "/departments", headers=system).json()["detail"]


def test_a_revoked_clients_tokens_stop_working_in_every_hub_process(two_hubs: tuple[HubProcess, HubProcess]) -> None:
    first, second = two_hubs
    admin = _bearer(first, ADMIN_ID, ADMIN_SECRET)
    _department_id, client_id, system = _department_system(first, admin)
    for hub in (first, second):
        _ok(httpx.get(hub.base + "/me", headers=system))

    _ok(httpx.post(f"{second.base}/clients/{client_id}/revoke", json={"reason": "系统下线"}, headers=admin))

    assert httpx.get(second.base + "/me", headers=system).status_code == 401
    _refused_within(first, system, CACHE_SECONDS + 1.5)
