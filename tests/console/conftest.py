"""Browser fixtures for the console tests: Debian's Chromium driven by Playwright, a hub served on loopback.

Screenshots of the main pages are kept under test-artifacts/screenshots/ (or $GOVHUB_SCREENSHOT_DIR).
Browser test modules call ``require_browser()`` first: without Playwright or Chromium they skip and say why.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from govhub.app import create_app
from govhub.database import prepare
from ops.config import Settings
from ops.db import make_engine
from ops.hubprocess import free_port
from tests.conftest import MASTER_KEY

CHROMIUM = os.environ.get("GOVHUB_CHROMIUM", "/usr/bin/chromium")
ADMIN_ID, ADMIN_SECRET = "gh_admin_browser", "browser-test-secret-0123456789"
SHOTS = Path(os.environ.get("GOVHUB_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"))


def require_browser() -> ModuleType:
    """Playwright's sync API, or skip the calling module with the reason."""
    api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(
            f"Chromium is not installed at {CHROMIUM} (apt-get install chromium); browser tests skipped", allow_module_level=True
        )
    return api


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
    sync_api = require_browser()
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


def sign_in_as_admin(page: Any, hub_url: str) -> None:
    """Sign in through the form as the bootstrap administrator."""
    page.goto(f"{hub_url}/console/login")
    page.fill("#client_id", ADMIN_ID)
    page.fill("#client_secret", ADMIN_SECRET)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url("**/console/**")


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[Any]:
    """A real OpenID Provider (oidc-provider, npm) on loopback, one for the whole run (tests/oidc)."""
    from tests.oidc.provider import start_provider, stop_provider

    provider = start_provider()
    yield provider
    stop_provider(provider)
