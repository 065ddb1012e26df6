"""QR codes as inline SVG for console pages, with reportlab's QR encoder (the one that draws the PDF copy's code).

reportlab's own SVG renderer writes one rectangle element per dark run (about a megabyte for a presentation);
here each run is one segment of a single path, a few tens of kilobytes, and the picture scales to any width.
"""

from __future__ import annotations

import itertools

from markupsafe import Markup
from reportlab.graphics.barcode import qrencoder

QUIET_ZONE = 4  # modules of white border the standard asks for
MAX_BYTES = 2953  # the largest QR code (version 40, level L) holds this many bytes


class TooLong(ValueError):
    """The text does not fit in one QR code."""


def _encoded(text: str) -> qrencoder.QRCode:
    # reportlab's automatic choice stops at version 39 (2,809 bytes); version 40 is asked for by name.
    for version in (None, 40):
        code = qrencoder.QRCode(version, qrencoder.QRErrorCorrectLevel.L)
        code.addData(text)
        try:
            code.make()
        except Exception:  # noqa: S112 (reportlab raises a bare Exception: "code length overflow")
            continue
        return code
    raise TooLong(f"{len(text.encode())} bytes do not fit in one QR code (at most {MAX_BYTES})")


def qr_svg(text: str, *, title: str = "二维码") -> Markup:
    """An SVG picture of `text` as a QR code (error correction level L: the densest data fits); TooLong if it cannot."""
    code = _encoded(text)
    size = code.getModuleCount() + 2 * QUIET_ZONE
    runs = []
    for y, row in enumerate(code.modules):
        x = QUIET_ZONE
        for dark, group in itertools.groupby(bool(m) for m in row):
            length = len(list(group))
            if dark:
                runs.append(f"M{x} {y + QUIET_ZONE}h{length}v1h-{length}z")
            x += length
    # Markup.format escapes every value; the title is the only text that comes from outside.
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" role="img" shape-rendering="crispEdges">'
        '<title>{title}</title><rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{path}"/></svg>'
    ).format(size=size, title=title, path="".join(runs))
