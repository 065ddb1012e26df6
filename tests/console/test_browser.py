"""End-to-end in a real browser: an administrator sets up departments, clients and the calendar."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import ADMIN_ID, ADMIN_SECRET, require_browser, shot
from tests.factories import uscc

require_browser()


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
