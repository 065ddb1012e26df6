"""End-to-end in a real browser: Debian's Chromium, driven by Playwright, against a hub served on loopback.

Screenshots of the main pages are kept under test-artifacts/screenshots/ (or $GOVHUB_SCREENSHOT_DIR).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govhub.app import create_app
from govhub.database import prepare
from ops.config import Settings
from ops.db import make_engine
from ops.hubprocess import free_port
from tests.conftest import MASTER_KEY
from tests.factories import uscc

CHROMIUM = os.environ.get("GOVHUB_CHROMIUM", "/usr/bin/chromium")
ADMIN_ID, ADMIN_SECRET = "gh_admin_browser", "browser-test-secret-0123456789"
SHOTS = Path(os.environ.get("GOVHUB_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"))

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip(
        f"Chromium is not installed at {CHROMIUM} (apt-get install chromium); browser tests skipped", allow_module_level=True
    )


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A hub with its own SQLite file, served by uvicorn on a loopback port for the browser."""
    import uvicorn

    data_dir = tmp_path_factory.mktemp("browser-hub")
    settings = Settings(
        data_dir=data_dir,
        master_key=MASTER_KEY,
        public_url="http://127.0.0.1",  # type: ignore[arg-type]
        bootstrap_admin_client_id=ADMIN_ID,
        bootstrap_admin_secret=ADMIN_SECRET,  # type: ignore[arg-type]
        run_scheduler=False,
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
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_administrator_sets_up_a_department_and_a_window_in_the_browser(browser: Any, hub_url: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{hub_url}/console/departments")
    assert "/console/login" in page.url
    shot(page, "01-login")
    page.fill("#client_id", ADMIN_ID)
    page.fill("#client_secret", ADMIN_SECRET)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url("**/console/departments")

    page.fill("#code", "91350100M000100Y44")
    page.fill("#name", "北京市政务服务管理局")
    page.fill("#region_code", "110000")
    page.click("form[action='/console/departments'] button[type=submit]")
    error = page.locator("#code-error")
    assert "GB 32100" in error.inner_text()
    assert page.input_value("#name") == "北京市政务服务管理局"
    shot(page, "02-department-error-next-to-field")

    code = uscc(region="110000")
    page.fill("#code", code)
    page.click("form[action='/console/departments'] button[type=submit]")
    assert code in page.locator("[role=status]").inner_text()
    shot(page, "03-departments")

    page.goto(f"{hub_url}/console/clients")
    page.fill("#name", "政务大厅一号窗口")
    page.check("input[name=roles][value=window]")
    page.select_option("#department_id", label="北京市政务服务管理局")
    page.click("form[action='/console/clients'] button[type=submit]")
    secret = page.locator("#new-secret").inner_text().strip()
    assert len(secret) >= 32
    shot(page, "04-client-created")
    page.close()


def test_an_administrator_loads_next_years_calendar_on_a_phone(browser: Any, hub_url: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(f"{hub_url}/console/login")
    page.fill("#client_id", ADMIN_ID)
    page.fill("#client_secret", ADMIN_SECRET)
    page.click("form[action='/console/login'] button[type=submit]")
    page.goto(f"{hub_url}/console/calendar")
    shot(page, "05-calendar-phone")
    page.goto(f"{hub_url}/console/calendar/2027")
    page.fill("#source", "国务院办公厅关于2027年部分节假日安排的通知（测试数据）")
    page.fill("#holidays", "2027-01-01 元旦\n2027-02-30 春节")
    page.click("form[action='/console/calendar/2027'] button[type=submit]")
    assert "第 2 行" in page.locator(".field-error").first.inner_text()
    page.fill("#holidays", "2027-01-01 元旦\n2027-02-08 春节")
    page.fill("#workdays", "2027-02-06 春节调休")
    page.click("form[action='/console/calendar/2027'] button[type=submit]")
    assert "已载入 2027 年日历" in page.locator("[role=status]").inner_text()
    assert "调休上班" in page.content()
    shot(page, "06-calendar-2027-loaded")
    page.close()
