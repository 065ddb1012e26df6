"""End-to-end in a real browser: a consumer department asks for a conditional resource, the platform accepts the
request and the provider approves fewer fields than asked; the consumer sees the grant. Then the same pages on
a phone."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx

from tests.catalog_registry.helpers import entry_body
from tests.console.conftest import ADMIN_ID, ADMIN_SECRET, require_browser, shot, sign_in_as_admin
from tests.factories import uscc

require_browser()

_round = itertools.count(1)


@dataclass
class Staff:
    client_id: str
    secret: str
    headers: dict[str, str]


@dataclass
class Setup:
    provider: Staff
    consumer: Staff
    entry_id: str
    admin_headers: dict[str, str]


def _token(api: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    response = api.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _staff(api: httpx.Client, admin: dict[str, str], department: str, name: str) -> Staff:
    dept = _ok(
        api.post(
            "/departments",
            json={"code": uscc(region="110000"), "name": department, "level": "city", "region_code": "110000"},
            headers=admin,
        ),
        201,
    )
    client = _ok(
        api.post("/clients", json={"name": name, "roles": ["department_admin"], "department_id": dept["id"]}, headers=admin),
        201,
    )
    return Staff(client["client_id"], client["client_secret"], _token(api, client["client_id"], client["client_secret"]))


def _set_up(hub_url: str) -> Setup:
    """Two departments with their staff, and a conditional catalogue entry published — all through the API."""
    n = next(_round)
    with httpx.Client(base_url=hub_url, timeout=30) as api:
        admin = _token(api, ADMIN_ID, ADMIN_SECRET)
        provider = _staff(api, admin, f"市公安局{n}", "公安局数据专员")
        consumer = _staff(api, admin, f"市民政局{n}", "民政局数据专员")
        body = entry_body(sharing_type="conditional", conditions="仅限社会救助资格审核使用")
        entry = _ok(api.post("/catalog/entries", json=body, headers=provider.headers), 201)
        _ok(api.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers))
        _ok(api.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=admin))
    return Setup(provider, consumer, entry["id"], admin)


def _sign_in(browser: Any, hub_url: str, who: Staff, **viewport: Any) -> Any:
    page = browser.new_page(**(viewport or {"viewport": {"width": 1280, "height": 900}}))
    page.goto(f"{hub_url}/console/login")
    page.fill("#client_id", who.client_id)
    page.fill("#client_secret", who.secret)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url("**/console/")
    return page


def test_an_administrator_accepts_a_request_and_the_provider_approves_it(browser: Any, hub_url: str) -> None:
    setup = _set_up(hub_url)

    # The consumer finds the resource, asks for three items, and is told what is missing first.
    consumer = _sign_in(browser, hub_url, setup.consumer)
    consumer.click("header nav >> text=资源目录")
    consumer.fill("#search-q", "户籍 人口")
    consumer.click("form[role=search] button[type=submit]")
    assert "户籍人口基本信息" in consumer.locator("#results").inner_text()
    shot(consumer, "10-catalogue-search")
    consumer.click("#results >> text=户籍人口基本信息")
    assert "仅限社会救助资格审核使用" in consumer.locator("#conditions").inner_text()
    shot(consumer, "11-catalogue-entry")
    consumer.click("#request-button")
    consumer.click("#file-button")
    assert consumer.locator("#request-items-error").inner_text() == "至少选择 1 项"
    assert consumer.locator("#request-purpose-error").inner_text() == "必填"
    shot(consumer, "12-request-form-errors")
    for item in ("身份证号", "姓名", "户籍地址"):
        consumer.check(f"input[name=items][value={item}]")
    consumer.fill("#request-purpose", "最低生活保障资格审核")
    consumer.fill("#request-scenario", "窗口受理低保申请时核验申请人户籍")
    consumer.fill("#request-legal_basis", "《社会救助暂行办法》第十一条")
    consumer.fill("#request-contact_name", "李四")
    consumer.fill("#request-contact_phone", "010-12345678")
    consumer.click("#file-button")
    consumer.wait_for_url("**/console/exchange/requests/*")
    assert "申请已提交" in consumer.locator("[role=status]").inner_text()
    assert consumer.locator("#request-state").inner_text() == "待审查"
    request_url = consumer.url.split("?")[0]

    # The platform's review queue shows it with its deadline; the administrator accepts it.
    admin = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in_as_admin(admin, hub_url)
    admin.goto(f"{hub_url}/console/exchange/review")
    row = admin.locator("table.requests tbody tr", has_text="户籍人口基本信息")
    assert "剩" in row.inner_text() and "规范性审查" in row.inner_text()
    shot(admin, "13-admin-review-queue")
    row.locator("a").click()
    admin.click("#accept-button")
    assert admin.locator("#request-state").inner_text() == "待提供部门审批"
    assert "已受理" in admin.locator("[role=status]").inner_text()

    # The provider approves two of the three items, for a shorter time.
    provider = _sign_in(browser, hub_url, setup.provider)
    provider.click("header nav >> text=待本部门审批")
    provider.locator("table.requests tbody tr", has_text="户籍人口基本信息").locator("a").click()
    provider.uncheck("#decision-fields input[value=户籍地址]")
    until = (date.today() + timedelta(days=180)).isoformat()
    provider.fill("#decision-valid_until", until)
    provider.fill("#decision-reason", "户籍地址不在本次用途所需范围内")
    shot(provider, "14-provider-decision")
    provider.click("#approve-button")
    assert provider.locator("#request-state").inner_text() == "已授权"

    # The consumer sees the grant: the two items, until the provider's date.
    consumer.goto(request_url)
    granted = consumer.locator("#granted-fields").inner_text()
    assert "身份证号" in granted and "姓名" in granted and "户籍地址" not in granted
    assert until in consumer.locator("#grant-validity").inner_text()
    shot(consumer, "15-consumer-sees-grant")

    admin.goto(f"{hub_url}/console/exchange/report")
    assert "平台管理部门" in admin.locator(".report").inner_text()
    shot(admin, "16-report")
    for page in (consumer, admin, provider):
        page.close()


def test_a_consumer_follows_its_requests_on_a_phone(browser: Any, hub_url: str) -> None:
    setup = _set_up(hub_url)
    with httpx.Client(base_url=hub_url, timeout=30) as api:
        body = {
            "resource_id": setup.entry_id,
            "items": ["身份证号", "姓名"],
            "purpose": "养老金资格认证",
            "scenario": "社区工作人员上门核验",
            "legal_basis": "《社会保险法》第七十三条",
            "valid_until": (date.today() + timedelta(days=90)).isoformat(),
            "contact_name": "王五",
            "contact_phone": "13800000000",
        }
        _ok(api.post("/exchange/requests", json=body, headers=setup.consumer.headers), 201)

    phone = _sign_in(browser, hub_url, setup.consumer, viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.goto(f"{hub_url}/console/exchange/mine")
    fits = "document.documentElement.scrollWidth <= window.innerWidth"
    assert phone.evaluate(fits), "the page is wider than the phone"
    shot(phone, "17-my-requests-phone")
    phone.locator("table.requests a", has_text="户籍人口基本信息").click()
    assert phone.evaluate(fits)
    assert phone.locator("#request-state").inner_text() == "待审查"
    shot(phone, "18-request-phone")
    phone.click("form[action$='/withdraw'] button[type=submit]")
    assert phone.locator("#request-state").inner_text() == "已撤回"
    phone.close()
