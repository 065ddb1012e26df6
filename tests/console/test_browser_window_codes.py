"""In a real browser, at the window: a holder shows a short 亮证码 that the clerk redeems, rates the service as
poor, the service centre answers the rectification item and the holder reads the reply; anyone opens the public
验真 page from the QR code on a printed copy, without signing in."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import zxingcpp
from PIL import Image

from tests.certhub.test_window_codes import _qr_of_pdf
from tests.console.conftest import ADMIN_ID, ADMIN_SECRET, require_browser, shot, sign_in_as_admin
from tests.console.test_browser_certhub import PHONE, Scene, clerk_page, holder_page, scene
from tests.factories import citizen_id

require_browser()

__all__ = ["scene"]  # the fixture, shared with the other window tests


def _token(api: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    response = api.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _centre_admin(scene: Scene) -> tuple[str, str]:
    """A department administrator of the service centre (who answers its rectification items)."""
    admin = _token(scene.api, ADMIN_ID, ADMIN_SECRET)
    (centre,) = scene.api.get(f"/departments?code={scene.window_code}", headers=admin).json()["items"]
    made = scene.api.post(
        "/clients", json={"name": "服务中心管理员", "roles": ["department_admin"], "department_id": centre["id"]}, headers=admin
    )
    assert made.status_code == 201, made.text
    return made.json()["client_id"], made.json()["client_secret"]


def _sign_in(browser: Any, hub_url: str, client_id: str, secret: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{hub_url}/console/login")
    page.fill("#client_id", client_id)
    page.fill("#client_secret", secret)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url(f"{hub_url}/console/")
    return page


def test_a_short_code_at_the_window_then_a_poor_rating_answered_by_the_centre(browser: Any, hub_url: str, scene: Scene) -> None:
    holder_code = citizen_id()
    certificate = scene.issue(holder_code)
    clerk = clerk_page(browser, hub_url, scene)
    clerk.goto(f"{hub_url}/console/verify")
    nonce = clerk.inner_text("#window-nonce code").strip()

    holder = holder_page(browser, hub_url, holder_code)
    holder.click("text=我的证照")
    holder.click(".cert-card a.button >> text=亮证")
    holder.check("input[name=fields][value=name]")
    holder.fill("#audience", scene.window_code)
    holder.fill("#nonce", nonce)
    holder.click("#make-short")
    holder.wait_for_selector("#qr svg")
    code = holder.inner_text("#short-code strong").strip()
    svg = holder.inner_html("#qr")
    modules = int(re.search(r'viewBox="0 0 (\d+) ', svg).group(1)) - 8  # type: ignore[union-attr]
    assert (modules - 17) // 4 <= 10, modules  # QR version 10 or lower
    (read,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(holder.locator("#qr").screenshot())))
    assert read.text == code
    shot(holder, "60-holder-short-code-phone")

    clerk.keyboard.insert_text(code)
    with clerk.expect_navigation():
        clerk.keyboard.press("Enter")
    verdict = clerk.inner_text("#verdict")
    assert "有效" in verdict and "无效" not in verdict and certificate["identifier"] in verdict
    shot(clerk, "61-clerk-redeems-short-code")
    # The same code again is refused, and said next to the box.
    clerk.fill("#token", code)
    clerk.click("#verify-form button[type=submit]")
    assert "already redeemed" in clerk.inner_text("#token-error")

    # The holder rates the verification as poor.
    holder.click("text=我的评价")
    holder.click("#ratable button >> text=评价")
    holder.wait_for_selector("input[name=score]")
    holder.check("input[name=score][value='2']")
    holder.fill("#comment", "排队四十分钟，窗口只开了一个")
    shot(holder, "62-holder-rates-phone")
    holder.click("form button[type=submit] >> text=提交评价")
    holder.wait_for_url("**/console/me/ratings?rated=1")
    assert "整改中" in holder.inner_text("#ratings") and "不满意" in holder.inner_text("#ratings")
    assert "没有待评价的服务" in holder.inner_text("#ratable")

    # The platform sees it in the queue; the centre's administrator answers it.
    platform = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in_as_admin(platform, hub_url)
    platform.goto(f"{hub_url}/console/ratings/rectifications")
    queue = platform.inner_text("#rectifications")
    assert "北京市政务服务中心" in queue and "排队四十分钟" in queue and "整改中" in queue
    shot(platform, "63-platform-rectification-queue")

    staff = _sign_in(browser, hub_url, *_centre_admin(scene))
    staff.click("text=差评整改")
    staff.fill("#rectifications textarea", "已增开两个窗口并电话致歉。")
    staff.click("#rectifications button >> text=答复")
    staff.wait_for_url("**/console/ratings/rectifications?replied=1")
    assert "按时答复" in staff.inner_text("#rectifications")
    shot(staff, "64-centre-replied")

    # The platform's report shows the centre's rectification and reply rates beside its on-time rate.
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    platform.goto(f"{hub_url}/console/exchange/report?start={today - timedelta(days=1)}&end={today}")
    rates = platform.inner_text(".report")
    assert "北京市政务服务中心" in rates and "整改率 100.0%" in rates and "按时回复率 100.0%" in rates
    shot(platform, "67-platform-report-rectification-rates")

    holder.goto(f"{hub_url}/console/me/ratings")
    assert "已增开两个窗口并电话致歉。" in holder.inner_text("#ratings")
    shot(holder, "65-holder-reads-reply-phone")
    for page in (holder, clerk, platform, staff):
        page.context.close()


def test_anyone_opens_the_public_check_from_a_printed_copy(browser: Any, hub_url: str, scene: Scene) -> None:
    holder_code = citizen_id()
    certificate = scene.issue(holder_code, render_pdf=True)
    pdf = scene.api.get(f"/certhub/certificates/{certificate['identifier']}/pdf?use_cause=打印", headers=scene.issuer)
    assert pdf.status_code == 200, pdf.text
    link = _qr_of_pdf(pdf.content)
    path = link.removeprefix("http://127.0.0.1")
    assert path.startswith("/console/public/verify/")
    page = browser.new_context(**PHONE).new_page()  # no sign-in
    page.goto(f"{hub_url}{path}")
    text = page.inner_text("#verdict")
    assert "有效" in text and "居民身份证" in text and "北京市公安局" in text
    assert holder_code not in page.content() and "张三" not in text  # the type makes nothing personal public
    shot(page, "66-public-check-phone")
    page.context.close()
