"""The window clerk's and the holder's console pages: verify at the counter, 一证通办, 亮证, 授权用证, the trails."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from certhub.models import Access
from ops import audit
from tests.catalog_registry.helpers import publish, upload
from tests.certhub.conftest import ID_CARD, World, world
from tests.conftest import Actor
from tests.console.test_pages import _csrf, sign_in
from tests.factories import citizen_id, corrupt_check

__all__ = ["world"]  # the certificate hub's scenario fixture, used here as it is


def _person(world: World) -> TestClient:
    """Another browser: its own cookies."""
    return TestClient(world.hub.app, raise_server_exceptions=False)


def clerk(world: World, window: Actor | None = None) -> tuple[TestClient, str]:
    """A window clerk signed in to the console with the window's client credentials."""
    window = window or world.window
    browser = _person(world)
    assert window.client is not None
    return browser, sign_in(browser, window.client.client_id, window.extra["secret"])


def holder_signed_in(world: World, code: str, name: str = "张三") -> tuple[TestClient, str]:
    browser = _person(world)
    login = browser.get("/console/login")
    home = browser.post(
        "/console/holder-login",
        data={"csrf": _csrf(login.text), "holder_code": code, "holder_kind": "person", "name": name},
        follow_redirects=True,
    )
    assert home.status_code == 200, home.text
    return browser, _csrf(home.text)


def verify(browser: TestClient, csrf: str, token: str) -> Any:
    return browser.post("/console/verify", data={"csrf": csrf, "token": token})


class _ElementText(HTMLParser):
    VOID = frozenset({"input", "br", "img", "meta", "link", "hr", "source"})

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id, self.depth, self.found, self.parts = element_id, 0, False, list[str]()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id and not self.found:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def text_of(response: Any, element_id: str) -> str:
    """The text inside the element with this id, as a person reads it."""
    parser = _ElementText(element_id)
    parser.feed(response.text)
    assert parser.found, f"no element #{element_id} on the page"
    return " ".join(" ".join(parser.parts).split())


def decode_qr(svg: str) -> str:
    """Read the QR code of an SVG picture back, with an independent decoder (zxing-cpp)."""
    size = int(re.search(r'viewBox="0 0 (\d+) \1"', svg).group(1))  # type: ignore[union-attr]
    scale = 4
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y, n in re.findall(r"M(\d+) (\d+)h(\d+)", svg):
        x0, y0 = int(x) * scale, int(y) * scale
        draw.rectangle([x0, y0, x0 + int(n) * scale - 1, y0 + scale - 1], fill=0)
    (found,) = zxingcpp.read_barcodes(image)
    return str(found.text)


# ---- window: verify a presentation ------------------------------------------------------------------------


def test_a_clerk_verifies_a_presentation_and_reads_the_disclosed_fields_in_chinese(world: World) -> None:
    holder_code = citizen_id()
    world.issue(holder_code)
    (certificate,) = world.client.get("/certhub/me/certificates", headers=world.hub.holder(holder_code).headers).json()["items"]
    shown = world.show(world.hub.holder(holder_code), certificate["identifier"], fields=["CZZT", "name", "address"])
    browser, csrf = clerk(world)

    form = browser.get("/console/verify")
    assert form.status_code == 200 and re.search(r'<textarea id="token"[^>]*autofocus', form.text)
    result = verify(browser, csrf, shown["token"])
    assert result.status_code == 200
    verdict = text_of(result, "verdict")
    assert "有效" in verdict and "居民身份证" in verdict and certificate["identifier"] in verdict
    disclosed = text_of(result, "disclosed")
    assert "持证主体" in disclosed and "姓名" in disclosed and "住址" in disclosed and "北京市东城区正义路1号" in disclosed
    assert "出生" not in disclosed and holder_code not in result.text  # only what the holder chose to show

    again = verify(browser, csrf, shown["token"])
    assert "无效" in text_of(again, "verdict") and "重放" in text_of(again, "verdict")


def test_a_certificate_revoked_after_it_was_shown_is_invalid_and_says_so(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    token = world.show(world.hub.holder(holder_code), cert["identifier"], fields=["name"])["token"]
    revoked = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/revoke", json={"reason": "证件遗失补办"}, headers=world.issuer.headers
    )
    assert revoked.status_code == 200, revoked.text
    browser, csrf = clerk(world)
    result = verify(browser, csrf, token)
    verdict = text_of(result, "verdict")
    assert result.status_code == 200 and "无效" in verdict and "已注销" in verdict


def test_garbage_tampered_or_empty_input_is_explained_next_to_the_paste_box(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    token = world.show(world.hub.holder(holder_code), cert["identifier"], fields=["name"])["token"]
    browser, csrf = clerk(world)

    empty = verify(browser, csrf, "   ")
    assert empty.status_code == 422 and "请扫描或粘贴" in text_of(empty, "token-error")
    garbage = verify(browser, csrf, "https://example.com/not-a-certificate")
    assert garbage.status_code == 422 and "无法识别" in text_of(garbage, "token-error")
    assert "无效" in text_of(garbage, "verdict")
    issuer_jwt, disclosure, rest = token.split("~", 2)
    altered = disclosure[:-2] + ("A" if disclosure[-2] != "A" else "B") + disclosure[-1]
    tampered = verify(browser, csrf, f"{issuer_jwt}~{altered}~{rest}")
    assert tampered.status_code == 422
    assert "篡改" in text_of(tampered, "token-error") or "无法识别" in text_of(tampered, "token-error")


def test_a_presentation_made_for_another_department_is_refused_at_this_window(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    assert world.other_window.department is not None
    token = world.show(
        world.hub.holder(holder_code), cert["identifier"], fields=["name"], audience=world.other_window.department.code
    )["token"]
    browser, csrf = clerk(world)
    verdict = text_of(verify(browser, csrf, token), "verdict")
    assert "无效" in verdict and "其他部门" in verdict


# ---- window: 一证通办 ---------------------------------------------------------------------------------------


def _fetch(browser: TestClient, csrf: str, holder_code: str, cause: str = "办理居住证需核验身份") -> Any:
    data = {"csrf": csrf, "holder_code": holder_code, "type_code": ID_CARD, "use_cause": cause}
    return browser.post("/console/verify/fetch", data=data)


def test_without_an_authorisation_the_page_says_plainly_that_none_exists(world: World) -> None:
    holder_code = citizen_id()
    world.issue(holder_code)
    browser, csrf = clerk(world)
    refused = _fetch(browser, csrf, holder_code)
    assert refused.status_code == 403
    assert "无授权" in text_of(refused, "no-authorisation") and "居民身份证" in text_of(refused, "no-authorisation")
    assert "无授权" in text_of(refused, "holder_code-error")
    assert 'value="办理居住证需核验身份"' not in refused.text and "办理居住证需核验身份" in refused.text  # kept
    with world.hub.factory() as db:
        denied = [r for r in audit.records_for(db, object_type="certificate_type") if r.outcome == "denied"]
        assert denied and denied[0].purpose == "办理居住证需核验身份"


def test_a_missing_or_too_long_use_cause_and_a_bad_check_digit_are_shown_at_their_fields(world: World) -> None:
    holder_code = citizen_id()
    world.issue(holder_code)
    browser, csrf = clerk(world)
    empty = _fetch(browser, csrf, holder_code, "")
    assert empty.status_code == 422 and "required" in text_of(empty, "use_cause-error")
    assert "useCause" not in empty.text  # one spelling, as in the API: the form field is use_cause
    too_long = _fetch(browser, csrf, holder_code, "因" * 201)
    assert too_long.status_code == 422 and "at most 200" in text_of(too_long, "use_cause-error")
    assert "因" * 201 in too_long.text  # what was typed is kept
    bad = _fetch(browser, csrf, corrupt_check(holder_code))
    assert bad.status_code == 422 and "GB 11643" in text_of(bad, "holder_code-error")


# ---- holder: certificates and 亮证 -------------------------------------------------------------------------


def test_a_holder_shows_chosen_fields_as_a_qr_code_that_the_window_accepts(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    browser, csrf = holder_signed_in(world, holder_code)
    mine = browser.get("/console/me/certificates")
    url = f"/console/me/certificates/{cert['identifier']}/show"
    assert mine.status_code == 200 and "居民身份证" in mine.text and url in mine.text
    form = browser.get(url)
    assert "住址" in form.text and "签发机关" in form.text and "持证主体" in form.text
    assert world.window.department is not None
    audience = world.window.department.code

    none_chosen = browser.post(url, data={"csrf": csrf, "audience": audience, "ttl_seconds": "300"})
    assert none_chosen.status_code == 422 and "至少选择一项" in text_of(none_chosen, "fields-error")
    bad_audience = browser.post(url, data={"csrf": csrf, "fields": ["name"], "audience": corrupt_check(audience)})
    assert bad_audience.status_code == 422 and "GB 32100" in text_of(bad_audience, "audience-error")

    shown = browser.post(url, data={"csrf": csrf, "fields": ["name", "address"], "audience": audience, "ttl_seconds": "120"})
    assert shown.status_code == 200
    token = html.unescape(re.search(r'<textarea id="token-text"[^>]*>(.*?)</textarea>', shown.text, re.S).group(1))  # type: ignore[union-attr]
    svg = re.search(r'<div class="qr" id="qr">(<svg.*?</svg>)</div>', shown.text, re.S)
    assert svg and decode_qr(svg.group(1)) == token
    assert "北京市政务服务中心" in text_of(shown, "presentation") and 'data-seconds="120"' in shown.text

    result = world.verify(token)
    assert result["valid"] is True and set(result["disclosed"]) == {"name", "address"}


def test_too_many_fields_for_one_qr_code_are_refused_and_nothing_is_recorded(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    browser, csrf = holder_signed_in(world, holder_code)
    url = f"/console/me/certificates/{cert['identifier']}/show"
    everything = re.findall(r'name="fields" value="([^"]+)"', browser.get(url).text)
    assert len(everything) == 13
    assert world.window.department is not None
    refused = browser.post(url, data={"csrf": csrf, "fields": everything, "audience": world.window.department.code})
    assert refused.status_code == 422 and "放不进一个二维码" in text_of(refused, "fields-error")
    assert re.search(r'value="address" checked', refused.text)  # the choice is kept, to be trimmed
    with world.hub.factory() as db:
        assert not [r for r in audit.records_for(db, object_id=cert["identifier"]) if r.action == "certificate.show"]


def test_holder_pages_are_for_holders_and_window_pages_for_windows(world: World) -> None:
    holder_code = citizen_id()
    holder, _ = holder_signed_in(world, holder_code)
    assert holder.get("/console/verify").status_code == 403
    home = holder.get("/console/").text
    assert "/console/me/certificates" in home and "/console/verify/fetch" not in home
    window, _ = clerk(world)
    assert window.get("/console/me/certificates").status_code == 403
    home = window.get("/console/").text
    assert "/console/verify/fetch" in home and "/console/me/authorisations" not in home
    other = world.issue(citizen_id())
    assert holder.get(f"/console/me/certificates/{other['identifier']}/show").status_code == 404


# ---- holder: 授权用证 and the trails ---------------------------------------------------------------------


def test_a_holder_authorises_a_department_which_then_fetches_and_the_holder_sees_why(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code)
    holder, csrf = holder_signed_in(world, holder_code)
    assert world.window.department is not None
    department = world.window.department.code
    until = (date.today() + timedelta(days=30)).isoformat()
    body = {"csrf": csrf, "type_code": ID_CARD, "department_code": department, "purpose": "办理居住证", "valid_until": until}

    unknown = holder.post("/console/me/authorisations", data={**body, "department_code": "11110000MB0000000X"})
    assert unknown.status_code == 422 and 'id="department_code-error"' in unknown.text
    assert 'value="办理居住证"' in unknown.text
    past = holder.post("/console/me/authorisations", data={**body, "valid_until": "2020-01-01"})
    assert past.status_code == 422 and "future" in text_of(past, "valid_until-error")
    no_purpose = holder.post("/console/me/authorisations", data={**body, "purpose": ""})
    assert no_purpose.status_code == 422 and 'id="purpose-error"' in no_purpose.text

    granted = holder.post("/console/me/authorisations", data=body)
    assert granted.status_code == 200 and "已授权" in granted.text
    listed = text_of(granted, "authorisations")
    assert "北京市政务服务中心" in listed and "居民身份证" in listed and "有效" in listed

    window, window_csrf = clerk(world)
    fetched = _fetch(window, window_csrf, holder_code, "办理居住证（受理号 2026-0815）")
    assert fetched.status_code == 200, fetched.text
    assert cert["identifier"] in text_of(fetched, "fetched") and "北京市东城区正义路1号" in text_of(fetched, "fetched-face")
    assert "住址" in text_of(fetched, "fetched-face")

    trail = holder.get("/console/me/accesses")
    accesses = text_of(trail, "accesses")
    assert "北京市政务服务中心" in accesses and "办理居住证（受理号 2026-0815）" in accesses and "调取" in accesses

    (authorisation_id,) = re.findall(r"/console/me/authorisations/([\w-]+)/withdraw", granted.text)
    withdrawn = holder.post(f"/console/me/authorisations/{authorisation_id}/withdraw", data={"csrf": csrf})
    assert withdrawn.status_code == 200 and "已撤回" in text_of(withdrawn, "authorisations")
    assert _fetch(window, window_csrf, holder_code).status_code == 403
    again = holder.post(f"/console/me/authorisations/{authorisation_id}/withdraw", data={"csrf": csrf})
    assert again.status_code == 409 and "already withdrawn" in again.text


def test_a_holder_sees_which_departments_queried_records_about_them(world: World) -> None:
    hub, client = world.hub, world.client
    provider = hub.system(hub.department("市公安局"), "户籍系统")
    consumer = hub.system(hub.department("市民政局"), "救助系统")
    person = citizen_id()
    entry = publish(client, provider, hub.admin, sharing_type="conditional", conditions="仅限社会救助审核")
    rows = f"身份证号,姓名,户籍地址,出生日期\n{person},李四,北京市,1990-03-07\n"
    assert upload(client, provider, entry["id"], rows).status_code == 201
    request = {
        "resource_id": entry["id"],
        "items": ["身份证号", "姓名"],
        "purpose": "低保资格审核",
        "scenario": "窗口受理低保申请时核验户籍",
        "legal_basis": "《社会救助暂行办法》第十一条",
        "valid_until": (date.today() + timedelta(days=60)).isoformat(),
        "contact_name": "李四",
        "contact_phone": "010-12345678",
    }
    filed = client.post("/exchange/requests", json=request, headers=consumer.headers).json()
    client.post(f"/exchange/requests/{filed['id']}/accept", headers=hub.admin.headers)
    grant_id = client.post(f"/exchange/requests/{filed['id']}/decision", json={"approve": True}, headers=provider.headers).json()[
        "grant_id"
    ]
    params = {"params": {"身份证号": person}}
    looked_up = client.post(f"/exchange/grants/{grant_id}/lookup", json=params, headers=consumer.headers)
    assert looked_up.status_code == 200, looked_up.text

    browser, _ = holder_signed_in(world, person, name="李四")
    trail = text_of(browser.get("/console/me/data-accesses"), "data-accesses")
    assert "市民政局" in trail and "户籍人口基本信息" in trail and "低保资格审核" in trail
    stranger, _ = holder_signed_in(world, citizen_id())
    assert "还没有部门查询过" in text_of(stranger.get("/console/me/data-accesses"), "data-accesses")


# ---- window: a sealed PDF --------------------------------------------------------------------------------


def test_a_clerk_verifies_a_sealed_pdf_and_a_non_pdf_is_refused_at_the_field(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code, render_pdf=True)
    pdf = world.client.get(
        f"/certhub/certificates/{cert['identifier']}/pdf", params={"useCause": "打印留档"}, headers=world.issuer.headers
    ).content
    browser, csrf = clerk(world)
    checked = browser.post("/console/verify/pdf", data={"csrf": csrf}, files={"file": ("证照.pdf", pdf, "application/pdf")})
    assert checked.status_code == 200
    verdict = text_of(checked, "pdf-verdict")
    assert "有效" in verdict and "北京市公安局" in verdict and "文档完整性" in verdict

    altered = pdf.replace(b"/Author", b"/Authox", 1)
    broken = browser.post("/console/verify/pdf", data={"csrf": csrf}, files={"file": ("证照.pdf", altered, "application/pdf")})
    assert broken.status_code == 200
    assert "无效" in text_of(broken, "pdf-verdict") and "文档完整性 未通过" in text_of(broken, "pdf-verdict")

    text = browser.post("/console/verify/pdf", data={"csrf": csrf}, files={"file": ("notes.txt", b"hello", "text/plain")})
    assert text.status_code == 422 and "不是 PDF 文件" in text_of(text, "file-error")
    nothing = browser.post("/console/verify/pdf", data={"csrf": csrf})
    assert nothing.status_code == 422 and "请选择" in text_of(nothing, "file-error")


def test_the_pdf_verdict_speaks_chinese_and_gives_its_times_in_beijing_time(world: World) -> None:
    cert = world.issue(citizen_id(), render_pdf=True)
    pdf = world.client.get(
        f"/certhub/certificates/{cert['identifier']}/pdf", params={"useCause": "打印留档"}, headers=world.issuer.headers
    ).content
    browser, csrf = clerk(world)
    for document in (pdf, pdf.replace(b"/Author", b"/Authox", 1)):  # a sound and an altered file
        checked = browser.post(
            "/console/verify/pdf", data={"csrf": csrf}, files={"file": ("证照.pdf", document, "application/pdf")}
        )
        verdict = text_of(checked, "pdf-verdict")
        assert set(re.findall(r"[A-Za-z]{2,}", verdict)) <= {"PDF", "pdf"}, verdict  # no English sentence
        assert "UTC" not in verdict and not re.search(r"\d{2}:\d{2}:\d{2}Z", verdict)
        assert re.search(r"签署时间：\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}（北京时间）", verdict), verdict
    assert "盖章后文档被改动过" in verdict


def test_the_fetched_pdf_is_downloaded_with_the_use_cause_on_record(world: World) -> None:
    holder_code = citizen_id()
    cert = world.issue(holder_code, render_pdf=True)
    browser, csrf = clerk(world)
    world.client.post(
        "/certhub/me/authorisations",
        json={
            "type_code": ID_CARD,
            "department_code": world.window.department.code,  # type: ignore[union-attr]
            "purpose": "办理居住证",
            "valid_until": f"{date.today() + timedelta(days=5)}T00:00:00+08:00",
        },
        headers=world.hub.holder(holder_code).headers,
    )
    fetched = _fetch(browser, csrf, holder_code, "居住证 留档")
    link = html.unescape(re.search(r'href="(/console/verify/fetch/[^"]+/pdf\?use_cause=[^"]+)"', fetched.text).group(1))  # type: ignore[union-attr]
    download = browser.get(link)
    assert download.status_code == 200 and download.content.startswith(b"%PDF")
    assert browser.get(f"/console/verify/fetch/{cert['identifier']}/pdf").status_code == 422
    with world.hub.factory() as db:
        downloads = db.query(Access).filter_by(certificate_identifier=cert["identifier"], action="download").all()
        assert [d.use_cause for d in downloads] == ["居住证 留档"]


@pytest.mark.parametrize("path", ["/console/verify", "/console/me/certificates", "/console/me/data-accesses"])
def test_the_new_pages_need_a_session(world: World, path: str) -> None:
    response = _person(world).get(path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"/console/login?next={path}"
