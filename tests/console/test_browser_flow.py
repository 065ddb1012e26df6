"""In a real browser: a grant's page shows its subscriptions and the deliveries parked after failing, and its
consumer replays them with a button."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from exchange import service as exchange
from govhub.app import create_app
from govhub.database import prepare
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import make_engine
from ops.hubprocess import free_port
from tests.catalog_registry.helpers import entry_body
from tests.conftest import MASTER_KEY
from tests.console.conftest import ADMIN_ID, ADMIN_SECRET, require_browser, shot
from tests.factories import uscc

require_browser()

PEOPLE = (
    "身份证号,姓名,户籍地址,出生日期\n"
    "110105199001011234,张三,北京市朝阳区幸福路1号,1990-01-01\n"
    "11010519491231002X,李四,北京市东城区和平街2号,1949-12-31\n"
)


@dataclass
class FlowHub:
    url: str
    engine: Engine
    settings: Settings


@pytest.fixture(scope="module")
def flow_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowHub]:
    """A hub on a loopback port that delivers to local addresses (the subscriber here is on this machine)."""
    import uvicorn

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("flow-hub"),
        master_key=MASTER_KEY,  # type: ignore[arg-type]
        public_url="http://127.0.0.1",
        bootstrap_admin_client_id=ADMIN_ID,
        bootstrap_admin_secret=ADMIN_SECRET,  # type: ignore[arg-type]
        run_scheduler=False,
        webhook_allow_private=True,
    )
    engine = make_engine(settings.effective_database_url)
    prepare(engine, settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield FlowHub(f"http://127.0.0.1:{port}", engine, settings)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _token(api: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    body = _ok(
        api.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    )
    return {"Authorization": f"Bearer {body['access_token']}"}


def _staff(api: httpx.Client, admin: dict[str, str], department: str) -> tuple[str, str, dict[str, str]]:
    dept = _ok(
        api.post(
            "/departments",
            json={"code": uscc(region="110000"), "name": department, "level": "city", "region_code": "110000"},
            headers=admin,
        ),
        201,
    )
    made = _ok(
        api.post(
            "/clients",
            json={"name": department + "数据专员", "roles": ["department_admin"], "department_id": dept["id"]},
            headers=admin,
        ),
        201,
    )
    return made["client_id"], made["client_secret"], _token(api, made["client_id"], made["client_secret"])


def _upload(api: httpx.Client, headers: dict[str, str], entry_id: str, content: str) -> Any:
    files = {"file": ("people.csv", content.encode(), "text/csv")}
    return _ok(api.post(f"/catalog/entries/{entry_id}/datasets", files=files, headers=headers), 201)


def test_a_consumer_sees_its_parked_deliveries_on_the_grant_page_and_replays_them(browser: Any, flow_hub: FlowHub) -> None:
    with socket.socket() as s:  # the subscriber's endpoint is down
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}/hooks/hj"
    with httpx.Client(base_url=flow_hub.url, timeout=30) as api:
        admin = _token(api, ADMIN_ID, ADMIN_SECRET)
        _, _, provider = _staff(api, admin, "市公安局")
        consumer_id, consumer_secret, consumer = _staff(api, admin, "市民政局")
        entry = _ok(
            api.post(
                "/catalog/entries", json=entry_body(sharing_type="conditional", conditions="仅限社会救助审核"), headers=provider
            ),
            201,
        )
        _ok(api.post(f"/catalog/entries/{entry['id']}/submit", headers=provider))
        _ok(api.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=admin))
        _upload(api, provider, entry["id"], PEOPLE)
        request = {
            "resource_id": entry["id"],
            "items": ["身份证号", "姓名", "出生日期"],
            "purpose": "低保资格审核",
            "scenario": "户籍变化时更新救助对象",
            "legal_basis": "《社会救助暂行办法》第十一条",
            "valid_until": (date.today() + timedelta(days=200)).isoformat(),
            "contact_name": "李四",
            "contact_phone": "010-12345678",
        }
        filed = _ok(api.post("/exchange/requests", json=request, headers=consumer), 201)
        _ok(api.post(f"/exchange/requests/{filed['id']}/accept", headers=admin))
        grant_id = _ok(api.post(f"/exchange/requests/{filed['id']}/decision", json={"approve": True}, headers=provider))[
            "grant_id"
        ]
        _ok(api.post(f"/exchange/grants/{grant_id}/subscriptions", json={"kind": "webhook", "url": down}, headers=consumer), 201)
        _ok(api.post(f"/exchange/grants/{grant_id}/subscriptions", json={"kind": "feed"}, headers=consumer), 201)
        _upload(api, provider, entry["id"], PEOPLE.replace("张三", "张叁"))
    with Session(flow_hub.engine) as db:  # the jobs, as the scheduler runs them: the subscriber stays down
        exchange.take_change_sets(db)
        db.commit()
        exchange.deliver_subscriptions(
            db, vault=KeyVault.from_settings(flow_hub.settings), allow_private=True, max_attempts=1, timeout=1.0
        )
        db.commit()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{flow_hub.url}/console/login")
    page.fill("#client_id", consumer_id)
    page.fill("#client_secret", consumer_secret)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url("**/console/")
    page.goto(f"{flow_hub.url}/console/exchange/requests/{filed['id']}")
    page.click("#grant-link")
    page.wait_for_url(f"**/console/exchange/grants/{grant_id}")
    subscriptions = page.locator("#subscriptions").inner_text()
    assert down in subscriptions and "按游标拉取" in subscriptions
    parked = page.locator("#parked").inner_text()
    assert "ConnectError" in parked
    shot(page, "40-grant-subscriptions-parked")

    page.click("#parked button[type=submit]")
    page.wait_for_url("**replayed=1")
    assert "已重新排队 1 条" in page.locator("[role=status]").inner_text()
    assert "没有暂停的推送" in page.locator("#parked").inner_text()
    shot(page, "41-grant-subscriptions-replayed")
