"""At the window: a short 亮证码 redeemed once for the verdict of a presentation, and public 验真 of a copy."""

from __future__ import annotations

import base64
import re
import zlib
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import qrcode
import zxingcpp
from PIL import Image, ImageDraw
from sqlalchemy import select, update

from certhub import caches
from certhub.models import ShortCode
from ops.audit import AuditRecord
from ops.db import utcnow
from tests.certhub.conftest import ID_CARD, World
from tests.factories import citizen_id


def _nonce(world: World, window: Any = None) -> str:
    response = world.client.post("/certhub/verifier/nonces", headers=(window or world.window).headers)
    assert response.status_code == 201, response.text
    return str(response.json()["nonce"])


def _short_code(world: World, holder: Any, identifier: str, nonce: str, **changes: Any) -> Any:
    assert world.window.department is not None
    body = {"fields": ["CZZT", "name"], "audience": world.window.department.code, "nonce": nonce, **changes}
    return world.client.post(f"/certhub/me/certificates/{identifier}/short-codes", json=body, headers=holder.headers)


def _redeem(world: World, code: str, nonce: str, window: Any = None) -> Any:
    return world.client.post(
        "/certhub/short-codes/redeem", json={"code": code, "nonce": nonce}, headers=(window or world.window).headers
    )


@pytest.fixture()
def holder_and_cert(world: World) -> tuple[Any, dict[str, Any]]:
    code = citizen_id()
    return world.hub.holder(code), world.issue(code)


def test_a_short_code_fits_a_small_qr_and_redeems_to_the_verdict_of_the_full_presentation(
    world: World, holder_and_cert: tuple[Any, dict[str, Any]]
) -> None:
    holder, cert = holder_and_cert
    nonce = _nonce(world)
    made = _short_code(world, holder, cert["identifier"], nonce)
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    # An independent QR encoder picks the smallest version that holds the code (level M, as a phone shows it).
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(code)
    qr.make(fit=True)
    assert qr.version is not None and qr.version <= 10, qr.version
    # The full presentation of the same fields, for another nonce, verified the usual way.
    full = world.show(holder, cert["identifier"], fields=["CZZT", "name"], nonce=_nonce(world))
    qr_full = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr_full.add_data(full["token"])
    qr_full.make(fit=True)
    assert qr_full.version is not None and qr_full.version > 20  # what the short code spares the scanner
    expected = world.verify(full["token"], nonce=full["nonce"])

    # Read out with spaces and in lower case, it is still the code.
    spoken = " ".join(re.findall(".{1,5}", code.lower()))
    redeemed = _redeem(world, spoken, nonce)
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json() == expected and expected["valid"] is True
    assert redeemed.json()["disclosed"] == {"CZZT": "张三", "name": "张三"}

    # Only a hash of the code is stored, and the presentation is not readable from the table.
    with world.hub.factory() as db:
        row = db.scalars(select(ShortCode)).one()
        assert code not in (row.code_hash, row.sealed) and "张三" not in row.sealed
        assert row.redeemed_at is not None
    # The holder sees the window's verification in the access list.
    accesses = world.client.get("/certhub/me/accesses", headers=holder.headers).json()["items"]
    assert sum(1 for a in accesses if a["action"] == "verify") == 2


def test_every_bad_short_code_gets_a_clear_refusal_and_is_recorded(
    world: World, holder_and_cert: tuple[Any, dict[str, Any]]
) -> None:
    holder, cert = holder_and_cert
    nonce = _nonce(world)
    code = _short_code(world, holder, cert["identifier"], nonce).json()["code"]

    unknown = _redeem(world, "LZ1" + "0" * 22, nonce)
    assert unknown.status_code == 404 and unknown.json()["code"] == "short_code_unknown"
    elsewhere = _redeem(world, code, _nonce(world, world.other_window), window=world.other_window)
    assert elsewhere.status_code == 403 and "another window" in elsewhere.json()["detail"]
    wrong_nonce = _redeem(world, code, "some-other-nonce-1234")
    assert wrong_nonce.status_code == 403 and "another nonce" in wrong_nonce.json()["detail"]
    assert _redeem(world, code, nonce).status_code == 200
    twice = _redeem(world, code, nonce)
    assert twice.status_code == 409 and twice.json()["code"] == "short_code_used"

    late_nonce = _nonce(world)
    late = _short_code(world, holder, cert["identifier"], late_nonce).json()["code"]
    with world.hub.factory() as db:
        db.execute(update(ShortCode).where(ShortCode.redeemed_at.is_(None)).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
    expired = _redeem(world, late, late_nonce)
    assert expired.status_code == 410 and expired.json()["code"] == "short_code_expired"

    no_nonce = world.client.post(
        f"/certhub/me/certificates/{cert['identifier']}/short-codes",
        json={"fields": ["name"], "audience": world.window.department.code if world.window.department else ""},
        headers=holder.headers,
    )
    assert no_nonce.status_code == 422
    with world.hub.factory() as db:
        refused = db.scalars(
            select(AuditRecord).where(AuditRecord.action == "certificate.short_code_redeem", AuditRecord.outcome == "denied")
        ).all()
        assert sorted(r.detail["code"] for r in refused) == sorted(
            ["short_code_unknown", "short_code_other_window", "short_code_other_window", "short_code_used", "short_code_expired"]
        )


def _copy_link(world: World, public_fields: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """Issue a certificate with its sealed PDF copy, and read the link in the copy's QR code (with zxing)."""
    if public_fields is not None:
        response = world.client.patch(
            f"/certhub/types/{ID_CARD}", json={"public_fields": public_fields}, headers=world.hub.admin.headers
        )
        assert response.status_code == 200, response.text
    code = citizen_id()
    cert = world.issue(code, render_pdf=True)
    holder = world.hub.holder(code)
    pdf = world.client.get(f"/certhub/certificates/{cert['identifier']}/pdf?use_cause=核对", headers=holder.headers)
    assert pdf.status_code == 200, pdf.text
    return cert | {"holder_code": code}, _qr_of_pdf(pdf.content)


def _qr_of_pdf(data: bytes) -> str:
    """The text of the QR code drawn (as filled rectangles) on a PDF page, redrawn as a picture and read by zxing."""
    rects: list[tuple[float, float, float, float]] = []
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:  # reportlab writes page content as ASCII85 over Flate
            content = zlib.decompress(base64.a85decode(raw.strip().removesuffix(b"~>")))
        except (ValueError, zlib.error):
            continue
        number = rb"(-?[\d.]+)"
        for x, y, w, h in re.findall(number + rb" " + number + rb" " + number + rb" " + number + rb" re", content):
            rects.append((float(x), float(y), float(w), float(h)))
    heights = Counter(round(h, 3) for *_, h in rects)
    box = heights.most_common(1)[0][0]
    modules = [(x, y, w) for x, y, w, h in rects if round(h, 3) == box]
    left, top = min(x for x, _, _ in modules), max(y for _, y, _ in modules)
    scale, border = 6, 4
    size = round((max(x + w for x, _, w in modules) - left) / box) + 2 * border
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y, w in modules:
        column, row = round((x - left) / box) + border, round((top - y) / box) + border
        draw.rectangle([column * scale, row * scale, (column + round(w / box)) * scale - 1, (row + 1) * scale - 1], fill=0)
    (found,) = zxingcpp.read_barcodes(image)
    return str(found.text)


def test_the_qr_code_on_a_copy_opens_the_public_check_with_only_public_fields(world: World) -> None:
    cert, link = _copy_link(world, public_fields=["name"])
    assert link.startswith(world.hub.settings.public_url + "/console/public/verify/")
    token = link.rsplit("/", 1)[1]
    assert cert["identifier"] not in link and len(token) >= 20
    answer = world.client.get(f"/certhub/public/verifications/{token}")  # no sign-in
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["valid"] is True and body["state"] == "valid" and body["type_name"] == "居民身份证"
    assert body["issuer_name"] == "北京市公安局" and body["fields"] == [{"name": "name", "label": "姓名", "value": "张三"}]
    text = answer.text
    assert cert["holder_code"] not in text and "正义路" not in text and cert["identifier"] not in text

    revoked = world.client.post(
        f"/certhub/certificates/{cert['identifier']}/revoke", json={"reason": "证件遗失"}, headers=world.issuer.headers
    )
    assert revoked.status_code == 200, revoked.text
    after = world.client.get(f"/certhub/public/verifications/{token}").json()
    assert after["valid"] is False and after["state"] == "revoked"

    # The identifier alone, or a made-up token, finds nothing.
    assert world.client.get(f"/certhub/public/verifications/{cert['identifier']}").status_code == 422  # no token
    made_up = world.client.get(f"/certhub/public/verifications/{token[:-4]}AAAA")
    assert made_up.status_code == 404 and "not a genuine copy" in made_up.json()["detail"]
    with world.hub.factory() as db:
        checks = db.scalars(select(AuditRecord).where(AuditRecord.action == "certificate.public_check")).all()
        assert len(checks) == 2 and all(r.role == "public" for r in checks)


def test_a_type_that_makes_nothing_public_shows_only_type_issuer_and_validity(world: World) -> None:
    cert, link = _copy_link(world)
    body = world.client.get(f"/certhub/public/verifications/{link.rsplit('/', 1)[1]}").json()
    assert body["fields"] == [] and body["valid"] is True and body["valid_from"] == cert["valid_from"]


def test_public_checks_are_rate_limited_per_client_address(world: World) -> None:
    _, link = _copy_link(world)
    token = link.rsplit("/", 1)[1]
    caches.public_checks.clear()
    limit = world.hub.settings.public_verification_per_minute
    for _ in range(limit):
        assert world.client.get(f"/certhub/public/verifications/{token}").status_code == 200
    refused = world.client.get(f"/certhub/public/verifications/{token}")
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    page = world.client.get(f"/console/public/verify/{token}")  # the page people open counts the same
    assert page.status_code == 429 and "Retry-After" in page.headers and "too many checks" in page.text


def test_public_fields_must_be_face_fields(world: World) -> None:
    response = world.client.patch(
        f"/certhub/types/{ID_CARD}", json={"public_fields": ["name", "salary"]}, headers=world.hub.admin.headers
    )
    assert response.status_code == 422 and "salary" in response.json()["detail"]
