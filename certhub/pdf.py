"""The printable copy of a certificate: its face, metadata and a QR code, drawn with reportlab."""

from __future__ import annotations

import io
import itertools
from typing import Any

from reportlab.graphics.barcode import qrencoder
from reportlab.lib import colors
from reportlab.lib.pagesizes import A5, landscape
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from certhub.common import face_rows

FONT = "STSong-Light"
_registered = False
# Where the seal stamp goes (points, bottom-left origin): right of the metadata, under the face.
SEAL_BOX = (430.0, 40.0, 540.0, 150.0)


def _font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


def _wrap(text: str, width: int) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def _draw_qr(pdf: canvas.Canvas, text: str, *, x: float, y: float, size: float, border: int = 4) -> None:
    """A QR code (level M) as one filled path: the code is computed once, each run of dark modules is one rectangle."""
    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(text)
    code.make()
    box = size / (code.getModuleCount() + 2 * border)
    path = pdf.beginPath()
    for r, row in enumerate(code.modules):
        column = 0
        for dark, run in itertools.groupby(bool(m) for m in row):
            length = len(list(run))
            if dark:
                path.rect(x + (column + border) * box, y + size - (r + border + 1) * box, length * box, box)
            column += length
    pdf.setFillColor(colors.black)
    pdf.drawPath(path, stroke=0, fill=1)


def render(
    *, certificate: Any, type_name: str, schema: dict[str, Any], template: dict[str, Any], issuer_name: str, qr: str
) -> bytes:
    """A one-page A5 PDF of the certificate face (Chinese text in the built-in STSong-Light font)."""
    font = _font()
    buffer = io.BytesIO()
    width, height = landscape(A5)
    pdf = canvas.Canvas(buffer, pagesize=(width, height), invariant=True)
    pdf.setTitle(f"{type_name} {certificate.identifier}")
    pdf.setAuthor(issuer_name)
    accent = colors.HexColor(str(template.get("accent", "#1a5fb4")))
    pdf.setStrokeColor(accent)
    pdf.setLineWidth(3)
    pdf.rect(18, 18, width - 36, height - 36)
    pdf.setFillColor(accent)
    pdf.setFont(font, 20)
    pdf.drawCentredString(width / 2, height - 55, str(template.get("title") or type_name))
    pdf.setFillColor(colors.black)
    y = height - 90
    for label, value in face_rows(certificate=certificate, schema=schema):
        pdf.setFont(font, 10)
        pdf.drawString(40, y, label)
        for line in _wrap(value, 34):
            pdf.drawString(130, y, line)
            y -= 14
        y -= 3
        if y < 120:
            break
    pdf.setFont(font, 8)
    until = certificate.valid_until.isoformat() if certificate.valid_until else "长期"
    footer = [
        f"证照标识 {certificate.identifier}",
        f"颁发机构 {issuer_name}（{certificate.issuer_code}）  颁发日期 {certificate.meta.get('ZZBFRQ', '')}",
        f"有效期 {certificate.valid_from.isoformat()} 至 {until}",
    ]
    for i, line in enumerate(footer):
        pdf.drawString(40, 62 - i * 11, line)
    size = 96.0
    _draw_qr(pdf, qr, x=width - 40 - size, y=height - 80 - size, size=size)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
