"""The window's OFD verification page: a clerk uploads a sealed OFD from another producer and reads the
checks in Chinese; a tampered copy names the changed file; a file that is no OFD is refused at the field."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import pytest

from tests.certhub.conftest import World, world
from tests.console.conftest import shot, sign_in_as_admin
from tests.console.test_certhub_pages import clerk, text_of
from tests.seal.test_der import SAMPLES

__all__ = ["world"]  # the certificate hub's scenario fixture, used here as it is

OFD_TYPE = "application/ofd"


def _sample(name: str) -> bytes:
    path = SAMPLES / "ofd" / name
    if not path.is_file():
        pytest.skip(f"no OFD sample at {path} (set GOVHUB_SAMPLES_DIR)")
    return path.read_bytes()


def _tampered(data: bytes, target: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == target:
                body = body[:-1] + bytes([body[-1] ^ 0x01])  # one changed byte
            dst.writestr(info.filename, body)
    return out.getvalue()


def test_a_clerk_verifies_an_ofd_and_reads_the_checks_in_chinese(world: World) -> None:
    invoice = _sample("sesv4-gomain-invoice.ofd")
    browser, csrf = clerk(world)
    form = browser.get("/console/verify/ofd")
    assert form.status_code == 200 and "验证 OFD" in form.text
    checked = browser.post("/console/verify/ofd", data={"csrf": csrf}, files={"file": ("发票.ofd", invoice, OFD_TYPE)})
    assert checked.status_code == 200
    verdict = text_of(checked, "ofd-verdict")
    assert "无法确定" in verdict and "受保护文件摘要 通过" in verdict and "无法建立到受信任根证书的证书链" in verdict
    assert not re.search(r"[A-Za-z]{2,} [a-z]{2,}", verdict), verdict  # no English sentence
    assert re.search(r"签署时间：\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}（北京时间）", verdict), verdict

    broken = browser.post(
        "/console/verify/ofd",
        data={"csrf": csrf},
        files={"file": ("发票.ofd", _tampered(invoice, "Doc_0/Pages/Page_0/Content.xml"), OFD_TYPE)},
    )
    text = text_of(broken, "ofd-verdict")
    assert "无效" in text and "/Doc_0/Pages/Page_0/Content.xml" in text and "摘要不一致（签署后被改动）" in text

    truncated = browser.post(
        "/console/verify/ofd", data={"csrf": csrf}, files={"file": ("发票.ofd", invoice[: len(invoice) // 2], OFD_TYPE)}
    )
    assert truncated.status_code == 422 and "不是 OFD 文件" in text_of(truncated, "file-error")
    nothing = browser.post("/console/verify/ofd", data={"csrf": csrf})
    assert nothing.status_code == 422 and "请选择" in text_of(nothing, "file-error")


def test_the_ofd_page_in_a_browser(browser: Any, hub_url: str) -> None:
    invoice = _sample("sesv4-gomain-invoice.ofd")
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN").new_page()
    sign_in_as_admin(page, hub_url)
    page.goto(f"{hub_url}/console/verify/ofd")
    page.set_input_files("#file", files=[{"name": "发票.ofd", "mimeType": OFD_TYPE, "buffer": invoice}])
    page.click("form[action='/console/verify/ofd'] button[type=submit]")
    assert "无法确定" in page.inner_text("#ofd-verdict")
    shot(page, "31-verify-ofd-other-producer")
    tampered = _tampered(invoice, "Doc_0/Res/image_80.jb2")
    page.set_input_files("#file", files=[{"name": "发票-改.ofd", "mimeType": OFD_TYPE, "buffer": tampered}])
    page.click("form[action='/console/verify/ofd'] button[type=submit]")
    assert "/Doc_0/Res/image_80.jb2" in page.inner_text("#ofd-verdict")
    shot(page, "32-verify-ofd-tampered")
    page.context.close()
