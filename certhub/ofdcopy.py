"""The OFD copy of a certificate (GB/T 33190, as GB/T 36905 asks of certificate files): one A5 page.

The package::

    OFD.xml                          DocInfo: DocID, Title, Author, CreationDate, Creator, and the GB/T 36903
                                     metadata (ZZMC, ZZBS, ...) as CustomDatas
    Doc_0/Document.xml               CommonData: MaxUnitID, PageArea (A5 landscape, millimetres), PublicRes,
                                     DocumentRes; the page
    Doc_0/PublicRes.xml              the font: a subset of a CJK TrueType font, in Doc_0/Res/ (``ofdfont.py``)
    Doc_0/DocumentRes.xml            the 2D code: a PNG image in Doc_0/Res/
    Doc_0/Pages/Page_0/Content.xml   the face: a frame, the title, each field (label and value), the
                                     identifier, issuer and validity, the 2D code; :data:`SEAL_BOX` is left
                                     free for the seal's picture (the StampAnnot of the signature)

Every value is written escaped (``&``, ``<``, ``>``, quotes) and characters XML 1.0 cannot carry (control
characters) are dropped. Layout rules: a value wraps at its column's width and takes at most
:data:`MAX_VALUE_LINES` lines, the last ending in "…" when it is longer; a label or title too wide for its
place is cut with "…"; fields that no longer fit above the footer are left off the page and a last line
says how many (the certificate itself, signed, holds them all).
"""

from __future__ import annotations

import io
import re
import struct
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any
from xml.sax.saxutils import escape

import segno

from certhub import common, ofdfont

NS = "http://www.ofdspec.org/2016"
CREATOR = "govhub"
CREATOR_VERSION = "1.0"
PAGE_WIDTH, PAGE_HEIGHT = 210.0, 148.0  # A5 landscape, millimetres (OFD's unit)
# Where the seal's picture goes (x, y, width, height; millimetres from the page's top-left corner): right of
# the footer, under the face, 40 mm as a department's official seal.
SEAL_BOX = (148.0, 94.0, 40.0, 40.0)
QR_BOX = (158.0, 24.0, 36.0, 36.0)
MARGIN = 14.0
LABEL_WIDTH = 28.0
VALUE_X = MARGIN + LABEL_WIDTH + 2.0
VALUE_RIGHT = QR_BOX[0] - 4.0
FACE_SIZE = 3.5
FACE_LEADING = 5.0
FACE_BOTTOM = 104.0  # no face line's baseline below this: the footer and the seal are under it
FOOTER_SIZE = 2.8
MAX_VALUE_LINES = 3
DEFAULT_ACCENT = (26, 95, 180)
ELLIPSIS = "…"

# XML 1.0 allows tab, newline, carriage return and everything from U+0020 except surrogates, FFFE and FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: object) -> str:
    """A value as one line of text XML can carry: control characters dropped, line breaks made spaces."""
    return _NOT_XML.sub("", str(text)).replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")


def _attr(value: object) -> str:
    return escape(str(value), {'"': "&quot;"})


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


@dataclass
class _Fonts:
    """Widths of characters in ems, from the embedded font (or a fixed guess without one)."""

    source: ofdfont.FontSource | None
    used: set[str] = field(default_factory=set)

    def width(self, text: str, size: float) -> float:
        return sum(self.advance(ch) for ch in text) * size

    def advance(self, char: str) -> float:
        if self.source is not None:
            return self.source.advance(char)
        return 0.5 if ord(char) < 0x2E80 else 1.0

    def fit(self, text: str, size: float, width: float) -> str:
        """`text` cut to `width` with an ellipsis when it is wider."""
        if self.width(text, size) <= width:
            return text
        room = width - self.width(ELLIPSIS, size)
        kept, used = [], 0.0
        for ch in text:
            used += self.advance(ch) * size
            if used > room:
                break
            kept.append(ch)
        return "".join(kept) + ELLIPSIS

    def wrap(self, text: str, size: float, width: float, max_lines: int) -> list[str]:
        """`text` in lines of at most `width`, at most `max_lines` of them (the last cut with an ellipsis)."""
        lines: list[str] = []
        line: list[str] = []
        used = 0.0
        for i, ch in enumerate(text):
            step = self.advance(ch) * size
            if line and used + step > width:
                if len(lines) == max_lines - 1:
                    return [*lines, self.fit("".join(line) + text[i:], size, width)]
                lines.append("".join(line))
                line, used = [], 0.0
            line.append(ch)
            used += step
        lines.append("".join(line))
        return lines


# A text object's XML after its ID, by its font, place, text, size and colour: the labels, titles and many values
# come back copy after copy (a pure function of its key; emptied when it reaches its bound).
TEXT_OBJECTS_KEPT = 4096
_TEXT_OBJECTS: dict[tuple[Any, ...], str] = {}


@dataclass
class _Page:
    fonts: _Fonts
    font_id: int
    next_id: int
    objects: list[str] = field(default_factory=list)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def text(self, x: float, baseline: float, text: str, *, size: float, color: tuple[int, int, int] = (0, 0, 0)) -> None:
        """One line of text, its baseline at `baseline` mm from the top, with each character's advance given."""
        if not text:
            return
        self.fonts.used.update(text)
        key = (self.fonts.source.path if self.fonts.source else "", x, baseline, text, size, color, self.font_id)
        body = _TEXT_OBJECTS.get(key)
        if body is None:
            deltas = " ".join(_num(self.fonts.advance(ch) * size) for ch in text[:-1])
            width = self.fonts.width(text, size)
            top = baseline - size
            delta_attr = f' DeltaX="{deltas}"' if deltas else ""
            body = (
                f' Boundary="{_num(x)} {_num(top)} {_num(width + 0.5)} {_num(size * 1.3)}"'
                f' Font="{self.font_id}" Size="{_num(size)}">'
                f'<ofd:FillColor Value="{" ".join(map(str, color))}"/>'
                f'<ofd:TextCode X="0" Y="{_num(size)}"{delta_attr}>{escape(text)}</ofd:TextCode></ofd:TextObject>'
            )
            if len(_TEXT_OBJECTS) >= TEXT_OBJECTS_KEPT:
                _TEXT_OBJECTS.clear()
            _TEXT_OBJECTS[key] = body
        self.objects.append(f'<ofd:TextObject ID="{self.new_id()}"{body}')

    def centred(self, baseline: float, text: str, *, size: float, color: tuple[int, int, int]) -> None:
        self.text((PAGE_WIDTH - self.fonts.width(text, size)) / 2, baseline, text, size=size, color=color)

    def frame(self, inset: float, line_width: float, color: tuple[int, int, int]) -> None:
        w, h = PAGE_WIDTH - 2 * inset, PAGE_HEIGHT - 2 * inset
        self.objects.append(
            f'<ofd:PathObject ID="{self.new_id()}" Boundary="{_num(inset)} {_num(inset)} {_num(w)} {_num(h)}"'
            f' LineWidth="{_num(line_width)}" Stroke="true" Fill="false">'
            f'<ofd:StrokeColor Value="{" ".join(map(str, color))}"/>'
            f"<ofd:AbbreviatedData>M 0 0 L {_num(w)} 0 L {_num(w)} {_num(h)} L 0 {_num(h)} C</ofd:AbbreviatedData>"
            "</ofd:PathObject>"
        )

    def image(self, resource_id: int, box: tuple[float, float, float, float]) -> None:
        x, y, w, h = box
        self.objects.append(
            f'<ofd:ImageObject ID="{self.new_id()}" Boundary="{_num(x)} {_num(y)} {_num(w)} {_num(h)}"'
            f' CTM="{_num(w)} 0 0 {_num(h)} 0 0" ResourceID="{resource_id}"/>'
        )


QR_ERROR = "m"  # error correction level M (15 %)

# ISO/IEC 18004 §7.8.2, Table 10: where each data mask pattern inverts a module (i: row, j: column).
_MASKS: tuple[Callable[[int, int], bool], ...] = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)
_FINDER_LIKE = ("10111010000", "00001011101")  # 1:1:3:1:1 with four light modules on one side
_BIT_CHARS = bytes.maketrans(b"\x00\x01", b"01")


# A symbol is scored as one integer: its rows, then its columns, each line `size` modules (the leftmost the
# highest bit) followed by one separator bit, 0 both in the symbol and in its complement, so that no run, block
# or pattern spans two lines. Every mask's symbol is then a few operations on integers of a few thousand bits.


@dataclass(frozen=True)
class _Layout:
    """What one QR version's symbols share, worked out once a process, in the lines layout above: where each
    module of the lines takes its bit of the final message (:func:`_message`), each mask's pattern over the
    encoding region and its function patterns (finders, timing, alignment, format and version information)."""

    size: int
    lines_bits: int  # the bits of the lines layout: 2 * size lines of size + 1
    take: Callable[[str], tuple[str, ...]]  # the message's bits ("0"/"1", then one "0") in layout order
    patterns: tuple[int, ...]
    functions: tuple[int, ...]
    modules: int  # 1 at every module of the layout, 0 at the separators
    rows: int  # 1 at every module of the rows
    pairs: int  # 1 at the modules of every row but the last (the top row of a 2x2 block)


def _layout_string(cells: Callable[[int, int], str], size: int) -> str:
    """The lines layout of a symbol whose module (i, j) is `cells(i, j)`: its rows, then its columns."""
    rows = ["".join(cells(i, j) for j in range(size)) + "0" for i in range(size)]
    columns = ["".join(cells(i, j) for i in range(size)) + "0" for j in range(size)]
    return "".join(rows + columns)


@cache
def _layout(version: int) -> _Layout:
    import operator

    from segno import encoder

    size = version * 4 + 17
    # the reserved areas and function patterns, as segno lays them out before it places the data
    marks = encoder.make_matrix(size, size)  # type: ignore[no-untyped-call]
    encoder.add_finder_patterns(marks, size, size)  # type: ignore[no-untyped-call]
    encoder.add_alignment_patterns(marks, size, size)  # type: ignore[no-untyped-call]
    marks[-8][8] = 0x1  # the dark module
    region = [[m > 0x1 for m in row] for row in marks]
    # where the message's bits go (ISO/IEC 18004 §7.7.3): segno's own placement, given each bit's index
    placed = [list(row) for row in marks]
    count = sum(map(sum, region))
    encoder.add_codewords(placed, [_FIRST_INDEX + k for k in range(count)], version)  # type: ignore[no-untyped-call]
    index = [[placed[i][j] - _FIRST_INDEX if region[i][j] else count for j in range(size)] for i in range(size)]
    assert sorted(k for row in index for k in row if k < count) == list(range(count)), "every region module placed once"
    positions: list[int] = []
    for i in range(size):
        positions += [index[i][j] for j in range(size)] + [count]
    for j in range(size):
        positions += [index[i][j] for i in range(size)] + [count]
    patterns, functions = [], []
    for number, mask in enumerate(_MASKS):
        inverted = [["1" if region[i][j] and mask(i, j) else "0" for j in range(size)] for i in range(size)]
        patterns.append(int(_layout_string(lambda i, j: inverted[i][j], size), 2))  # noqa: B023 (used at once)
        # a symbol of this version made with this mask: what lies outside the region
        sample = segno.make_qr("0", version=version, error=QR_ERROR, mask=number, boost_error=False).matrix
        fixed = [["1" if sample[i][j] and not region[i][j] else "0" for j in range(size)] for i in range(size)]
        functions.append(int(_layout_string(lambda i, j: fixed[i][j], size), 2))  # noqa: B023
    lines_bits = 2 * size * (size + 1)
    modules = int(_layout_string(lambda i, j: "1", size), 2)
    rows = modules >> (size * (size + 1)) << (size * (size + 1))
    pairs = rows & ~((1 << (size * (size + 1) + size + 1)) - 1)
    return _Layout(size, lines_bits, operator.itemgetter(*positions), tuple(patterns), tuple(functions), modules, rows, pairs)


_FIRST_INDEX = 1 << 20  # placement indices start here, above every value segno's matrix holds


_NOT_BYTE_MODE = re.compile(r"[0-9A-Z $%*+\-./:]*")  # numeric or alphanumeric: segno picks another mode


@cache
def _byte_mode_plan(length: int) -> tuple[int, int, tuple[tuple[int, int, int], ...], int]:
    """For `length` bytes in byte mode at level M: the version, the data codewords, the blocks (count, data
    codewords, error correction codewords) and the remainder bits (ISO/IEC 18004 Tables 7, 9 and 1)."""
    from segno import consts

    error = consts.ERROR_LEVEL_M
    for version in range(1, 41):
        capacity: int = consts.SYMBOL_CAPACITY[version][error]  # type: ignore[index]
        if capacity >= 4 + (8 if version < 10 else 16) + 8 * length:
            blocks = tuple((b.num_blocks, b.num_data, b.num_total - b.num_data) for b in consts.ECC[version][error])  # type: ignore[index]
            return version, capacity // 8, blocks, _remainder(version)
    raise ValueError("the 2D code's data is too long for a QR code")


def _remainder(version: int) -> int:
    if 2 <= version <= 6:
        return 7
    if 14 <= version <= 20 or 28 <= version <= 34:
        return 3
    return 4 if 21 <= version <= 27 else 0


@cache
def _rs_products(errors: int) -> tuple[int, ...]:
    """For each factor f: the generator polynomial's coefficients (after the leading 1) times f in GF(256), as one
    integer of `errors` bytes: one step of the division is then a shift and an xor."""
    from segno import consts

    exp, log, generator = consts.GALIOS_EXP, consts.GALIOS_LOG, consts.GEN_POLY[errors]
    products = [0]
    for factor in range(1, 256):
        products.append(int.from_bytes(bytes(exp[log[factor] + g] for g in generator), "big"))
    return tuple(products)


def _error_codewords(data: bytes, errors: int) -> bytes:
    """The Reed-Solomon error correction codewords of a block (ISO/IEC 18004 §7.5.2)."""
    products = _rs_products(errors)
    top, keep = 8 * (errors - 1), (1 << (8 * errors)) - 1
    remainder = 0
    for codeword in data:
        remainder = (remainder << 8 & keep) ^ products[codeword ^ remainder >> top]
    return remainder.to_bytes(errors, "big")


def _message(payload: str) -> tuple[int, str]:
    """The version of the QR code (level M) carrying `payload` and its final message (ISO/IEC 18004 §7.6: data
    and error correction codewords interleaved, then the remainder bits) in "0" and "1", as segno's encoder makes
    them (the same padding); an ASCII payload in byte mode (a link) is encoded here, anything else by segno."""
    if not payload or not payload.isascii() or _NOT_BYTE_MODE.fullmatch(payload):
        return _segno_message(payload)
    data = payload.encode("ascii")
    version, capacity, blocks, remainder = _byte_mode_plan(len(data))
    count = 8 if version < 10 else 16
    bits = "0100" + format(len(data), f"0{count}b") + format(int.from_bytes(data, "big"), f"0{8 * len(data)}b")
    bits += "0" * min(8 * capacity - len(bits), 4)  # the terminator
    bits += "0" * (8 - len(bits) % 8)  # to a codeword's end (segno adds a whole zero codeword when at one already)
    pads = capacity - len(bits) // 8
    codewords = int(bits, 2).to_bytes(len(bits) // 8, "big") + (b"\xec\x11" * (pads // 2 + 1))[: max(pads, 0)]
    data_blocks, error_blocks, at = [], [], 0
    for number, size, errors in blocks:
        for _ in range(number):
            block = codewords[at : at + size]
            at += size
            data_blocks.append(block)
            error_blocks.append(_error_codewords(block, errors))
    interleaved = bytes(b[i] for i in range(max(map(len, data_blocks))) for b in data_blocks if i < len(b))
    interleaved += bytes(b[i] for i in range(len(error_blocks[0])) for b in error_blocks)
    return version, format(int.from_bytes(interleaved, "big"), f"0{8 * len(interleaved)}b") + "0" * remainder


def _segno_message(payload: str) -> tuple[int, str]:
    """:func:`_message` by segno's own encoder steps (any mode)."""
    from segno import consts, encoder

    error = consts.ERROR_LEVEL_M
    segments = encoder.prepare_data(payload, None, None)  # type: ignore[no-untyped-call]
    version = int(encoder.find_version(segments, error, eci=False, micro=False))  # type: ignore[no-untyped-call]
    buffer = encoder.Buffer()  # type: ignore[no-untyped-call]
    for segment in segments:
        encoder.write_segment(buffer, segment, None, encoder.version_range(version), False)  # type: ignore[no-untyped-call]
    capacity: int = consts.SYMBOL_CAPACITY[version][error]  # type: ignore[index]
    encoder.write_terminator(buffer, capacity, None, len(buffer))  # type: ignore[no-untyped-call]
    encoder.write_padding_bits(buffer, version, len(buffer))  # type: ignore[no-untyped-call]
    encoder.write_pad_codewords(buffer, version, capacity, len(buffer))  # type: ignore[no-untyped-call]
    final = encoder.make_final_message(version, error, buffer)  # type: ignore[no-untyped-call]
    return version, bytes(final.getbits()).translate(_BIT_CHARS).decode()


def _penalty(symbol: int, layout: _Layout) -> int:
    """The penalty of a masked QR symbol (ISO/IEC 18004 §7.8.3: runs, 2x2 blocks, finder-like patterns, balance),
    the symbol given in the lines layout."""
    light = ~symbol & layout.modules
    score = 0
    for lines in (symbol, light):
        # N1: a run of n >= 5 modules of one colour scores n - 2: one for each of its n - 4 windows of five, and 2
        windows = lines & lines >> 1 & lines >> 2 & lines >> 3 & lines >> 4
        score += windows.bit_count() + 2 * (windows & ~(windows << 1)).bit_count()
    for pattern in _FINDER_LIKE:  # N3: 40 for each, in a row or a column
        found = layout.modules
        for k, bit in enumerate(pattern):
            found &= (symbol if bit == "1" else light) >> (10 - k)
        score += 40 * found.bit_count()
    width = layout.size + 1
    for lines in (symbol, light):  # N2: 3 for each 2x2 block of one colour (a row and the one below it)
        below = lines << width
        score += 3 * (lines & below & lines >> 1 & below >> 1 & layout.pairs).bit_count()
    dark_share = (symbol & layout.rows).bit_count() * 100 // (layout.size * layout.size)
    return score + 10 * (abs(dark_share - 50) // 5)


def qr_rows(payload: str) -> tuple[int, list[int]]:
    """A QR code (level M) carrying `payload`, with the mask of least penalty: its size and its rows of modules
    as integers (the leftmost module the highest bit, 1 dark).

    The message is placed once into the lines layout; each masked symbol is then its function patterns or'ed with
    the placed message xor'ed with the mask's pattern, and scored on integers."""
    version, message = _message(payload)
    layout = _layout(version)
    placed = int("".join(layout.take(message + "0")), 2)
    best: tuple[int, int] | None = None
    for mask in range(8):
        symbol = layout.functions[mask] | (placed ^ layout.patterns[mask])
        score = _penalty(symbol, layout)
        if best is None or score < best[0]:
            best = (score, symbol)
    assert best is not None
    size, width = layout.size, layout.size + 1
    full = (1 << size) - 1
    top = layout.lines_bits - width  # the shift of the first row (its separator is the lowest bit)
    return size, [best[1] >> (top - i * width + 1) & full for i in range(size)]


def qr_modules(payload: str) -> list[list[bool]]:
    """The modules of the QR code :func:`qr_rows` makes, row by row (True: dark)."""
    size, rows = qr_rows(payload)
    return [[bool(row >> (size - 1 - j) & 1) for j in range(size)] for row in rows]


def qr_png(payload: str, *, module_pixels: int = 4, border: int = 4) -> bytes:
    """A QR code (level M) as a black-and-white PNG, each module `module_pixels` square, with a quiet zone."""
    size, rows = qr_rows(payload)
    side = (size + 2 * border) * module_pixels
    line_bytes = (side + 7) // 8
    raw = bytearray()
    widen = str.maketrans({"0": "0" * module_pixels, "1": "1" * module_pixels})  # each module, module_pixels wide
    for row in [0] * border + rows + [0] * border:
        bits = int(format(row, f"0{size}b").translate(widen), 2) << border * module_pixels  # 1 dark
        line = ~(bits << (line_bytes * 8 - side)) & ((1 << (line_bytes * 8)) - 1)  # mode "1": 1 is white
        raw += (b"\x00" + line.to_bytes(line_bytes, "big")) * module_pixels  # each scanline: filter type 0, none
    return _png_gray1(side, side, bytes(raw))


def _png_gray1(width: int, height: int, scanlines: bytes) -> bytes:
    """A PNG of 1-bit greyscale (0 black, 1 white) from its scanlines, each led by its filter byte (PNG, ISO/IEC
    15948: IHDR, one IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, greyscale, deflate, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines, 9)) + chunk(b"IEND", b"")


def _accent(template: dict[str, Any]) -> tuple[int, int, int]:
    value = str(template.get("accent") or "")
    if re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
    return DEFAULT_ACCENT


def face_rows(*, certificate: Any, schema: dict[str, Any]) -> list[tuple[str, str]]:
    """The face as (label, value) rows in the PDF copy's order (`common.face_rows`), each a line XML can carry."""
    return [(clean(label), clean(value)) for label, value in common.face_rows(certificate=certificate, schema=schema)]


def _custom_datas(meta: dict[str, Any]) -> str:
    items = "".join(
        f'<ofd:CustomData Name="{_attr(clean(name))}">{escape(clean(value))}</ofd:CustomData>' for name, value in meta.items()
    )
    return f"<ofd:CustomDatas>{items}</ofd:CustomDatas>" if items else ""


def _xml(body: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body).encode()


DOC_ROOT = "Doc_0/Document.xml"


@dataclass(frozen=True)
class OfdCopy:
    """The files of an unsealed OFD copy, in package order, and the page the seal goes on (its ID and box, mm)."""

    files: tuple[tuple[str, bytes], ...]
    page_id: str
    page_box: tuple[float, float, float, float] = (0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT)
    doc_root: str = DOC_ROOT


def render(
    *,
    certificate: Any,
    type_name: str,
    schema: dict[str, Any],
    template: dict[str, Any],
    issuer_name: str,
    qr: str,
    created: datetime,
    font_path: str | None = None,
) -> bytes:
    """The unsealed OFD copy of `certificate` (its face, GB/T 36903 metadata and a 2D code carrying `qr`)."""
    copy = render_files(
        certificate=certificate, type_name=type_name, schema=schema, template=template, issuer_name=issuer_name, qr=qr,
        created=created, font_path=font_path,
    )  # fmt: skip
    return package(copy.files, created=created)


def render_files(
    *,
    certificate: Any,
    type_name: str,
    schema: dict[str, Any],
    template: dict[str, Any],
    issuer_name: str,
    qr: str,
    created: datetime,
    font_path: str | None = None,
) -> OfdCopy:
    """The files of the unsealed OFD copy :func:`render` packs (for sealing without packing and unpacking it)."""
    fonts = _Fonts(ofdfont.source(font_path))
    accent = _accent(template)
    font_id, media_id = 1, 2
    page = _Page(fonts=fonts, font_id=font_id, next_id=3)
    page_id = page.new_id()
    layer_id = page.new_id()

    page.frame(6.0, 1.0, accent)
    title = fonts.fit(clean(template.get("title") or type_name), 7.0, PAGE_WIDTH - 2 * MARGIN)
    page.centred(19.0, title, size=7.0, color=accent)

    rows = face_rows(certificate=certificate, schema=schema)
    baseline = 32.0
    for shown, (label, value) in enumerate(rows):
        lines = fonts.wrap(value, FACE_SIZE, VALUE_RIGHT - VALUE_X, MAX_VALUE_LINES)
        if baseline + (len(lines) - 1) * FACE_LEADING > FACE_BOTTOM:
            page.text(MARGIN, baseline, f"另有 {len(rows) - shown} 项未印在此页，以电子证照为准", size=FOOTER_SIZE)
            break
        page.text(MARGIN, baseline, fonts.fit(label, FACE_SIZE, LABEL_WIDTH), size=FACE_SIZE)
        for line in lines:
            page.text(VALUE_X, baseline, line, size=FACE_SIZE)
            baseline += FACE_LEADING
        baseline += 1.0

    until = certificate.valid_until.isoformat() if certificate.valid_until else "长期"
    footer_width = SEAL_BOX[0] - MARGIN - 4.0
    footer = [
        f"证照标识 {certificate.identifier}",
        f"颁发机构 {clean(issuer_name)}（{certificate.issuer_code}）",
        f"颁发日期 {clean(certificate.meta.get('ZZBFRQ', ''))}",
        f"有效期 {certificate.valid_from.isoformat()} 至 {until}",
    ]
    for i, line in enumerate(footer):
        page.text(MARGIN, 116.0 + i * 4.4, fonts.fit(line, FOOTER_SIZE, footer_width), size=FOOTER_SIZE)
    caption = "扫码验真"
    page.text(
        QR_BOX[0] + (QR_BOX[2] - fonts.width(caption, FOOTER_SIZE)) / 2, QR_BOX[1] + QR_BOX[3] + 4.0, caption, size=FOOTER_SIZE
    )
    page.image(media_id, QR_BOX)
    max_id = page.next_id

    font_file = fonts.source.subset("".join(fonts.used)) if fonts.source is not None else None
    font_name = ofdfont.FAMILY if font_file is not None else "宋体"
    font_xml = f'<ofd:Font ID="{font_id}" FontName="{font_name}" FamilyName="{font_name}"' + (
        f"><ofd:FontFile>font_{font_id}.ttf</ofd:FontFile></ofd:Font>" if font_file is not None else "/>"
    )
    title_text = f"{clean(type_name)} {certificate.identifier}"
    files: dict[str, bytes] = {
        "OFD.xml": _xml(
            f'<ofd:OFD xmlns:ofd="{NS}" Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocInfo>'
            f"<ofd:DocID>{uuid.uuid4().hex}</ofd:DocID>"
            f"<ofd:Title>{escape(title_text)}</ofd:Title>"
            f"<ofd:Author>{escape(clean(issuer_name))}</ofd:Author>"
            f"<ofd:Subject>电子证照</ofd:Subject>"
            f"<ofd:CreationDate>{created.date().isoformat()}</ofd:CreationDate>"
            f"<ofd:Creator>{CREATOR}</ofd:Creator><ofd:CreatorVersion>{CREATOR_VERSION}</ofd:CreatorVersion>"
            f"{_custom_datas(certificate.meta)}"
            f"</ofd:DocInfo><ofd:DocRoot>{DOC_ROOT}</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
        ),
        DOC_ROOT: _xml(
            f'<ofd:Document xmlns:ofd="{NS}"><ofd:CommonData>'
            f"<ofd:MaxUnitID>{max_id}</ofd:MaxUnitID>"
            f"<ofd:PageArea><ofd:PhysicalBox>0 0 {_num(PAGE_WIDTH)} {_num(PAGE_HEIGHT)}</ofd:PhysicalBox></ofd:PageArea>"
            "<ofd:PublicRes>PublicRes.xml</ofd:PublicRes><ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes>"
            f'</ofd:CommonData><ofd:Pages><ofd:Page ID="{page_id}" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages>'
            "</ofd:Document>"
        ),
        "Doc_0/PublicRes.xml": _xml(f'<ofd:Res xmlns:ofd="{NS}" BaseLoc="Res"><ofd:Fonts>{font_xml}</ofd:Fonts></ofd:Res>'),
        "Doc_0/DocumentRes.xml": _xml(
            f'<ofd:Res xmlns:ofd="{NS}" BaseLoc="Res"><ofd:MultiMedias>'
            f'<ofd:MultiMedia ID="{media_id}" Type="Image" Format="PNG"><ofd:MediaFile>qr_{media_id}.png</ofd:MediaFile>'
            "</ofd:MultiMedia></ofd:MultiMedias></ofd:Res>"
        ),
        "Doc_0/Pages/Page_0/Content.xml": _xml(
            f'<ofd:Page xmlns:ofd="{NS}"><ofd:Content><ofd:Layer ID="{layer_id}" Type="Body">'
            + "".join(page.objects)
            + "</ofd:Layer></ofd:Content></ofd:Page>"
        ),
        f"Doc_0/Res/qr_{media_id}.png": qr_png(qr),
    }
    if font_file is not None:
        files[f"Doc_0/Res/font_{font_id}.ttf"] = font_file
    return OfdCopy(files=tuple(files.items()), page_id=str(page_id))


def package(files: Iterable[tuple[str, bytes]], *, created: datetime) -> bytes:
    """The ZIP container of an OFD (deflated; each entry dated `created`)."""
    out = io.BytesIO()
    stamp = created.timetuple()[:6]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return out.getvalue()
