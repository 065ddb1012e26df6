"""Reading an OFD document (GB/T 33190) safely, and the seal signatures it carries (GB/T 33190 §18).

An OFD is a ZIP package of XML files and resources. What comes from outside is read under limits: the number
of entries, each entry's and the total uncompressed size, the compression ratio (zip bombs); entry names with
``..``, absolute paths, backslashes or drive letters are refused, so are duplicate names and truncated or
corrupt archives. XML is parsed with ``defusedxml`` with DTDs forbidden (no external entities, no entity
expansion). Every refusal is an :class:`OfdError` whose message says what was wrong.

The signatures: ``OFD.xml`` → ``DocBody`` → ``Signatures`` → ``Signatures.xml`` → each ``Signature.xml``:
its ``SignedInfo`` (provider, signature method and time, ``References`` with their check method and each
file's ``CheckValue``, ``StampAnnot``, the seal file) and ``SignedValue`` (the DER ``SES_Signature`` whose
signed data is the ``Signature.xml`` file itself). Locations starting with ``/`` are from the package root;
others are relative to the folder of the file that names them (then, as some producers write them, to the root).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import lzma
import posixpath
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from seal import keys

MAX_ENTRIES = 5000
MAX_ENTRY_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed, per entry (text compresses ~10x; a bomb 1000x and more)
RATIO_FLOOR = 64 * 1024  # entries smaller than this are not held to the ratio
MAX_XML_BYTES = 8 * 1024 * 1024

SM3_OID = "1.2.156.10197.1.401"
SHA256_OID = "2.16.840.1.101.3.4.2.1"
# CheckMethod as producers write it: the OID (GM/T 0006), sometimes with an arc after it, or a name.
CHECK_METHODS = {"sm3": "SM3", SM3_OID: "SM3", "sha256": "SHA-256", "sha-256": "SHA-256", SHA256_OID: "SHA-256"}


UNREADABLE = (zipfile.BadZipFile, EOFError, ValueError, OSError)


class OfdError(ValueError):
    """The file is not an OFD this hub reads safely; the message says why."""


@dataclass(frozen=True)
class Limits:
    entries: int = MAX_ENTRIES
    entry_bytes: int = MAX_ENTRY_BYTES
    total_bytes: int = MAX_TOTAL_BYTES
    ratio: int = MAX_RATIO


def _bad_name(name: str) -> str | None:
    if "\\" in name:
        return "a backslash"
    if name.startswith("/"):
        return "an absolute path"
    if "\x00" in name:
        return "a NUL character"
    first = name.split("/", 1)[0]
    if len(first) >= 2 and first[1] == ":":
        return "a drive letter"
    if ".." in name.split("/"):
        return "a '..' component"
    return None


class Package:
    """The entries of an OFD's ZIP, read on demand within the limits."""

    def __init__(self, data: bytes, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (*UNREADABLE, zipfile.LargeZipFile, NotImplementedError) as exc:
            raise OfdError(f"the file is not a readable OFD package (ZIP): {exc}") from exc
        if len(infos) > self.limits.entries:
            raise OfdError(f"the OFD package has {len(infos)} entries; at most {self.limits.entries} are accepted")
        self._infos: dict[str, zipfile.ZipInfo] = {}
        declared = 0
        for info in infos:
            problem = _bad_name(info.filename)
            if problem:
                raise OfdError(f"the OFD package has an entry name with {problem}: {info.filename!r}")
            if info.filename in self._infos:
                raise OfdError(f"the OFD package has two entries named {info.filename!r}")
            if info.file_size > self.limits.entry_bytes:
                raise OfdError(
                    f"the entry {info.filename!r} unpacks to {info.file_size} bytes; "
                    f"at most {self.limits.entry_bytes} are accepted"
                )
            if info.file_size > RATIO_FLOOR and info.file_size > self.limits.ratio * max(info.compress_size, 1):
                raise OfdError(
                    f"the entry {info.filename!r} is compressed {info.file_size // max(info.compress_size, 1)} to 1 "
                    f"(at most {self.limits.ratio} to 1 is accepted): a zip bomb"
                )
            declared += info.file_size
            self._infos[info.filename] = info
        if declared > self.limits.total_bytes:
            raise OfdError(f"the OFD package unpacks to {declared} bytes; at most {self.limits.total_bytes} are accepted")
        self._read: dict[str, bytes] = {}
        self._total = 0

    def names(self) -> list[str]:
        return [name for name in self._infos if not name.endswith("/")]

    def folders(self) -> list[str]:
        """The folder entries some producers write (names ending with ``/``)."""
        return [name for name in self._infos if name.endswith("/")]

    def has(self, path: str) -> bool:
        return path in self._infos and not path.endswith("/")

    def read(self, path: str) -> bytes:
        """The bytes of the entry at `path` (no leading slash), counted against the limits as they unpack."""
        if path in self._read:
            return self._read[path]
        info = self._infos.get(path)
        if info is None or path.endswith("/"):
            raise OfdError(f"the OFD package has no file {path}")
        chunks = []
        size = 0
        try:
            with self._zip.open(info) as entry:
                while chunk := entry.read(64 * 1024):
                    size += len(chunk)
                    if size > min(self.limits.entry_bytes, info.file_size) or self._total + size > self.limits.total_bytes:
                        raise OfdError(f"the entry {path!r} unpacks to more than it declares or the limits allow")
                    chunks.append(chunk)
        except (*UNREADABLE, NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError) as exc:
            raise OfdError(f"the entry {path!r} cannot be read (truncated or corrupt archive): {exc}") from exc
        self._total += size
        self._read[path] = data = b"".join(chunks)
        return data

    def xml(self, path: str) -> Element:
        data = self.read(path)
        if len(data) > MAX_XML_BYTES:
            raise OfdError(f"{path} is {len(data)} bytes of XML; at most {MAX_XML_BYTES} are accepted")
        return parse_xml(data, path)


def parse_xml(data: bytes, where: str) -> Element:
    """XML without DTDs: no external entities, no entity expansion (billion laughs)."""
    try:
        root: Element = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise OfdError(f"{where} declares a DTD or entities, which an OFD may not ({type(exc).__name__})") from exc
    except (ParseError, ValueError, LookupError) as exc:  # LookupError: an unknown declared encoding
        raise OfdError(f"{where} is not well-formed XML: {exc}") from exc
    return root


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: Element, name: str) -> Element | None:
    return next((c for c in elem if _local(c.tag) == name), None)


def _children(elem: Element, name: str) -> list[Element]:
    return [c for c in elem if _local(c.tag) == name]


def _text(elem: Element | None) -> str | None:
    if elem is None or elem.text is None:
        return None
    return elem.text.strip() or None


def resolve(base: str, loc: str) -> str | None:
    """The package path `loc` names from the file at `base`; None when it leaves the package."""
    loc = loc.strip()
    if not loc or "\\" in loc or "\x00" in loc or "://" in loc:
        return None
    joined = loc.lstrip("/") if loc.startswith("/") else posixpath.join(posixpath.dirname(base), loc)
    parts: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or None


def locate(package: Package, base: str, loc: str) -> str | None:
    """Like :func:`resolve`, trying the root too for a relative location that is not beside `base`."""
    path = resolve(base, loc)
    if path is not None and package.has(path):
        return path
    if not loc.startswith("/"):
        from_root = resolve("", loc)
        if from_root is not None and package.has(from_root):
            return from_root
    return path


@dataclass
class Reference:
    file_ref: str
    path: str | None  # None: the reference leaves the package
    check_value: bytes | None  # None: not base64


@dataclass
class OfdSignature:
    """One ``Signature`` listed in a ``Signatures.xml``; `problem` says why it could not be read."""

    id: str | None
    type: str | None
    path: str | None
    problem: str | None = None
    xml: bytes = b""
    provider: dict[str, str] = field(default_factory=dict)
    signature_method: str | None = None
    signature_date_time: str | None = None
    check_method: str | None = None
    references: list[Reference] = field(default_factory=list)
    stamp_annots: list[dict[str, str]] = field(default_factory=list)
    seal_path: str | None = None
    signed_value_path: str | None = None
    signed_value: bytes | None = None


@dataclass
class OfdDocument:
    doc_id: str | None
    signatures: list[OfdSignature]


def hash_name(check_method: str | None) -> str | None:
    """SM3 or SHA-256 for a CheckMethod; None when it is neither. No CheckMethod: SM3 (GB/T 33190's default)."""
    if check_method is None or not check_method.strip():
        return "SM3"
    method = check_method.strip()
    if method.startswith(SM3_OID + "."):
        return "SM3"
    return CHECK_METHODS.get(method.lower()) or CHECK_METHODS.get(method)


def digest(name: str, data: bytes) -> bytes:
    return keys.digest(keys.SM2, data) if name == "SM3" else hashlib.sha256(data).digest()


def _provider(elem: Element | None) -> dict[str, str]:
    if elem is None:
        return {}
    out = {k: v for k, v in elem.attrib.items() if k in ("ProviderName", "Company", "Version")}
    for child in elem:  # some producers write them as elements
        if _local(child.tag) in ("ProviderName", "Company", "Version") and _text(child):
            out[_local(child.tag)] = _text(child) or ""
    return out


def _read_signature(package: Package, sig: OfdSignature) -> None:
    assert sig.path is not None
    sig.xml = package.read(sig.path)
    root = parse_xml(sig.xml, sig.path)
    if _local(root.tag) != "Signature":
        raise OfdError(f"{sig.path} is not a Signature (its root is {_local(root.tag)})")
    info = _child(root, "SignedInfo")
    if info is None:
        raise OfdError(f"{sig.path} has no SignedInfo")
    sig.provider = _provider(_child(info, "Provider"))
    sig.signature_method = _text(_child(info, "SignatureMethod"))
    sig.signature_date_time = _text(_child(info, "SignatureDateTime"))
    refs = _child(info, "References")
    if refs is None:
        raise OfdError(f"{sig.path} has no References")
    sig.check_method = refs.get("CheckMethod")
    for ref in _children(refs, "Reference"):
        file_ref = ref.get("FileRef") or ""
        raw = _text(_child(ref, "CheckValue"))
        try:
            value = base64.b64decode(raw or "", validate=True) if raw else None
        except (binascii.Error, ValueError):
            value = None
        sig.references.append(Reference(file_ref, locate(package, sig.path, file_ref) if file_ref else None, value))
    sig.stamp_annots = [
        {k: v for k, v in annot.attrib.items() if k in ("ID", "PageRef", "Boundary", "Clip")}
        for annot in _children(info, "StampAnnot")
    ]
    seal = _child(info, "Seal")
    seal_loc = _text(_child(seal, "BaseLoc")) if seal is not None else None
    sig.seal_path = locate(package, sig.path, seal_loc) if seal_loc else None
    value_loc = _text(_child(root, "SignedValue"))
    if value_loc is None:
        raise OfdError(f"{sig.path} names no SignedValue")
    sig.signed_value_path = locate(package, sig.path, value_loc)
    if sig.signed_value_path is None or not package.has(sig.signed_value_path):
        raise OfdError(f"the SignedValue {value_loc} that {sig.path} names is not in the package")
    sig.signed_value = package.read(sig.signed_value_path)


def read_document(package: Package) -> OfdDocument:
    """The signatures of every document in the package (a problem with one signature is kept on it)."""
    if not package.has("OFD.xml"):
        raise OfdError("the package has no OFD.xml: it is not an OFD document")
    root = package.xml("OFD.xml")
    if _local(root.tag) != "OFD":
        raise OfdError(f"OFD.xml's root is {_local(root.tag)}, not OFD")
    bodies = _children(root, "DocBody")
    if not bodies:
        raise OfdError("OFD.xml has no DocBody")
    doc_id = None
    signatures: list[OfdSignature] = []
    for body in bodies:
        info = _child(body, "DocInfo")
        doc_id = doc_id or (_text(_child(info, "DocID")) if info is not None else None)
        loc = _text(_child(body, "Signatures"))
        if loc is None:
            continue
        path = locate(package, "OFD.xml", loc)
        if path is None or not package.has(path):
            raise OfdError(f"the Signatures file {loc} that OFD.xml names is not in the package")
        listing = package.xml(path)
        for item in _children(listing, "Signature"):
            base = item.get("BaseLoc") or ""
            sig_path = locate(package, path, base) if base else None
            sig = OfdSignature(id=item.get("ID"), type=item.get("Type"), path=sig_path)
            if sig_path is None or not package.has(sig_path):
                sig.problem = f"the Signature.xml {base!r} that {path} lists is not in the package"
            else:
                try:
                    _read_signature(package, sig)
                except OfdError as exc:
                    sig.problem = str(exc)
            signatures.append(sig)
    return OfdDocument(doc_id=doc_id, signatures=signatures)


def reference_findings(package: Package, sig: OfdSignature) -> tuple[str, str, list[dict[str, Any]]]:
    """Each reference's digest against the file it names: (status, message, per-file findings)."""
    name = hash_name(sig.check_method)
    if name is None:
        return "failed", f"the check method {sig.check_method} is not supported (SM3 is {SM3_OID})", []
    if not sig.references:
        return "failed", "the signature protects no file (References is empty)", []
    findings: list[dict[str, Any]] = []
    for ref in sig.references:
        if ref.path is None:
            findings.append({"file": ref.file_ref, "status": "failed", "message": "names a path outside the package"})
        elif not package.has(ref.path):
            findings.append({"file": ref.file_ref, "status": "failed", "message": "the file is missing"})
        elif ref.check_value is None:
            findings.append({"file": ref.file_ref, "status": "failed", "message": "its CheckValue is not base64"})
        else:
            try:
                ok = digest(name, package.read(ref.path)) == ref.check_value
            except OfdError as exc:
                findings.append({"file": ref.file_ref, "status": "failed", "message": str(exc)})
                continue
            message = "" if ok else f"its {name} digest differs (changed after signing)"
            findings.append({"file": ref.file_ref, "status": "passed" if ok else "failed", "message": message})
    bad = [f for f in findings if f["status"] == "failed"]
    if bad:
        listed = "; ".join(f"{f['file']}: {f['message']}" for f in bad)
        return "failed", f"{len(bad)} of {len(findings)} signed files fail: {listed}", findings
    return "passed", f"the {name} digests of all {len(findings)} signed files match", findings
