"""Certificate copies as OFD (GB/T 33190): issued by a department with an SM2 seal, read by readers that are not
ours (easyofd opens them and finds the face; zxing-cpp decodes the 2D code; asn1tools, compiled from the GB/T
38540 module, decodes the seal signature and gmssl verifies its SM2 signature), verified by the hub's verifier."""

from __future__ import annotations

import base64
import io
import os
import re
import types
import warnings
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from defusedxml.ElementTree import fromstring
from gmssl import sm2
from PIL import Image

from certhub import ofdcopy, ofdfont
from tests.certhub.conftest import ID_CARD, World, id_face
from tests.factories import citizen_id

NS = {"ofd": ofdcopy.NS}
SAMPLES = Path(os.environ.get("GOVHUB_SAMPLES_DIR") or Path(__file__).resolve().parents[2].parent / "shared" / "samples")
MODULE = SAMPLES / "gbt38540-v4.asn"
SM2_WORLD = pytest.mark.parametrize("world", ["SM2"], indirect=True)


def _easyofd_texts(data: bytes) -> list[str]:
    """The text easyofd, an OFD reader that is not ours, finds on the pages."""
    with warnings.catch_warnings():  # easyofd imports PyMuPDF by its deprecated name, fitz
        warnings.simplefilter("ignore", FutureWarning)
        from easyofd.ofd import OFD

    reader = OFD()
    reader.read(data, fmt="binary")
    return [t["text"] for doc in reader.data for page in doc["page_info"].values() for t in page.get("text_list", [])]


def _download(world: World, identifier: str, **params: str) -> Any:
    return world.client.get(f"/certhub/certificates/{identifier}/copy", params=params, headers=world.issuer.headers)


def _sm3(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def _gmssl_verify(cert_der: bytes, data: bytes, signature_der: bytes) -> bool:
    point = asn1_x509.Certificate.load(cert_der).public_key["public_key"].native
    rs = algos.DSASignature.load(signature_der)
    value = f"{rs['r'].native:064x}{rs['s'].native:064x}"
    return bool(sm2.CryptSM2(private_key=None, public_key=point[1:].hex()).verify_with_sm3(value, data))


def _needs_font() -> None:
    if ofdfont.source() is None:
        pytest.skip("no CJK TrueType font installed (apt-get install fonts-wqy-zenhei)")


@SM2_WORLD
def test_an_sm2_issuer_s_certificate_comes_with_a_sealed_ofd_copy_that_other_readers_open(world: World) -> None:
    _needs_font()
    holder = citizen_id()
    cert = world.issue(holder, render_pdf=True)
    assert cert["has_ofd"] is True and cert["has_pdf"] is False  # OFD by default: the issuer has an SM2 seal
    response = _download(world, cert["identifier"], use_cause="办理户籍业务")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ofd"
    assert response.headers["content-disposition"].endswith(f'{cert["serial"]}-001.ofd"')
    data = response.content

    texts = _easyofd_texts(data)
    for value in (*id_face(holder).values(), "张三", "居民身份证", "北京市公安局（"):
        assert any(str(value) in t for t in texts), (value, texts)
    assert any(cert["identifier"] in t for t in texts)

    package = zipfile.ZipFile(io.BytesIO(data))
    info = fromstring(package.read("OFD.xml"))
    custom = {e.get("Name"): e.text for e in info.iterfind(".//ofd:CustomData", NS)}
    assert custom["ZZBS"] == cert["identifier"] and custom["ZZMC"] == "居民身份证" and custom["CZZTDM"] == holder
    assert custom == {k: str(v) for k, v in cert["meta"].items()}
    assert info.findtext(".//ofd:DocInfo/ofd:Creator", namespaces=NS) == "govhub"
    assert info.findtext(".//ofd:DocInfo/ofd:CreationDate", namespaces=NS) == cert["meta"]["ZZBFRQ"]
    font = fromstring(package.read("Doc_0/PublicRes.xml")).find(".//ofd:Font", NS)
    assert font is not None and font.findtext("ofd:FontFile", namespaces=NS) == "font_1.ttf"
    assert package.read("Doc_0/Res/font_1.ttf")[:4] == b"\x00\x01\x00\x00"  # a TrueType font, embedded

    # the 2D code, decoded by zxing-cpp, opens the public check of this very certificate
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(package.read("Doc_0/Res/qr_2.png"))))
    link = str(found.text)
    assert link.startswith(world.hub.settings.public_url + "/console/public/verify/")
    check = world.client.get(f"/certhub/public/verifications/{link.rsplit('/', 1)[1]}")
    assert check.status_code == 200 and check.json()["state"] == "valid", check.text

    # the seal: the hub's verifier says valid, and the stamp sits where the page left room for it
    report = world.client.post("/seal/verify/ofd", files={"file": ("copy.ofd", data, "application/ofd")})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["verdict"] == "valid", body
    signature = fromstring(package.read("Doc_0/Signs/Sign_0/Signature.xml"))
    stamp = signature.find(".//ofd:StampAnnot", NS)
    assert stamp is not None
    x, y, w, _ = (float(v) for v in stamp.get("Boundary", "").split())
    assert (x, y, w) == ofdcopy.SEAL_BOX[:3]
    refs = {r.get("FileRef", "").lstrip("/") for r in signature.iterfind(".//ofd:Reference", NS)}
    assert {"OFD.xml", "Doc_0/Pages/Page_0/Content.xml", "Doc_0/Res/font_1.ttf", "Doc_0/Res/qr_2.png"} <= refs


@SM2_WORLD
def test_the_copy_s_seal_signature_decodes_with_the_standard_s_module_and_verifies_with_gmssl(world: World) -> None:
    asn1tools = pytest.importorskip("asn1tools")
    if not MODULE.is_file():
        pytest.skip(f"the GB/T 38540 ASN.1 module is not at {MODULE} (set GOVHUB_SAMPLES_DIR)")
    module = asn1tools.compile_files(str(MODULE), "der")
    cert = world.issue(render_pdf=True)
    data = _download(world, cert["identifier"], use_cause="核对").content
    package = zipfile.ZipFile(io.BytesIO(data))
    signature_xml = package.read("Doc_0/Signs/Sign_0/Signature.xml")
    value_loc = fromstring(signature_xml).findtext("ofd:SignedValue", namespaces=NS) or ""
    signed_value = package.read("Doc_0/Signs/Sign_0/" + value_loc.rsplit("/", 1)[-1])
    decoded = module.decode("SES-Signature", signed_value)
    tbs = decoded["toSign"]
    assert tbs["version"] == 4 and tbs["dataHash"][0] == _sm3(signature_xml)  # a BIT STRING: (bytes, bits)
    assert _gmssl_verify(decoded["cert"], module.encode("TBS-Sign", tbs), decoded["signature"][0])
    # every protected file's SM3 digest is the one Signature.xml states
    for ref in fromstring(signature_xml).iterfind(".//ofd:Reference", NS):
        check_value = base64.b64decode(ref.findtext("ofd:CheckValue", namespaces=NS) or "")
        assert _sm3(package.read(ref.get("FileRef", "").lstrip("/"))) == check_value, ref.get("FileRef")


@SM2_WORLD
def test_a_copy_changed_after_sealing_is_invalid(world: World) -> None:
    cert = world.issue(render_pdf=True)
    data = _download(world, cert["identifier"], use_cause="核对").content
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as changed:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "Doc_0/Pages/Page_0/Content.xml":
                content = content.replace("张三".encode(), "李四".encode())
            changed.writestr(item, content)
    report = world.client.post("/seal/verify/ofd", files={"file": ("copy.ofd", out.getvalue(), "application/ofd")}).json()
    assert report["verdict"] == "invalid"
    references = report["signatures"][0]["checks"]["references"]
    assert references["status"] == "failed" and "Content.xml" in references["message"], references


def test_an_issuer_without_an_sm2_seal_gets_a_pdf_copy_and_is_told_why_it_cannot_have_an_ofd(world: World) -> None:
    cert = world.issue(render_pdf=True)  # the bureau's seal is ES256: the copy falls back to PDF
    assert cert["has_pdf"] is True and cert["has_ofd"] is False
    response = _download(world, cert["identifier"], use_cause="核对")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    wanted = world.client.get(
        f"/certhub/certificates/{cert['identifier']}/copy",
        params={"use_cause": "核对"},
        headers={**world.issuer.headers, "Accept": "application/ofd"},
    )
    assert wanted.status_code == 404 and "no OFD copy; its copy is PDF" in wanted.json()["detail"]
    body = {
        "type_code": ID_CARD,
        "holder": {"code": (holder := citizen_id()), "kind": "person", "name": "张三"},
        "face": id_face(holder),
        "copy_format": "ofd",
    }
    refused = world.client.post("/certhub/certificates", json=body, headers=world.issuer.headers)
    assert refused.status_code == 409, refused.text
    assert "SM2" in refused.json()["detail"]
    with world.hub.factory() as db:  # nothing of the refused issuance was kept
        from certhub.models import Certificate

        assert db.query(Certificate).filter(Certificate.holder_code == holder).count() == 0


@SM2_WORLD
def test_downloads_need_a_cause_and_a_known_format(world: World) -> None:
    cert = world.issue(render_pdf=True)
    identifier = cert["identifier"]
    no_cause = world.client.get(f"/certhub/certificates/{identifier}/copy", headers=world.issuer.headers)
    assert no_cause.status_code == 422 and no_cause.json()["errors"][0]["field"] == "use_cause", no_cause.text
    odd = _download(world, identifier, use_cause="核对", format="xml")
    assert odd.status_code == 422, odd.text
    pdf = _download(world, identifier, use_cause="核对", format="pdf")
    assert pdf.status_code == 404 and "no PDF copy; its copy is OFD" in pdf.json()["detail"]
    ofd = world.client.get(f"/certhub/certificates/{identifier}/ofd?useCause=核对", headers=world.issuer.headers)
    assert ofd.status_code == 200 and ofd.content[:2] == b"PK"
    stranger = world.client.get(f"/certhub/certificates/{identifier}/ofd?use_cause=核对", headers=world.window.headers)
    assert stranger.status_code == 404 and "not found" in stranger.json()["detail"]


def _certificate(face: dict[str, Any], *, holder_name: str = "张三") -> Any:
    return types.SimpleNamespace(
        identifier="1.2.156.3005.2.11100000000019713D001.11110000000000000X.0000000001.001.K",
        holder_name=holder_name,
        number="110105199003074341",
        issuer_code="11110000000000000X",
        face=face,
        meta={"ZZMC": "居民身份证", "ZZBFRQ": "2026-12-07", "CZZT": holder_name},
        valid_from=date(2026, 12, 7),
        valid_until=None,
    )


def _render(certificate: Any, **extra: Any) -> bytes:
    args: dict[str, Any] = {
        "type_name": "居民身份证",
        "schema": {"properties": {"name": {"title": "姓名"}, "address": {"title": "住址"}}},
        "template": {"title": "居民身份证"},
        "issuer_name": "北京市公安局",
        "qr": "https://hub.example/console/public/verify/abc",
        "created": datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
    }
    args.update(extra)
    return ofdcopy.render(certificate=certificate, **args)


def test_face_values_that_need_escaping_are_written_as_text_and_read_back_unchanged() -> None:
    hostile = "A&B <b>\"引号\"</b> '单' ]]> &amp;"
    data = _render(
        _certificate({"name": hostile, "address": "北京\x07市\n东城区"}, holder_name="<张&三>"),
        issuer_name='公安局 "<&>"',
        type_name="证<照>",
    )
    package = zipfile.ZipFile(io.BytesIO(data))
    for name in package.namelist():
        if name.endswith(".xml"):
            fromstring(package.read(name))  # well-formed, no DTD: every value was escaped
    texts = _easyofd_texts(data)
    assert hostile in texts and "<张&三>" in texts and "北京市 东城区" in texts  # a control character dropped
    info = fromstring(package.read("OFD.xml"))
    assert info.findtext(".//ofd:Title", namespaces=NS) == "证<照> " + _certificate({}).identifier
    assert info.findtext(".//ofd:Author", namespaces=NS) == '公安局 "<&>"'
    assert {e.get("Name"): e.text for e in info.iterfind(".//ofd:CustomData", NS)}["CZZT"] == "<张&三>"


def test_long_values_wrap_to_three_lines_and_fields_that_do_not_fit_are_counted() -> None:
    _needs_font()
    long_address = "北京市东城区正义路1号院" * 20
    many = {f"extra_{i}": f"值{i}" for i in range(30)}
    data = _render(_certificate({"name": "张三", "address": long_address, **many}))
    texts = _easyofd_texts(data)
    at = texts.index("住址")
    lines = texts[at + 1 : at + 4]
    assert texts[at + 4] != "" and not texts[at + 4].startswith("北京市")  # three lines at most
    assert "".join(lines).endswith(ofdcopy.ELLIPSIS) and "".join(lines)[:-1] in long_address
    left_off = [t for t in texts if re.fullmatch(r"另有 \d+ 项未印在此页，以电子证照为准", t)]
    assert len(left_off) == 1
    shown = sum(1 for t in texts if t.startswith("extra_"))
    assert shown + int(left_off[0].split()[1]) == 30
    # every line stays inside its column (the font's own widths, from the embedded font)
    content = zipfile.ZipFile(io.BytesIO(data)).read("Doc_0/Pages/Page_0/Content.xml")
    for boundary in re.findall(rb'TextObject ID="\d+" Boundary="([\d. ]+)"', content):
        x, _, width, _ = (float(v) for v in boundary.split())
        assert x + width <= ofdcopy.PAGE_WIDTH - 6, boundary


@SM2_WORLD
def test_the_holder_downloads_the_ofd_copy_from_the_console_and_the_download_is_on_record(world: World) -> None:
    from certhub.models import Access
    from tests.console.test_certhub_pages import holder_signed_in

    holder = citizen_id()
    cert = world.issue(holder, render_pdf=True)
    world.issue(render_pdf=True)  # someone else's
    browser, _ = holder_signed_in(world, holder)
    mine = browser.get("/console/me/certificates")
    link = f"/console/me/certificates/{cert['identifier']}/copy?format=ofd"
    assert mine.status_code == 200 and link in mine.text and "下载加盖电子印章的 OFD" in mine.text
    assert "format=pdf" not in mine.text  # this certificate has no PDF copy
    download = browser.get(link)
    assert download.status_code == 200 and download.headers["content-type"] == "application/ofd"
    assert any("张三" in t for t in _easyofd_texts(download.content))
    as_pdf = browser.get(f"/console/me/certificates/{cert['identifier']}/copy?format=pdf")
    assert as_pdf.status_code == 404
    with world.hub.factory() as db:
        downloads = db.query(Access).filter_by(certificate_identifier=cert["identifier"], action="download").all()
        assert [d.use_cause for d in downloads] == ["持证人下载留存"]


@SM2_WORLD
def test_a_window_that_fetched_a_certificate_downloads_its_ofd_copy_with_the_same_cause(world: World) -> None:
    import html
    from datetime import timedelta

    from certhub.models import Access
    from tests.console.test_certhub_pages import _fetch, clerk

    holder = citizen_id()
    cert = world.issue(holder, render_pdf=True)
    assert world.window.department is not None
    authorised = world.client.post(
        "/certhub/me/authorisations",
        json={
            "type_code": ID_CARD,
            "department_code": world.window.department.code,
            "purpose": "办理居住证",
            "valid_until": f"{date.today() + timedelta(days=5)}T00:00:00+08:00",
        },
        headers=world.hub.holder(holder).headers,
    )
    assert authorised.status_code == 201, authorised.text
    browser, csrf = clerk(world)
    fetched = _fetch(browser, csrf, holder, "居住证 留档")
    found = re.search(r'href="(/console/verify/fetch/[^"]+/ofd\?use_cause=[^"]+)"', fetched.text)
    assert found is not None and "/pdf?" not in fetched.text, fetched.text
    download = browser.get(html.unescape(found.group(1)))
    assert download.status_code == 200 and download.headers["content-type"] == "application/ofd"
    assert browser.get(f"/console/verify/fetch/{cert['identifier']}/ofd").status_code == 422  # no cause
    with world.hub.factory() as db:
        downloads = db.query(Access).filter_by(certificate_identifier=cert["identifier"], action="download").all()
        assert [d.use_cause for d in downloads] == ["居住证 留档"]


@pytest.mark.parametrize(
    "payload",
    [
        "https://zwfw.example.gov.cn/certhub/public/v/" + "Ab3_" * 11,  # a 2D code link as the hub makes them
        "x",  # the smallest symbol
        "https://zwfw.example.gov.cn/certhub/public/v/" + "9" * 120,  # version 7 and up carry version information
    ],
)
def test_the_2d_code_is_a_standard_symbol_of_one_of_the_eight_masks_and_scanners_read_it(payload: str) -> None:
    import segno

    modules = ofdcopy.qr_modules(payload)
    # the very symbol segno (another encoder) makes with one of the masks, function patterns and format included
    masked = [
        [[bool(m) for m in row] for row in segno.make_qr(payload, error="m", mask=mask, boost_error=False).matrix]
        for mask in range(8)
    ]
    assert modules in masked
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(ofdcopy.qr_png(payload))))
    assert found.text == payload
    assert found.ec_level == "M"


def _reference_penalty(rows: list[list[bool]]) -> int:
    """ISO/IEC 18004 §7.8.3 on the modules, as plainly as it reads (runs, 2x2 blocks, finder-like, balance)."""
    size = len(rows)
    lines = ["".join("1" if m else "0" for m in row) for row in rows]
    lines += ["".join(line[j] for line in lines[:size]) for j in range(size)]
    score = sum(len(run) - 2 for line in lines for run in re.findall(r"0{5,}|1{5,}", line))
    score += 40 * sum(line.count(p) for line in lines for p in ("10111010000", "00001011101"))
    score += 3 * sum(
        rows[i][j] == rows[i + 1][j] == rows[i][j + 1] == rows[i + 1][j + 1] for i in range(size - 1) for j in range(size - 1)
    )
    dark = sum(map(sum, rows)) * 100 // (size * size)
    return score + 10 * (abs(dark - 50) // 5)


@pytest.mark.parametrize("length", [1, 17, 40, 63, 90, 150])
def test_the_2d_code_takes_the_mask_of_least_penalty(length: int) -> None:
    """The mask chosen on integers is one of least penalty by the plain reading of §7.8.3 over segno's eight
    symbols; a PNG pixel is dark exactly where its module is."""
    import secrets

    import segno

    for _ in range(5):
        payload = "https://zwfw.example.gov.cn/p/" + secrets.token_urlsafe(length)[:length]
        modules = ofdcopy.qr_modules(payload)
        scores = [
            _reference_penalty(
                [[bool(m) for m in row] for row in segno.make_qr(payload, error="m", mask=k, boost_error=False).matrix]
            )
            for k in range(8)
        ]
        assert _reference_penalty(modules) == min(scores)
        image = Image.open(io.BytesIO(ofdcopy.qr_png(payload, module_pixels=2, border=1))).convert("L")
        assert image.size == ((len(modules) + 2) * 2,) * 2
        assert all(
            (image.getpixel((2 * (j + 1), 2 * (i + 1))) == 0) == modules[i][j]
            for i in range(len(modules))
            for j in range(len(modules))
        )


def test_the_2d_code_message_of_a_link_is_segnos() -> None:
    """An ASCII link is encoded (byte mode, padding, Reed-Solomon, interleaving) to the very message segno's encoder
    makes, across versions 1 to 40; other payloads go to segno."""
    import random
    import secrets
    import string

    payloads = ["https://zwfw.example.gov.cn/p/" + secrets.token_urlsafe(n)[:n] for n in range(0, 2300, 37)]
    payloads += ["".join(random.choice(string.printable[:95]) for _ in range(n)) for n in range(1, 300, 11)]
    payloads += ["x", "HTTP://X.CN/ABC", "12345", "证照 é"]
    for payload in payloads:
        assert ofdcopy._message(payload) == ofdcopy._segno_message(payload), payload
