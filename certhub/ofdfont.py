"""The Chinese font an OFD certificate copy embeds: a subset of a CJK TrueType font, only the glyphs the page uses.

GB/T 33190 lets a document name a font without its file (the reader substitutes one of its own), but a copy
must look the same in every reader, so the hub embeds the glyphs it draws. The source font is a TrueType (or
TrueType collection) file with TrueType outlines: ``GOVHUB_OFD_FONT`` if set, otherwise the first of
:data:`KNOWN_FONTS` present (Debian's ``fonts-wqy-zenhei`` installs the first). It is read once per process;
each glyph's outline is decomposed once and kept, so each copy only assembles a small font of its characters
(and the recent subsets are kept by their set of characters, so copies printing the same characters share one).
Without any font, copies name the font without a file (:func:`subset` returns None) and say so in the log.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable
from fontTools.ttLib.tables._g_l_y_f import Glyph as TTGlyph

log = logging.getLogger(__name__)

KNOWN_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",
)
SUBSETS_KEPT = 256  # subsets kept per font, the least recently used dropped first (each a few kilobytes)
# Always in a subset: the alphabet of identifiers, codes and dates (2 KB more), so that copies differing only in
# those (every copy has its own identifier) share one subset.
ALWAYS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-:./")
FAMILY = "GovhubCJK"  # the embedded subset's family name (the file is ours: a subset, not the original font)


@dataclass(frozen=True)
class Glyph:
    """One glyph, decomposed (no components) and compiled once: its glyf data, metrics and bounds."""

    data: bytes
    advance: int  # in font units
    bounds: tuple[int, int, int, int]  # xMin, yMin, xMax, yMax (all 0 for an empty glyph)
    points: int
    contours: int

    @classmethod
    def of(cls, glyph: Any, advance: int) -> Glyph:
        glyph.recalcBounds(None)
        empty = glyph.numberOfContours == 0
        data = b"" if empty else bytes(glyph.compile(None, recalcBBoxes=False))
        bounds = (0, 0, 0, 0) if empty else (glyph.xMin, glyph.yMin, glyph.xMax, glyph.yMax)
        points = 0 if empty else len(glyph.coordinates)
        return cls(data, advance, bounds, points, max(glyph.numberOfContours, 0))


class FontSource:
    """One source font, read on first use; glyphs decomposed once and cached (thread-safe)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._font: TTFont | None = None
        self._cmap: dict[int, str] = {}
        self._glyphs: dict[str, Glyph] = {}
        self._subsets: OrderedDict[str, bytes] = OrderedDict()
        self._advances: dict[str, float] = {}  # by character, in ems (a dict's get and set are atomic)
        self.units_per_em = 1000
        self.ascent = 800
        self.descent = -200
        self.created = 0
        self.name = Path(path).stem

    def _load(self) -> TTFont:
        if self._font is None:
            font = TTFont(self.path, fontNumber=0, lazy=True)
            if "glyf" not in font:
                raise ValueError(f"the font {self.path} has no TrueType outlines (glyf); use a TrueType font")
            self._cmap = font.getBestCmap()
            self.units_per_em = int(font["head"].unitsPerEm)
            self.ascent = int(font["hhea"].ascent)
            self.descent = int(font["hhea"].descent)
            self.name = str(font["name"].getDebugName(1) or self.name)
            self.created = int(font["head"].created)  # the subset is dated as the font it comes from
            self._font = font
        return self._font

    def glyph(self, char: str) -> Glyph | None:
        """The decomposed outline and advance of `char`; None when the font lacks it."""
        with self._lock:
            font = self._load()
            name = self._cmap.get(ord(char))
            if name is None:
                return None
            found = self._glyphs.get(name)
            if found is None:
                glyph_set = font.getGlyphSet()
                pen = TTGlyphPen(glyph_set)
                glyph_set[name].draw(pen)
                found = self._glyphs[name] = Glyph.of(pen.glyph(), int(glyph_set[name].width))
            return found

    def advance(self, char: str) -> float:
        """The advance of `char` in ems (a missing character takes one em, the width of the box drawn for it)."""
        found = self._advances.get(char)
        if found is None:
            glyph = self.glyph(char)
            found = self._advances[char] = glyph.advance / self.units_per_em if glyph else 1.0
        return found

    def subset(self, chars: str) -> bytes:
        """A TrueType font holding exactly the glyphs of `chars` (and .notdef), mapped by Unicode.

        The glyphs go in as compiled once (:class:`Glyph`), so the font's bounds and maxp figures are summed here
        rather than recomputed by expanding every glyph again. The last :data:`SUBSETS_KEPT` subsets made are kept,
        keyed by their set of characters (with :data:`ALWAYS`): copies of one type that print the same characters
        besides their codes share one."""
        key = "".join(sorted(ALWAYS.union(chars)))
        with self._lock:
            found = self._subsets.get(key)
            if found is not None:
                self._subsets.move_to_end(key)
                return found
        made = self._subset(key)
        with self._lock:
            self._subsets[key] = made
            while len(self._subsets) > SUBSETS_KEPT:
                self._subsets.popitem(last=False)
        return made

    def _subset(self, chars: str) -> bytes:
        with self._lock:
            self._load()
            notdef = self._notdef()
        glyphs: dict[str, Glyph] = {".notdef": notdef}
        cmap: dict[int, str] = {}
        for char in sorted(set(chars)):
            found = self.glyph(char)
            if found is None:
                continue
            name = f"uni{ord(char):04X}"
            glyphs[name] = found
            cmap[ord(char)] = name
        builder = FontBuilder(font=TTFont(recalcBBoxes=False, recalcTimestamp=False))
        builder.isTTF = True
        builder.setupHead(unitsPerEm=self.units_per_em, created=self.created, modified=self.created)
        builder.setupGlyphOrder(list(glyphs))
        builder.setupCharacterMap(cmap)
        glyf = newTable("glyf")  # not setupGlyf: that expands every glyph again to look for cubic curves
        glyf.glyphs = {name: TTGlyph(glyph.data) for name, glyph in glyphs.items()}
        glyf.glyphOrder = list(glyphs)
        builder.font["loca"] = newTable("loca")
        builder.font["glyf"] = glyf
        builder.setupHorizontalMetrics({name: (glyph.advance, glyph.bounds[0]) for name, glyph in glyphs.items()})
        builder.setupHorizontalHeader(ascent=self.ascent, descent=self.descent)
        builder.setupNameTable({"familyName": FAMILY, "styleName": "Regular"})
        builder.setupOS2(
            sTypoAscender=self.ascent,
            sTypoDescender=self.descent,
            usWinAscent=self.ascent,
            usWinDescent=-self.descent,
        )
        builder.setupPost()
        builder.setupMaxp()
        drawn = [g.bounds for g in glyphs.values() if g.data]
        head, maxp, hhea = builder.font["head"], builder.font["maxp"], builder.font["hhea"]
        head.xMin, head.yMin = min(b[0] for b in drawn), min(b[1] for b in drawn)
        head.xMax, head.yMax = max(b[2] for b in drawn), max(b[3] for b in drawn)
        maxp.maxPoints = max(g.points for g in glyphs.values())
        maxp.maxContours = max(g.contours for g in glyphs.values())
        hhea.advanceWidthMax = max(g.advance for g in glyphs.values())
        hhea.minLeftSideBearing = min(b[0] for b in drawn)
        hhea.minRightSideBearing = min(g.advance - g.bounds[2] for g in glyphs.values() if g.data)
        hhea.xMaxExtent = max(b[2] for b in drawn)
        out = io.BytesIO()
        builder.save(out)
        return out.getvalue()

    def _notdef(self) -> Glyph:
        if ".notdef" not in self._glyphs:
            self._glyphs[".notdef"] = Glyph.of(_box(self.units_per_em), self.units_per_em)
        return self._glyphs[".notdef"]


def _box(units: int) -> Any:
    """.notdef: an empty box, drawn for a character the font lacks."""
    pen = TTGlyphPen(None)
    inset, top = units // 10, units * 8 // 10
    outer = ((inset, 0), (inset, top), (units - inset, top), (units - inset, 0))  # clockwise: filled
    inner = ((inset * 2, inset), (units - inset * 2, inset), (units - inset * 2, top - inset), (inset * 2, top - inset))
    for contour in (outer, inner):  # the inner one runs the other way: a hole
        pen.moveTo(contour[0])
        for point in contour[1:]:
            pen.lineTo(point)
        pen.closePath()
    return pen.glyph()


_sources: dict[str, FontSource | None] = {}
_sources_lock = threading.Lock()


def source(configured: str | None = None) -> FontSource | None:
    """The font copies embed: `configured` (GOVHUB_OFD_FONT) or the first known font found; None if none."""
    key = configured or ""
    with _sources_lock:
        if key not in _sources:
            candidates = [configured] if configured else list(KNOWN_FONTS)
            path = next((p for p in candidates if p and Path(p).is_file()), None)
            if path is None:
                log.warning(
                    "no CJK TrueType font found (%s): OFD copies will name their font without embedding it",
                    configured or ", ".join(KNOWN_FONTS),
                )
            _sources[key] = FontSource(path) if path else None
        return _sources[key]
