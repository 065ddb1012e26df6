"""In a real browser: a holder shows a certificate (亮证) and a window clerk verifies it; a holder authorises a
department (授权用证) and its clerk fetches the certificate by holder code (一证通办); the holder sees who used it.

The hub is set up through its HTTP API (departments, a seal, the catalogue, an issuing system, a window), as the
departments' own systems would; people then act in the browser.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image

from tests.certhub.conftest import ID_CARD, id_face
from tests.console.conftest import ADMIN_ID, ADMIN_SECRET, require_browser, shot
from tests.factories import citizen_id, uscc
from tests.seal.helpers import seal_body

require_browser()

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "device_scale_factor": 3}
DESK = {"viewport": {"width": 1280, "height": 900}}
LAPTOP = {"viewport": {"width": 1366, "height": 768}}  # the commonest office screen


@dataclass
class Scene:
    """A hub with a 公安局 that issues ID cards and a service centre whose window verifies them."""

    api: httpx.Client
    issuer: dict[str, str]  # Authorization header of the 公安局's system
    window_code: str  # the service centre's 统一社会信用代码
    window_id: str  # the window's client id and secret, to sign in to the console
    window_secret: str

    def issue(self, holder: str, *, render_pdf: bool = False) -> dict[str, Any]:
        body = {
            "type_code": ID_CARD,
            "holder": {"code": holder, "kind": "person", "name": "张三"},
            "face": id_face(holder),
            "render_pdf": render_pdf,
        }
        response = self.api.post("/certhub/certificates", json=body, headers=self.issuer)
        assert response.status_code == 201, response.text
        return dict(response.json())


def _token(api: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    response = api.post("/auth/token", data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def scene(hub_url: str) -> Iterator[Scene]:
    with httpx.Client(base_url=hub_url, timeout=30) as api:
        admin = _token(api, ADMIN_ID, ADMIN_SECRET)
        bureau = _created(
            api.post(
                "/departments",
                json={"code": uscc(region="110000"), "name": "北京市公安局", "level": "province", "region_code": "110000"},
                headers=admin,
            )
        )
        centre = _created(
            api.post(
                "/departments",
                json={"code": uscc(region="110000"), "name": "北京市政务服务中心", "level": "province", "region_code": "110000"},
                headers=admin,
            )
        )
        seal = _created(api.post("/seals", json=seal_body(bureau["id"], name="北京市公安局"), headers=admin))
        bureau_admin = _created(
            api.post(
                "/clients",
                json={"name": "公安局管理员", "roles": ["department_admin"], "department_id": bureau["id"]},
                headers=admin,
            )
        )
        _created(  # the bureau lets the hub seal the PDF copies of the certificates it issues (用印授权)
            api.post(
                f"/seals/{seal['id']}/authorisations",
                json={"subject": "certhub", "subject_kind": "system"},
                headers=_token(api, bureau_admin["client_id"], bureau_admin["client_secret"]),
            )
        )
        _created(api.post("/certhub/types/examples", headers=admin))
        _created(api.patch(f"/certhub/types/{ID_CARD}", json={"issuer_codes": [bureau["code"]]}, headers=admin))
        system = _created(
            api.post(
                "/clients",
                json={"name": "公安制证系统", "roles": ["department_system"], "department_id": bureau["id"]},
                headers=admin,
            )
        )
        window = _created(
            api.post(
                "/clients", json={"name": "政务大厅一号窗口", "roles": ["window"], "department_id": centre["id"]}, headers=admin
            )
        )
        yield Scene(
            api=api,
            issuer=_token(api, system["client_id"], system["client_secret"]),
            window_code=centre["code"],
            window_id=window["client_id"],
            window_secret=window["client_secret"],
        )


def holder_page(browser: Any, hub_url: str, code: str) -> Any:
    """A holder on a phone, signed in with the development identity provider."""
    page = browser.new_context(**PHONE).new_page()
    page.goto(f"{hub_url}/console/login")
    page.fill("#holder_code", code)
    page.fill("#name", "张三")
    page.click("form[action='/console/holder-login'] button[type=submit]")
    page.wait_for_url(f"{hub_url}/console/")
    return page


def clerk_page(browser: Any, hub_url: str, scene: Scene, screen: dict[str, Any] = DESK) -> Any:
    """The window clerk at the counter, signed in with the window's credentials."""
    page = browser.new_context(**screen).new_page()
    page.goto(f"{hub_url}/console/login")
    page.fill("#client_id", scene.window_id)
    page.fill("#client_secret", scene.window_secret)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url(f"{hub_url}/console/")
    return page


def show_certificate(page: Any, scene: Scene, fields: list[str]) -> str:
    """The holder opens 亮证 on their first certificate, picks fields and the window; returns the token shown."""
    page.click("text=我的证照")
    page.click(".cert-card a.button >> text=亮证")
    for name in fields:
        page.check(f"input[name=fields][value={name}]")
    page.fill("#audience", scene.window_code)
    page.click("form button[type=submit] >> text=生成亮证二维码")
    page.wait_for_selector("#qr svg")
    return str(page.input_value("#token-text"))


def scan_like_a_usb_scanner(page: Any, hub_url: str, token: str) -> None:
    """The scanner types into the focused paste box and ends with Enter."""
    page.goto(f"{hub_url}/console/verify")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.insert_text(token)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_a_window_clerk_verifies_a_valid_and_then_a_revoked_certificate(browser: Any, hub_url: str, scene: Scene) -> None:
    holder_code = citizen_id()
    certificate = scene.issue(holder_code)
    holder = holder_page(browser, hub_url, holder_code)
    holder.click("text=我的证照")
    assert "居民身份证" in holder.inner_text(".cert-card")
    shot(holder, "20-holder-certificates-phone")

    token = show_certificate(holder, scene, ["CZZT", "name", "address"])
    qr_box = holder.locator("#qr").bounding_box()
    assert qr_box is not None and qr_box["width"] >= 340  # the code fills the phone's width
    picture = Image.open(io.BytesIO(holder.locator("#qr").screenshot()))
    (read,) = zxingcpp.read_barcodes(picture)
    assert read.text == token  # what the phone displays is what the window will scan
    assert "后失效" in holder.inner_text("#countdown")
    shot(holder, "21-holder-qr-phone")

    clerk = clerk_page(browser, hub_url, scene)
    scan_like_a_usb_scanner(clerk, hub_url, token)
    verdict = clerk.inner_text("#verdict")
    assert "有效" in verdict and "无效" not in verdict and certificate["identifier"] in verdict
    disclosed = clerk.inner_text("#disclosed")
    assert "姓名" in disclosed and "张三" in disclosed and "住址" in disclosed and "北京市东城区正义路1号" in disclosed
    assert "出生" not in disclosed
    assert clerk.evaluate("document.activeElement.id") == "token"  # ready for the next holder
    shot(clerk, "22-clerk-verify-valid")

    # The holder shows it again; before the clerk scans, the issuer revokes the certificate (注销).
    holder.goto(f"{hub_url}/console/me/certificates")
    second = show_certificate(holder, scene, ["name"])
    revoked = scene.api.post(
        f"/certhub/certificates/{certificate['identifier']}/revoke", json={"reason": "证件遗失，已补领新证"}, headers=scene.issuer
    )
    assert revoked.status_code == 200, revoked.text
    scan_like_a_usb_scanner(clerk, hub_url, second)
    verdict = clerk.inner_text("#verdict")
    assert "无效" in verdict and "已注销" in verdict
    shot(clerk, "23-clerk-verify-revoked")

    # Garbage pasted by mistake is explained next to the box.
    clerk.fill("#token", "这不是亮证码")
    clerk.click("#verify-form button[type=submit]")
    assert "无法识别" in clerk.inner_text("#token-error")
    shot(clerk, "24-clerk-verify-garbage")

    holder.goto(f"{hub_url}/console/me/certificates")
    assert "已注销" in holder.inner_text(".cert-card") and holder.locator(".cert-card a.button").count() == 0  # nothing to show
    holder.context.close()
    clerk.context.close()


def test_a_holder_authorises_a_department_whose_clerk_then_fetches_the_certificate(
    browser: Any, hub_url: str, scene: Scene
) -> None:
    holder_code = citizen_id()
    certificate = scene.issue(holder_code, render_pdf=True)
    clerk = clerk_page(browser, hub_url, scene)

    # Before any authorisation the clerk is told plainly that none exists.
    clerk.click("text=一证通办")
    clerk.fill("#holder_code", holder_code)
    clerk.select_option("#type_code", label="居民身份证")
    clerk.fill("#use_cause", "办理居住证，受理号 2026-0815")
    clerk.click("form[action='/console/verify/fetch'] button[type=submit]")
    assert "无授权" in clerk.inner_text("#no-authorisation")
    shot(clerk, "25-clerk-fetch-no-authorisation")

    holder = holder_page(browser, hub_url, holder_code)
    holder.click("text=我的证照")
    holder.click(".cert-card a.button >> text=授权部门使用")
    assert holder.input_value("#type_code") == ID_CARD  # the certificate's type is chosen already
    holder.fill("#department_code", scene.window_code)
    holder.fill("#purpose", "办理居住证")
    holder.fill("#valid_until", (date.today() + timedelta(days=30)).isoformat())
    holder.click("form[action='/console/me/authorisations'] button[type=submit]")
    assert "已授权：北京市政务服务中心" in holder.inner_text("[role=status]")
    listed = holder.inner_text("#authorisations")
    assert "北京市政务服务中心" in listed and "居民身份证" in listed and "有效" in listed
    shot(holder, "26-holder-authorisations-phone")

    clerk.fill("#use_cause", "")
    clerk.click("form[action='/console/verify/fetch'] button[type=submit]")
    assert "required" in clerk.inner_text("#use_cause-error")
    assert clerk.input_value("#holder_code") == holder_code
    clerk.fill("#use_cause", "办理居住证，受理号 2026-0815")
    clerk.click("form[action='/console/verify/fetch'] button[type=submit]")
    fetched = clerk.inner_text("#fetched")
    assert certificate["identifier"] in fetched and "北京市东城区正义路1号" in fetched and "有效" in fetched
    shot(clerk, "27-clerk-fetch")

    holder.click("text=证照使用记录")
    trail = holder.inner_text("#accesses")
    assert "北京市政务服务中心" in trail and "办理居住证，受理号 2026-0815" in trail and "调取" in trail
    shot(holder, "28-holder-accesses-phone")
    holder.click("text=数据使用记录")
    assert "还没有部门查询过" in holder.inner_text("#data-accesses")
    shot(holder, "29-holder-data-accesses-phone")

    # The sealed PDF copy verifies at the window; a text file does not.
    pdf = scene.api.get(
        f"/certhub/certificates/{certificate['identifier']}/pdf", params={"use_cause": "打印留档"}, headers=scene.issuer
    ).content
    clerk.click("text=验证 PDF")
    clerk.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    clerk.click("form[action='/console/verify/pdf'] button[type=submit]")
    assert "PDF" in clerk.inner_text("#file-error")
    clerk.set_input_files("#file", files=[{"name": "居民身份证.pdf", "mimeType": "application/pdf", "buffer": pdf}])
    clerk.click("form[action='/console/verify/pdf'] button[type=submit]")
    assert "有效" in clerk.inner_text("#pdf-verdict") and "北京市公安局" in clerk.inner_text("#pdf-verdict")
    shot(clerk, "30-clerk-verify-pdf")

    # Withdrawn: the next fetch is refused.
    holder.click("text=授权用证")
    holder.click("#authorisations button[type=submit]")
    assert "已撤回" in holder.inner_text("#authorisations")
    clerk.click("text=一证通办")
    clerk.fill("#holder_code", holder_code)
    clerk.fill("#use_cause", "办理居住证")
    clerk.click("form[action='/console/verify/fetch'] button[type=submit]")
    assert "无授权" in clerk.inner_text("#no-authorisation")
    holder.context.close()
    clerk.context.close()


def test_the_pdf_verdict_reads_in_chinese_and_fits_a_1366_pixel_screen(browser: Any, hub_url: str, scene: Scene) -> None:
    certificate = scene.issue(citizen_id(), render_pdf=True)
    pdf = scene.api.get(
        f"/certhub/certificates/{certificate['identifier']}/pdf", params={"use_cause": "打印留档"}, headers=scene.issuer
    ).content
    clerk = clerk_page(browser, hub_url, scene, LAPTOP)
    clerk.click("text=验证 PDF")
    clerk.set_input_files("#file", files=[{"name": "居民身份证.pdf", "mimeType": "application/pdf", "buffer": pdf}])
    clerk.click("form[action='/console/verify/pdf'] button[type=submit]")
    verdict = clerk.inner_text("#pdf-verdict")
    assert "有效" in verdict and "（北京时间）" in verdict and "the " not in verdict
    # Nothing wider than the screen: no sideways scrolling, every table and its explanation column in view.
    assert clerk.evaluate("document.documentElement.scrollWidth") <= 1366
    rights = clerk.evaluate("[...document.querySelectorAll('table, td')].map(e => e.getBoundingClientRect().right)")
    assert rights and max(rights) <= 1366
    assert clerk.locator("#pdf-verdict td.optional").first.is_visible()
    shot(clerk, "31-clerk-verify-pdf-1366")
    clerk.context.close()
