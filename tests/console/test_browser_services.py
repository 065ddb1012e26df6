"""In a real browser: the platform registers a service item (政务服务事项) with its materials and publishes it; the
public lists show it; a holder authorises the service centre and its window clerk prefills the service's form,
with the checklist of the materials still to be submitted.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import httpx

from tests.certhub.conftest import ID_CARD
from tests.console.conftest import require_browser, shot, sign_in_as_admin
from tests.console.test_browser_certhub import DESK, Scene, clerk_page, holder_page, scene, show_certificate
from tests.factories import citizen_id

require_browser()

__all__ = ["scene"]  # the certificate hub's browser scene, used here as it is

CODE = "11110000000019713D4000117001"
MATERIALS = [
    {"key": "id_card", "name": "居民身份证", "kind": "certificate", "type_code": ID_CARD},
    {"key": "photo", "name": "近期免冠照片", "kind": "submit"},
]
FIELDS = [
    {"name": "applicant_name", "label": "申请人姓名", "material": "id_card", "field": "name"},
    {"name": "address", "label": "户籍地址", "material": "id_card", "field": "address"},
]


def test_the_platform_publishes_a_service_and_a_window_prefills_it_for_an_authorising_holder(
    browser: Any, hub_url: str, scene: Scene
) -> None:
    admin = browser.new_context(**DESK).new_page()
    sign_in_as_admin(admin, hub_url)
    admin.click("nav >> text=政务服务事项")
    admin.click("#new-service")
    admin.fill("#code", CODE)
    admin.fill("#name", "居住证申领")
    admin.select_option("#department_code", label="北京市政务服务中心")
    admin.fill("#materials", json.dumps(MATERIALS, ensure_ascii=False))
    # a form field named twice is refused at its field, and what was typed stays
    admin.fill("#form_fields", json.dumps([FIELDS[0], FIELDS[0]], ensure_ascii=False))
    admin.click("#register-service")
    assert "duplicate form field name" in admin.inner_text("#form_fields-error")
    assert admin.input_value("#code") == CODE
    shot(admin, "40-platform-service-duplicate-field")
    admin.fill("#form_fields", json.dumps(FIELDS, ensure_ascii=False))
    admin.click("#register-service")
    admin.wait_for_url(f"**/console/services/{CODE}")
    assert "草稿" in admin.inner_text("#version-1")
    admin.click("#publish-1")
    admin.wait_for_selector("#version-1 .state-published")
    assert admin.locator("#publish-1").count() == 0  # published once: nothing more to publish
    shot(admin, "41-platform-service-published")

    public = httpx.get(f"{hub_url}/certhub/service-lists/exempt-materials")  # anyone, no sign-in
    assert [(r["service_code"], r["material"]) for r in public.json()["items"]] == [(CODE, "居民身份证")]
    admin.click("nav >> text=免证办清单")
    assert "居民身份证" in admin.inner_text("#list-exempt-materials")
    assert "暂无" in admin.inner_text("#list-one-id-card")  # a photo is still to be submitted
    shot(admin, "42-platform-public-lists")

    holder_code = citizen_id()
    scene.issue(holder_code)
    clerk = clerk_page(browser, hub_url, scene)
    clerk.click("nav >> text=预填表单")
    clerk.select_option("#service_code", value=CODE)
    clerk.fill("#holder_code", holder_code)
    clerk.fill("#use_cause", "办理居住证，受理号 2026-0816")
    clerk.click("#prefill-button")
    assert "无授权" in clerk.inner_text("#no-authorisation")  # refused, and recorded

    # One authorisation for the whole service, on the holder's phone.
    holder = holder_page(browser, hub_url, holder_code)
    holder.click("text=授权办理事项")
    holder.select_option("#service_code", value=CODE)
    holder.fill("#department_code", scene.window_code)
    holder.fill("#purpose", "办理居住证")
    holder.fill("#valid_until", (date.today() + timedelta(days=30)).isoformat())
    holder.click("#authorise-service")
    assert "已授权：北京市政务服务中心" in holder.inner_text("[role=status]") and "居民身份证" in holder.inner_text(
        "[role=status]"
    )
    shot(holder, "45-holder-authorises-a-service-phone")

    clerk.click("#prefill-button")
    values = clerk.inner_text("#form-values")
    assert "申请人姓名" in values and "张三" in values and "北京市东城区正义路1号" in values and "居民身份证" in values
    checklist = clerk.inner_text("#checklist")
    assert "✓ 居民身份证" in checklist and "免于提交" in checklist
    assert "✗ 近期免冠照片" in checklist and "申请人提交" in checklist
    shot(clerk, "43-window-prefill-checklist")

    holder.click("text=证照使用记录")
    row = holder.inner_text("#accesses")
    assert "预填表单" in row and "受理号 2026-0816" in row and "北京市政务服务中心" in row

    # Another holder, who authorised nothing, shows their ID card at the counter: 一证通办 in one step.
    walk_in = citizen_id()
    card = scene.issue(walk_in)
    phone = holder_page(browser, hub_url, walk_in)
    token = show_certificate(phone, scene, ["name"])
    clerk.fill("#holder_code", walk_in)
    clerk.fill("#presentation", token)
    clerk.click("#fetch-all-button")
    fetched = clerk.inner_text("#fetched-certificates")
    assert "居民身份证" in fetched and card["identifier"] in fetched
    assert "✗ 近期免冠照片" in clerk.inner_text("#checklist")
    assert clerk.input_value("#presentation") == ""  # used once: the box is ready for the next scan
    shot(clerk, "44-window-one-step-with-id-card")
    clerk.fill("#presentation", token)  # the same code again is a replay
    clerk.click("#fetch-all-button")
    assert "replayed" in clerk.inner_text("#presentation-error")
    for page in (admin, clerk, holder, phone):
        page.context.close()
