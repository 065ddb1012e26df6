"""Granted lookups against a running `govhub serve` on its SQLite file, where batches are settled on
the event loop: good and bad lookups sent together each get their own answer, and all are recorded."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from ops.hubprocess import ADMIN_ID, ADMIN_SECRET, HubProcess
from tests.catalog_registry.helpers import entry_body
from tests.factories import citizen_id, uscc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub() -> Iterator[HubProcess]:
    if os.environ.get("GOVHUB_TEST_DATABASE_URL"):
        pytest.skip("the loop writer is SQLite's; this run is on PostgreSQL")
    with HubProcess(scheduler=False) as running:
        yield running


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _token(client: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return {"Authorization": f"Bearer {_ok(client.post('/auth/token', data=form))['access_token']}"}


def _grant(client: httpx.Client, people: list[str]) -> tuple[str, dict[str, str], dict[str, str]]:
    """A provider's published dataset of `people` and a consumer's approved grant: (grant, consumer, provider)."""
    admin = _token(client, ADMIN_ID, ADMIN_SECRET)
    actors = []
    for name in ("市公安局", "市民政局"):
        department = _ok(client.post("/departments", json={"code": uscc(), "name": name, "level": "city",
                                                           "region_code": "110100"}, headers=admin), 201)  # fmt: skip
        created = _ok(client.post("/clients", json={"name": name + "系统", "roles": ["department_system"],
                                                    "department_id": department["id"]}, headers=admin), 201)  # fmt: skip
        actors.append(_token(client, created["client_id"], created["client_secret"]))
    provider, consumer = actors
    entry = _ok(client.post("/catalog/entries", json=entry_body(sharing_type="conditional", conditions="仅限政务服务办理"),
                            headers=provider), 201)  # fmt: skip
    _ok(client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider))
    _ok(client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=admin))
    csv = "身份证号,姓名,户籍地址,出生日期\n" + "".join(
        f"{p},姓名{n},北京市东城区{n}号,1990-03-07\n" for n, p in enumerate(people)
    )
    files = {"file": ("people.csv", csv.encode(), "text/csv")}
    _ok(client.post(f"/catalog/entries/{entry['id']}/datasets", files=files, headers=provider), 201)
    request = _ok(client.post("/exchange/requests", json={
        "resource_id": entry["id"], "items": ["身份证号", "姓名"], "purpose": "低保资格审核", "scenario": "窗口受理低保申请",
        "legal_basis": "《社会救助暂行办法》第十一条", "contact_name": "李四", "contact_phone": "010-12345678",
        "valid_until": (date.today() + timedelta(days=300)).isoformat(),
    }, headers=consumer), 201)  # fmt: skip
    _ok(client.post(f"/exchange/requests/{request['id']}/accept", headers=admin))
    approved = _ok(client.post(f"/exchange/requests/{request['id']}/decision", json={"approve": True}, headers=provider))
    return str(approved["grant_id"]), consumer, provider


def _metric(text: str, name: str) -> float:
    found = re.search(rf'^{re.escape(name)}{{writer="lookups"}} ([0-9.e+]+)$', text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def test_lookups_sent_together_are_settled_on_the_loop_each_with_its_own_answer(hub: HubProcess) -> None:
    people = [citizen_id(region="110101", born=date(1990, 3, 1 + n)) for n in range(20)]
    with httpx.Client(base_url=hub.base, timeout=30) as client:
        grant_id, consumer, provider = _grant(client, people)

    async def together() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=hub.base, timeout=30) as client:
            asks = [(grant_id, {"身份证号": p}) for p in people]
            # a wrong parameter, and a grant that is not the caller's
            asks += [(grant_id, {"姓名": "姓名1"}), ("no-such-grant", {"身份证号": people[0]})]
            return list(await asyncio.gather(*(
                client.post(f"/exchange/grants/{g}/lookup", json={"params": p, "use_cause": "低保审核"}, headers=consumer)
                for g, p in asks
            )))  # fmt: skip

    *found, wrong_parameter, stranger = asyncio.run(together())
    for person, response in zip(people, found, strict=True):
        rows = _ok(response)["rows"]
        assert len(rows) == 1 and rows[0]["身份证号"] == person[:6] + "********" + person[-4:]  # masked
    assert wrong_parameter.status_code == 422 and "姓名" in wrong_parameter.json()["detail"]
    assert stranger.status_code == 404

    with httpx.Client(base_url=hub.base, timeout=30) as client:
        uses = _ok(client.get("/exchange/accesses", params={"side": "provider", "limit": 200}, headers=provider))["items"]
        metrics = client.get("/metrics").text
    outcomes = sorted(u["outcome"] for u in uses)
    assert outcomes.count("success") == 20 and "invalid" in outcomes  # every lookup recorded, the refused one too
    assert _metric(metrics, "govhub_group_commit_batch_size_sum") == 22  # every lookup went through a batch
    batches = _metric(metrics, "govhub_group_commit_batch_size_count")
    assert batches < 22  # sent together, settled together
    assert _metric(metrics, "govhub_group_commit_loop_batches_total") == batches  # all of them on the event loop
    assert _metric(metrics, "govhub_group_commit_handed_over_total") == 0  # none needed the writer thread
