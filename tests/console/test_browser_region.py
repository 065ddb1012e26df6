"""数据回流 in a real browser: a provincial entry names its division item, and a county department's grant
on it says which division its rows are kept to."""

from __future__ import annotations

from typing import Any

import httpx

from tests.console.conftest import ADMIN_ID, ADMIN_SECRET, require_browser, shot
from tests.console.test_browser_exchange import Staff, _ok, _sign_in, _token
from tests.factories import uscc

require_browser()

ITEMS = [
    {"name": "身份证号", "data_type": "string", "length": 18, "sensitivity": "internal", "personal": True},
    {"name": "姓名", "data_type": "string", "length": 50, "sensitivity": "internal", "personal": True},
    {"name": "行政区划", "data_type": "string", "length": 6, "sensitivity": "public"},
    {"name": "保障金额", "data_type": "decimal", "sensitivity": "internal"},
]


def _staff(api: httpx.Client, admin: dict[str, str], department: str, region: str, level: str) -> Staff:
    body = {"code": uscc(region=region), "name": department, "level": level, "region_code": region}
    dept = _ok(api.post("/departments", json=body, headers=admin), 201)
    client = _ok(
        api.post(
            "/clients",
            json={"name": department + "专员", "roles": ["department_admin"], "department_id": dept["id"]},
            headers=admin,
        ),
        201,
    )
    return Staff(client["client_id"], client["client_secret"], _token(api, client["client_id"], client["client_secret"]))


def _granted(hub_url: str) -> tuple[Staff, Staff, dict[str, Any], str]:
    with httpx.Client(base_url=hub_url, timeout=30) as api:
        admin = _token(api, ADMIN_ID, ADMIN_SECRET)
        provider = _staff(api, admin, "浙江省民政厅", "330000", "province")
        county = _staff(api, admin, "西湖区民政局", "330106", "county")
        entry = _ok(
            api.post(
                "/catalog/entries",
                json={
                    "code": "DIBAO-ROLL",
                    "name": "低保对象名册",
                    "classification": "主题",
                    "abstract": "全省最低生活保障对象名册，按行政区划回流至市、县民政部门。",
                    "items": ITEMS,
                    "sharing_type": "conditional",
                    "conditions": "仅限社会救助工作",
                    "control_parameters": [{"item": "身份证号", "required": True, "max_rows": 10}],
                    "update_cycle": "每月",
                    "serves_dataset": True,
                    "allows_export": True,
                    "division_item": "行政区划",
                    "region_scoped": True,
                },
                headers=provider.headers,
            ),
            201,
        )
        _ok(api.post(f"/catalog/entries/{entry['id']}/submit", headers=provider.headers))
        _ok(api.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=admin))
        filed = _ok(
            api.post(
                "/exchange/requests",
                json={
                    "resource_id": entry["id"],
                    "items": ["身份证号", "姓名", "行政区划", "保障金额"],
                    "purpose": "低保对象复核",
                    "scenario": "基层核对辖区内低保对象",
                    "legal_basis": "《社会救助暂行办法》第十一条",
                    "valid_until": "2027-06-30",
                    "contact_name": "周",
                    "contact_phone": "0571-12345678",
                },
                headers=county.headers,
            ),
            201,
        )
        _ok(api.post(f"/exchange/requests/{filed['id']}/accept", headers=admin))
        _ok(api.post(f"/exchange/requests/{filed['id']}/decision", json={"approve": True}, headers=provider.headers))
    return provider, county, entry, filed["id"]


def test_the_entry_shows_its_division_item_and_the_county_grant_its_scope(browser: Any, hub_url: str) -> None:
    _provider, county, entry, request_id = _granted(hub_url)
    page = _sign_in(browser, hub_url, county)
    page.goto(f"{hub_url}/console/catalog/entries/{entry['id']}")
    assert "行政区划（每行的行政区划代码，GB/T 2260）" in page.locator("#division-item").inner_text()
    shot(page, "60-entry-division-item")
    page.goto(f"{hub_url}/console/exchange/requests/{request_id}")
    assert "仅本辖区：西湖区（330106）及其下级区划的数据" in page.locator("#grant-scope").inner_text()
    page.locator("#grant").scroll_into_view_if_needed()
    shot(page, "61-grant-region-scope")
    page.close()
