"""Sealing an OFD document (GB/T 33190 §18): the package gains one more seal signature.

What the sealed package holds beside the original files (which keep their bytes, so the signatures already in it
stay intact):

* ``OFD.xml``: the document's ``DocBody`` names its ``Signatures`` file (added only when it names none yet);
* ``Doc_0/Signs/Signatures.xml``: the list of the document's signatures, with the new one and ``MaxSignId``;
* ``Doc_0/Signs/Sign_N/Signature.xml``: ``SignedInfo`` (``Provider``, ``SignatureMethod`` SM2 with SM3,
  ``SignatureDateTime``, ``References`` with the SM3 ``CheckValue`` of every file of the package except this
  signature's own files and the list of signatures, ``StampAnnot`` where the seal picture sits, ``Seal`` naming
  the seal file) and ``SignedValue`` naming the seal signature;
* ``Sign_N/Seal.esl``: the DER ``SESeal``; ``Sign_N/SignedValue.dat``: the DER ``SES_Signature`` whose
  ``dataHash`` is the SM3 of the ``Signature.xml`` file's bytes (which are written once and never touched again).

This module knows nothing of the database: the caller hands it the seal's DER and a function that makes the
seal signature over the ``Signature.xml`` bytes (``seal/sealing.py`` ``seal_ofd`` does, after the use checks).
Positions are in millimetres from the page's top left corner (OFD's page space: x to the right, y downwards).
"""

from __future__ import annotations

import base64
import math
import posixpath
import re
import struct
import threading
import time
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape, quoteattr

from seal import keys, ofd, sesder

OFD_NS = "http://www.ofdspec.org/2016"
SIGNATURE_METHOD = sesder.SM2_SM3  # 1.2.156.10197.1.501
CHECK_METHOD = ofd.SM3_OID  # 1.2.156.10197.1.401
PROVIDER_NAME = "govhub"
MARGIN_MM = 20.0  # the default position: the bottom right corner, this far from the page's edges
MIN_SIZE_MM, MAX_SIZE_MM = 5.0, 300.0
A4 = (0.0, 0.0, 210.0, 297.0)  # the page box when neither the page nor the document gives one

STORED_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".zip", ".ofd")  # compressed already: stored, not deflated
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Makes the DER SES_Signature over the Signature.xml bytes; the second argument is the propertyInfo to sign
# (the Signature.xml's location in the package, as the OFD producers write it).
SignValue = Callable[[bytes, str], bytes]


@dataclass(frozen=True)
class OfdSealing:
    """The sealed package and where its new signature sits."""

    data: bytes
    signature_id: str  # the ID in Signatures.xml
    signature_path: str  # e.g. Doc_0/Signs/Sign_1/Signature.xml
    signed_value: bytes  # the DER SES_Signature (SignedValue.dat)
    signature_xml: bytes  # the Signature.xml bytes the seal signature covers
    page_id: str  # the PageRef of the StampAnnot
    boundary: tuple[float, float, float, float]  # x, y, width, height in mm
    references: int  # how many files the signature protects


@dataclass(frozen=True)
class _Page:
    id: str
    path: str
    box: tuple[float, float, float, float]  # x, y, width, height (mm): the document's PageArea


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: Element | None, name: str) -> Element | None:
    if elem is None:
        return None
    return next((c for c in elem if _local(c.tag) == name), None)


def _text(elem: Element | None) -> str | None:
    if elem is None or elem.text is None:
        return None
    return elem.text.strip() or None


def _box(text: str | None, where: str) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = [float(part) for part in text.replace(",", " ").split()]
    except ValueError as exc:
        raise ofd.OfdError(f"{where}: the box {text!r} is not four numbers") from exc
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
        raise ofd.OfdError(f"{where}: the box {text!r} is not four numbers x y width height")
    return values[0], values[1], values[2], values[3]


def _page_area(elem: Element | None, where: str) -> tuple[float, float, float, float] | None:
    return _box(_text(_child(elem, "PhysicalBox")), where)


def _pages(package: ofd.Package, doc_root: str) -> list[_Page]:
    document = package.xml(doc_root)
    if _local(document.tag) != "Document":
        raise ofd.OfdError(f"{doc_root}'s root is {_local(document.tag)}, not Document")
    default = _page_area(_child(_child(document, "CommonData"), "PageArea"), doc_root)
    pages_elem = _child(document, "Pages")
    listed = [p for p in pages_elem if _local(p.tag) == "Page"] if pages_elem is not None else []
    pages: list[_Page] = []
    for index, item in enumerate(listed):
        page_id = (item.get("ID") or "").strip()
        if not page_id:
            raise ofd.OfdError(f"page {index} in {doc_root} has no ID")
        loc = item.get("BaseLoc") or ""
        path = ofd.locate(package, doc_root, loc) if loc else None
        if path is None or not package.has(path):
            raise ofd.OfdError(f"the content {loc!r} of page {index} that {doc_root} names is not in the package")
        pages.append(_Page(id=page_id, path=path, box=default or A4))
    return pages


def _page_box(package: ofd.Package, page: _Page) -> tuple[float, float, float, float]:
    """The page's own PhysicalBox (its Area), else the document's."""
    content = package.xml(page.path)
    return _page_area(_child(content, "Area"), page.path) or page.box


def _number(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _sign_id(value: str | None) -> int:
    match = re.search(r"(\d+)$", (value or "").strip())
    return int(match.group(1)) if match else 0


def _placement(
    box: tuple[float, float, float, float],
    *,
    x_mm: float | None,
    y_mm: float | None,
    width_mm: float,
    height_mm: float,
    page: int,
) -> tuple[float, float, float, float]:
    px, py, pw, ph = box
    if x_mm is None and y_mm is None:
        return max(px, px + pw - width_mm - MARGIN_MM), max(py, py + ph - height_mm - MARGIN_MM), width_mm, height_mm
    if x_mm is None or y_mm is None:
        raise ofd.OfdError("give both x_mm and y_mm (the seal picture's top left corner), or neither")
    if not (math.isfinite(x_mm) and math.isfinite(y_mm)):
        raise ofd.OfdError("x_mm and y_mm must be finite numbers")
    if x_mm < px or y_mm < py or x_mm + width_mm > px + pw + 1e-6 or y_mm + height_mm > py + ph + 1e-6:
        raise ofd.OfdError(
            f"the seal picture ({_number(width_mm)} x {_number(height_mm)} mm at x={_number(x_mm)}, y={_number(y_mm)}) "
            f"does not fit on page {page}, which is {_number(pw)} x {_number(ph)} mm"
        )
    return x_mm, y_mm, width_mm, height_mm


def _signatures_xml(entries: list[dict[str, str]], max_id: int) -> bytes:
    items = "".join("<ofd:Signature" + "".join(f" {k}={quoteattr(v)}" for k, v in entry.items()) + "/>" for entry in entries)
    body = f'<ofd:Signatures xmlns:ofd="{OFD_NS}"><ofd:MaxSignId>{max_id}</ofd:MaxSignId>{items}</ofd:Signatures>'
    return XML_DECLARATION + body.encode()


def _with_signatures(ofd_xml: bytes, loc: str) -> bytes:
    """OFD.xml with the first DocBody naming its Signatures file (the last child its schema allows)."""
    match = re.search(rb"</([A-Za-z_][\w.\-]*:)?DocBody\s*>", ofd_xml)
    if match is None:
        raise ofd.OfdError("OFD.xml's DocBody cannot be extended (no closing DocBody tag)")
    prefix = match.group(1) or b""
    element = b"<" + prefix + b"Signatures>" + escape(loc).encode() + b"</" + prefix + b"Signatures>"
    return ofd_xml[: match.start()] + element + ofd_xml[match.start() :]


@cache
def _version() -> str:
    try:
        return metadata.version("govhub")
    except metadata.PackageNotFoundError:
        return "0"


def _signature_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signature_xml(
    *,
    at: datetime,
    provider_version: str | None,
    digests: list[tuple[str, bytes]],
    annot_id: int,
    page_id: str,
    boundary: tuple[float, float, float, float],
    seal_loc: str,
    value_loc: str,
) -> bytes:
    version = provider_version or _version()
    provider = f"<ofd:Provider ProviderName={quoteattr(PROVIDER_NAME)} Version={quoteattr(version)}/>"
    references = "".join(
        f"<ofd:Reference FileRef={quoteattr('/' + path)}><ofd:CheckValue>{base64.b64encode(value).decode()}"
        "</ofd:CheckValue></ofd:Reference>"
        for path, value in digests
    )
    stamp = (
        f"<ofd:StampAnnot ID={quoteattr(str(annot_id))} PageRef={quoteattr(page_id)} "
        f"Boundary={quoteattr(' '.join(_number(v) for v in boundary))}/>"
    )
    body = (
        f'<ofd:Signature xmlns:ofd="{OFD_NS}"><ofd:SignedInfo>{provider}'
        f"<ofd:SignatureMethod>{SIGNATURE_METHOD}</ofd:SignatureMethod>"
        f"<ofd:SignatureDateTime>{_signature_time(at)}</ofd:SignatureDateTime>"
        f'<ofd:References CheckMethod="{CHECK_METHOD}">{references}</ofd:References>{stamp}'
        f"<ofd:Seal><ofd:BaseLoc>{escape('/' + seal_loc)}</ofd:BaseLoc></ofd:Seal></ofd:SignedInfo>"
        f"<ofd:SignedValue>{escape('/' + value_loc)}</ofd:SignedValue></ofd:Signature>"
    )
    return XML_DECLARATION + body.encode()


def seal_package(
    data: bytes,
    *,
    seal_der: bytes,
    sign_value: SignValue,
    at: datetime,
    page: int = 0,
    x_mm: float | None = None,
    y_mm: float | None = None,
    width_mm: float,
    height_mm: float,
    provider_version: str | None = None,
    limits: ofd.Limits | None = None,
) -> OfdSealing:
    """Add a seal signature to the OFD package `data` (its first document) and return the sealed package.

    `page` is the index of the page (0 = the first) in Document.xml's Pages; `x_mm`, `y_mm` the seal picture's
    top left corner (both None: the bottom right corner of the page); `width_mm` x `height_mm` its size. The
    package is read under `limits` (:class:`seal.ofd.Package`); every problem with it, the page or the position
    is an :class:`seal.ofd.OfdError` saying what was wrong, raised before `sign_value` is called."""
    package = ofd.Package(data, limits)
    if not package.has("OFD.xml"):
        raise ofd.OfdError("the package has no OFD.xml: it is not an OFD document")
    root = package.xml("OFD.xml")
    if _local(root.tag) != "OFD":
        raise ofd.OfdError(f"OFD.xml's root is {_local(root.tag)}, not OFD")
    body = _child(root, "DocBody")
    if body is None:
        raise ofd.OfdError("OFD.xml has no DocBody")
    doc_loc = _text(_child(body, "DocRoot"))
    doc_root = ofd.locate(package, "OFD.xml", doc_loc) if doc_loc else None
    if doc_root is None or not package.has(doc_root):
        raise ofd.OfdError(f"the document {doc_loc!r} that OFD.xml names (DocRoot) is not in the package")
    _check_size(width_mm, height_mm)
    pages = _pages(package, doc_root)
    if not pages:
        raise ofd.OfdError(f"{doc_root} lists no page to put the seal on")
    if not 0 <= page < len(pages):
        raise ofd.OfdError(f"the document has {len(pages)} page(s) (0 to {len(pages) - 1}); there is no page {page}")
    boundary = _placement(
        _page_box(package, pages[page]), x_mm=x_mm, y_mm=y_mm, width_mm=width_mm, height_mm=height_mm, page=page
    )

    # The list of signatures: the one OFD.xml names, or a new one beside the document.
    files: dict[str, bytes] = {}
    listing_loc = _text(_child(body, "Signatures"))
    entries: list[dict[str, str]] = []
    max_id = 0
    if listing_loc is not None:
        listing_path = ofd.locate(package, "OFD.xml", listing_loc)
        if listing_path is None or not package.has(listing_path):
            raise ofd.OfdError(f"the Signatures file {listing_loc} that OFD.xml names is not in the package")
        listing = package.xml(listing_path)
        if _local(listing.tag) != "Signatures":
            raise ofd.OfdError(f"{listing_path}'s root is {_local(listing.tag)}, not Signatures")
        for item in listing:
            if _local(item.tag) == "MaxSignId":
                max_id = max(max_id, _sign_id(item.text))
            elif _local(item.tag) == "Signature":
                entries.append({k: v for k, v in item.attrib.items() if k in ("ID", "Type", "BaseLoc")})
                max_id = max(max_id, _sign_id(item.get("ID")))
        ofd_xml = package.read("OFD.xml")
    else:
        listing_path = posixpath.join(posixpath.dirname(doc_root), "Signs", "Signatures.xml")
        if package.has(listing_path):
            raise ofd.OfdError(f"{listing_path} is in the package but OFD.xml does not name it")
        ofd_xml = _with_signatures(package.read("OFD.xml"), "/" + listing_path)
        ofd.parse_xml(ofd_xml, "OFD.xml")  # still well-formed
    files["OFD.xml"] = ofd_xml

    return _sign(
        names=package.names(),
        read=package.read,
        folders=package.folders(),
        changed=files,
        listing_path=listing_path,
        entries=entries,
        max_id=max_id,
        page_id=pages[page].id,
        boundary=boundary,
        seal_der=seal_der,
        sign_value=sign_value,
        at=at,
        provider_version=provider_version,
    )


@dataclass(frozen=True)
class WrittenOfd:
    """An OFD package this process has just made, as its files (in package order, not yet zipped), with what its
    maker knows of it: its one document (`doc_root`, e.g. Doc_0/Document.xml, which names no signatures yet) and
    the id and box (x, y, width, height in mm) of the page the seal goes on.

    It is trusted: :func:`seal_written` seals it without reading it back through the safe reader
    (:class:`seal.ofd.Package`, for packages from outside), and still protects every file by its SM3 digest."""

    files: tuple[tuple[str, bytes], ...]
    doc_root: str
    page_id: str
    page_box: tuple[float, float, float, float]


def seal_written(
    written: WrittenOfd,
    *,
    seal_der: bytes,
    sign_value: SignValue,
    at: datetime,
    x_mm: float | None = None,
    y_mm: float | None = None,
    width_mm: float,
    height_mm: float,
    provider_version: str | None = None,
) -> OfdSealing:
    """Add a seal signature to a package this process has just written (:class:`WrittenOfd`): the same sealed
    package :func:`seal_package` makes of its ZIP, without unpacking and parsing it again. A placement off the
    page or a package that already lists signatures is an :class:`seal.ofd.OfdError`, raised before signing."""
    _check_size(width_mm, height_mm)
    contents = dict(written.files)
    if "OFD.xml" not in contents or written.doc_root not in contents:
        raise ofd.OfdError(f"the package has no OFD.xml or no {written.doc_root}")
    listing_path = posixpath.join(posixpath.dirname(written.doc_root), "Signs", "Signatures.xml")
    if listing_path in contents:
        raise ofd.OfdError(f"{listing_path} is in the package already: seal it as a document from outside")
    boundary = _placement(written.page_box, x_mm=x_mm, y_mm=y_mm, width_mm=width_mm, height_mm=height_mm, page=0)
    return _sign(
        names=[name for name, _ in written.files],
        read=contents.__getitem__,
        folders=[],
        changed={"OFD.xml": _with_signatures(contents["OFD.xml"], "/" + listing_path)},
        listing_path=listing_path,
        entries=[],
        max_id=0,
        page_id=written.page_id,
        boundary=boundary,
        seal_der=seal_der,
        sign_value=sign_value,
        at=at,
        provider_version=provider_version,
    )


def _check_size(width_mm: float, height_mm: float) -> None:
    if not (math.isfinite(width_mm) and math.isfinite(height_mm)) or not (
        MIN_SIZE_MM <= width_mm <= MAX_SIZE_MM and MIN_SIZE_MM <= height_mm <= MAX_SIZE_MM
    ):
        raise ofd.OfdError(f"the seal picture must be {_number(MIN_SIZE_MM)} to {_number(MAX_SIZE_MM)} mm wide and high")


def _sign(
    *,
    names: list[str],
    read: Callable[[str], bytes],
    folders: list[str],
    changed: dict[str, bytes],
    listing_path: str,
    entries: list[dict[str, str]],
    max_id: int,
    page_id: str,
    boundary: tuple[float, float, float, float],
    seal_der: bytes,
    sign_value: SignValue,
    at: datetime,
    provider_version: str | None,
) -> OfdSealing:
    """The new signature's files, its References over every file (each read and hashed once), the seal signature
    over Signature.xml, and the sealed package written."""
    files = changed
    signs_dir = posixpath.dirname(listing_path)
    number = 0
    while any(name.startswith(posixpath.join(signs_dir, f"Sign_{number}") + "/") for name in names):
        number += 1
    sign_dir = posixpath.join(signs_dir, f"Sign_{number}")
    signature_path = f"{sign_dir}/Signature.xml"
    seal_path = f"{sign_dir}/Seal.esl"
    value_path = f"{sign_dir}/SignedValue.dat"
    signature_id, annot_id = max_id + 1, max_id + 2
    entries.append({"ID": str(signature_id), "Type": "Seal", "BaseLoc": "/" + signature_path})
    files[listing_path] = _signatures_xml(entries, annot_id)

    # Every file of the package as it will be, except the list of signatures (which the next signature changes)
    # and this signature's own files.
    order = [n for n in names if n != listing_path]
    contents = {name: files[name] if name in files else read(name) for name in names}  # each file read once
    digests = [(name, keys.digest(keys.SM2, contents[name])) for name in order]
    signature_xml = _signature_xml(
        at=at,
        provider_version=provider_version,
        digests=digests,
        annot_id=annot_id,
        page_id=page_id,
        boundary=boundary,
        seal_loc=seal_path,
        value_loc=value_path,
    )
    signed_value = sign_value(signature_xml, "/" + signature_path)

    members: list[tuple[str, bytes]] = [(folder, b"") for folder in folders]
    members += [(name, contents[name]) for name in names]
    written = set(names)
    for name, body_bytes in (
        (listing_path, files[listing_path]),
        (seal_path, seal_der),
        (signature_path, signature_xml),
        (value_path, signed_value),
    ):
        if name not in written:
            members.append((name, body_bytes))
    data = write_zip(members)
    return OfdSealing(
        data=data,
        signature_id=str(signature_id),
        signature_path=signature_path,
        signed_value=signed_value,
        signature_xml=signature_xml,
        page_id=page_id,
        boundary=boundary,
        references=len(digests),
    )


def _compression(name: str) -> int:
    """Files compressed already (pictures, ZIP-based formats) are stored as they are; the rest deflated."""
    return zipfile.ZIP_STORED if name.lower().endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED


# ---------------------------------------------------------------- the ZIP container
#
# Written here rather than by zipfile so that a large file the process packs again and again (a copy's font
# subset, shared by the copies printing the same characters) is deflated once: its CRC and deflated bytes are
# kept by its bytes (DEFLATED_KEPT of them, each at least DEFLATE_KEPT_FROM bytes; a pure function of the bytes,
# never stale). The entries are what zipfile writes (deflated at its default level, dated now, local time).

DEFLATED_KEPT = 64
DEFLATE_KEPT_FROM = 4096
_deflated: OrderedDict[bytes, tuple[int, bytes]] = OrderedDict()
_deflated_lock = threading.Lock()


def _deflate(data: bytes) -> tuple[int, bytes]:
    if len(data) >= DEFLATE_KEPT_FROM:
        with _deflated_lock:
            found = _deflated.get(data)
            if found is not None:
                _deflated.move_to_end(data)
                return found
    packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    made = zlib.crc32(data), packer.compress(data) + packer.flush()
    if len(data) >= DEFLATE_KEPT_FROM:
        with _deflated_lock:
            _deflated[data] = made
            while len(_deflated) > DEFLATED_KEPT:
                _deflated.popitem(last=False)
    return made


def write_zip(entries: list[tuple[str, bytes]]) -> bytes:
    """A ZIP archive of `entries` (name, bytes; a name ending in / is a folder): files compressed already
    (:data:`STORED_SUFFIXES`) stored, the rest deflated. No ZIP64: an OFD package is far below its limits."""
    if len(entries) > 0xFFFF:
        raise ofd.OfdError("too many files for one package")
    now = time.localtime()
    dos_time = now.tm_hour << 11 | now.tm_min << 5 | now.tm_sec // 2
    dos_date = (now.tm_year - 1980) << 9 | now.tm_mon << 5 | now.tm_mday
    out: list[bytes] = []
    directory: list[bytes] = []
    offset = 0
    for name, data in entries:
        encoded = name.encode("ascii", "ignore")
        flags = 0
        if len(encoded) != len(name):  # a name beyond ASCII: UTF-8, said by bit 11
            encoded, flags = name.encode(), 0x800
        folder = name.endswith("/")
        if folder or _compression(name) == zipfile.ZIP_STORED:
            method, crc, packed = zipfile.ZIP_STORED, zlib.crc32(data), data
        else:
            method = zipfile.ZIP_DEFLATED
            crc, packed = _deflate(data)
        if offset + len(packed) + len(data) > 0xFFFFFFFF:
            raise ofd.OfdError("the sealed package would be too large")
        attributes = (0o40775 << 16 | 0x10) if folder else 0o600 << 16
        fields = (20, flags, method, dos_time, dos_date, crc, len(packed), len(data), len(encoded))
        out.append(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields, 0) + encoded)
        out.append(packed)
        directory.append(
            struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 3 << 8 | 20, *fields, 0, 0, 0, 0, attributes, offset) + encoded
        )
        offset += 30 + len(encoded) + len(packed)
    central = b"".join(directory)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), offset, 0)
    return b"".join(out) + central + end
