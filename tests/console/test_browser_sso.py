"""End-to-end in a real browser against a real OpenID Provider: a staff member and a holder sign in through
the provider's own login page, do their work, and the audit trail names them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from govhub.app import create_app
from govhub.database import prepare
from ops.audit import AuditRecord
from ops.config import Settings
from ops.db import make_engine
from ops.hubprocess import free_port
from ops.identity.models import Person
from tests.conftest import MASTER_KEY
from tests.console.conftest import ADMIN_ID, ADMIN_SECRET, require_browser, shot
from tests.factories import uscc
from tests.oidc.provider import HOLDER_ID, OTP, PASSWORD, Provider

require_browser()


@pytest.fixture(scope="module")
def sso_hub(tmp_path_factory: pytest.TempPathFactory, oidc_provider: Provider) -> Iterator[tuple[str, Engine]]:
    """A hub served on loopback for the browser, registered at the provider as a relying party."""
    import uvicorn

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client_id, secret = oidc_provider.register(
        redirect_uri=f"{url}/console/oidc/callback", post_logout_redirect_uri=f"{url}/console/login"
    )
    data_dir: Path = tmp_path_factory.mktemp("sso-hub")
    settings = Settings(
        data_dir=data_dir,
        master_key=MASTER_KEY,  # type: ignore[arg-type]
        public_url=url,
        bootstrap_admin_client_id=ADMIN_ID,
        bootstrap_admin_secret=ADMIN_SECRET,  # type: ignore[arg-type]
        run_scheduler=False,
        oidc_issuer=oidc_provider.issuer,
        oidc_client_id=client_id,
        oidc_client_secret=SecretStr(secret),
        oidc_scopes="openid profile govhub_id",
        oidc_timeout_seconds=2.0,
    )
    engine = make_engine(settings.effective_database_url)
    prepare(engine, settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, engine=engine), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield url, engine
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


# The hub answers from a thread of this process, beside the browser and the provider: on a machine busy with
# another suite its first answers (a secret's scrypt, the first queries) can take longer than httpx's 5 s default.
WAIT = 30.0


def provider_login(page: Any, login: str) -> None:
    """Fill the provider's own login page (its form, its fields)."""
    page.wait_for_selector("#login")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_a_staff_member_and_a_holder_sign_in_through_the_provider_work_and_are_named_in_the_audit(
    browser: Any, sso_hub: tuple[str, Engine]
) -> None:
    hub_url, engine = sso_hub
    token = httpx.post(
        f"{hub_url}/auth/token",
        data={"grant_type": "client_credentials", "client_id": ADMIN_ID, "client_secret": ADMIN_SECRET},
        timeout=WAIT,
    ).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    department = httpx.post(
        f"{hub_url}/departments",
        json={"code": uscc(region="110000"), "name": "北京市公安局", "level": "province", "region_code": "110000"},
        headers=admin,
        timeout=WAIT,
    ).json()

    staff = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    staff.goto(f"{hub_url}/console/login")
    assert staff.locator("#sso-staff").is_visible() and "开发环境" in staff.content()
    shot(staff, "sso-01-login")
    staff.click("#sso-staff")
    provider_login(staff, "staff1")
    staff.wait_for_selector("#sign-in-problem")
    assert "尚未分配部门" in staff.inner_text("#sign-in-problem")
    shot(staff, "sso-02-no-department")

    with engine.connect() as connection:
        person_id = connection.scalar(select(Person.id).where(Person.subject == "staff1"))
    placed = httpx.put(
        f"{hub_url}/people/{person_id}/assignment",
        json={"department_id": department["id"], "roles": ["department_admin"]},
        headers=admin,
    )
    assert placed.status_code == 200, placed.text

    staff.goto(f"{hub_url}/console/clients")
    assert "/console/login" in staff.url
    staff.click("#sso-staff")
    staff.wait_for_url(f"{hub_url}/console/clients")  # the provider still knows them: no second login page
    assert "李雷" in staff.inner_text("header")
    staff.fill("#name", "公安局一号窗口")
    staff.check("input[name=roles][value=window]")
    staff.click("form[action='/console/clients'] button[type=submit]")
    assert len(staff.locator("#new-secret").inner_text().strip()) >= 32
    shot(staff, "sso-03-staff-works")

    holder = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    holder.goto(f"{hub_url}/console/login")
    holder.click("#sso-holder")
    provider_login(holder, "holder1")
    holder.wait_for_url(f"{hub_url}/console/")
    holder.goto(f"{hub_url}/console/me/certificates")
    assert "张三" in holder.inner_text("header")
    shot(holder, "sso-04-holder-signed-in")

    with engine.connect() as connection:
        created = connection.execute(select(AuditRecord).where(AuditRecord.action == "client.create")).all()
        holder_sign_in = connection.execute(
            select(AuditRecord).where(AuditRecord.action == "console.sign_in", AuditRecord.actor == HOLDER_ID)
        ).all()
    (record,) = [r for r in created if r.actor == person_id]
    assert record.detail["actor_name"] == "李雷" and record.department_id == department["id"]
    assert holder_sign_in and holder_sign_in[-1].detail["actor_name"] == "张三"

    staff.goto(f"{hub_url}/console/people")
    assert "李雷" in staff.inner_text("table")
    shot(staff, "sso-06-people")

    staff.click("header form[action='/console/logout'] button")  # RP-initiated logout at the provider
    staff.wait_for_selector("button[autofocus], form button")
    shot(staff, "sso-05-provider-logout")
    staff.click("text=Yes, sign me out")
    staff.wait_for_url(f"{hub_url}/console/login")
    staff.click("#sso-staff")
    staff.wait_for_selector("#login")  # the provider's session ended too: it asks for the password again
    staff.context.close()
    holder.context.close()


def test_a_platform_administrator_is_asked_for_a_second_factor_and_steps_up_in_the_browser(
    browser: Any, sso_hub: tuple[str, Engine]
) -> None:
    hub_url, engine = sso_hub
    token = httpx.post(
        f"{hub_url}/auth/token",
        data={"grant_type": "client_credentials", "client_id": ADMIN_ID, "client_secret": ADMIN_SECRET},
        timeout=WAIT,
    ).json()["access_token"]
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{hub_url}/console/departments")
    page.click("#sso-staff")
    provider_login(page, "admin1")
    page.wait_for_selector("#sign-in-problem")
    with engine.connect() as connection:
        person_id = connection.scalar(select(Person.id).where(Person.subject == "admin1"))
    placed = httpx.put(
        f"{hub_url}/people/{person_id}/assignment",
        json={"department_id": None, "roles": ["platform_admin"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert placed.status_code == 200, placed.text

    page.goto(f"{hub_url}/console/departments")
    page.click("#sso-staff")  # the provider remembers them: straight back, signed in with a password only
    page.wait_for_selector("#step-up")
    assert "第二因素" in page.inner_text("#step-up")
    shot(page, "sso-07-step-up")
    page.click("#step-up-button")
    page.wait_for_selector("#otp")  # prompt=login: the provider asks again, this time for the dynamic password
    page.fill("#login", "admin1")
    page.fill("#password", PASSWORD)
    page.fill("#otp", OTP)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub_url}/console/departments")
    assert "部门" in page.inner_text("main")
    shot(page, "sso-08-stepped-up")
    page.context.close()
