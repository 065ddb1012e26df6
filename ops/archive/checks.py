"""四性检测 (DA/T 70): the authenticity, integrity, usability and security of an archive package, checked
from the package alone (no database, no network).

The checks every package gets are here: fixity of every file against both manifests, no missing or
extra file, the tag files, the audit-log evidence (each record's inclusion proof against the signed
checkpoint in the package, and the checkpoint's signature), usable formats and no executable content.
A record class adds its own checks (its metadata against its files, its signatures) as a `Profile`,
named by `record_class` in `data/metadata/package.json`; the composition root passes the profiles.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ops.archive.bagit import (
    ALGORITHMS,
    BAGIT_TXT,
    MAX_PACKAGE_BYTES,
    STAMPED_TAG_MANIFEST,
    TIMESTAMP,
    Bag,
    digest,
    parse_manifest,
    stamp_files,
    stamp_name,
    stamped_data,
)
from ops.auditlog import merkle
from ops.auditlog.checkpoints import signature_ok
from ops.errors import Invalid

PACKAGE_METADATA = "metadata/package.json"
CHECKPOINT = "evidence/checkpoint.json"
INCLUSIONS = "evidence/audit-inclusion.json"
# The formats a package may hold, by file name ending: anything else is refused as unusable.
FORMATS = {".json": "json", ".pdf": "pdf", ".jws": "text", ".txt": "text", ".sd-jwt": "text", ".der": "der", ".ofd": "ofd"}
# The first bytes of executables and scripts (PE, ELF, Mach-O, shell, Java class).
_EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"#!", b"\xca\xfe\xba\xbe")
_PDF_ACTIVE = (b"/JavaScript", b"/JS ", b"/JS(", b"/Launch", b"/EmbeddedFile", b"/RichMedia")


class Property(StrEnum):
    AUTHENTICITY = "authenticity"  # 真实性
    INTEGRITY = "integrity"  # 完整性
    USABILITY = "usability"  # 可用性
    SECURITY = "security"  # 安全性


@dataclass
class Finding:
    property: Property
    check: str
    ok: bool
    reason: str
    file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"property": self.property.value, "check": self.check, "ok": self.ok, "reason": self.reason, "file": self.file}


@dataclass
class Trust:
    """Keys known from outside the package (the hub's published JWKS, its audit-log keys): a package's own keys
    prove only that it is consistent; these anchors prove who signed it."""

    issuer_keys: list[dict[str, Any]] = field(default_factory=list)  # JWKs
    log_keys: dict[str, str] = field(default_factory=dict)  # key_id -> Ed25519 public key, base64
    ca_roots: list[str] = field(default_factory=list)  # the hub's published seal CA roots (PEM)

    @classmethod
    def from_documents(cls, documents: list[Any]) -> Trust:
        """From `/certhub/.well-known/jwks.json` (`keys`), `/audit/log/keys` (`items`) and `/seal/ca` (the roots of
        both chains) as published."""
        trust = cls()
        for doc in documents:
            if not isinstance(doc, dict):
                raise ValueError("a trust file must be a JSON object (a JWKS, or the page of /audit/log/keys)")
            trust.issuer_keys += [k for k in doc.get("keys") or [] if isinstance(k, dict)]
            for item in doc.get("items") or []:
                if isinstance(item, dict) and isinstance(item.get("key_id"), str) and isinstance(item.get("public_key"), str):
                    trust.log_keys[item["key_id"]] = item["public_key"]
            for name in ("root", "roots", "sm2_root", "sm2_roots"):
                value = doc.get(name)
                trust.ca_roots += [p for p in (value if isinstance(value, list) else [value]) if isinstance(p, str)]
        return trust


@dataclass
class Report:
    record_class: str | None = None
    identifier: str | None = None
    findings: list[Finding] = field(default_factory=list)
    trust: Trust | None = None
    # Asked "as of" a past time: whether the time-stamp evidence held then, and which stamp carried it.
    as_of: datetime | None = None
    as_of_result: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def add(self, prop: Property, check: str, ok: bool, reason: str, file: str | None = None) -> bool:
        self.findings.append(Finding(prop, check, ok, reason, file))
        return ok

    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "record_class": self.record_class,
            "identifier": self.identifier,
            "properties": {p.value: all(f.ok for f in self.findings if f.property == p) for p in Property},
            "findings": [f.as_dict() for f in self.findings],
            "as_of": self.as_of_result,
        }


# A record class's own checks: they read the bag and add findings to the report.
Profile = Callable[[Bag, Report], None]


def load_json(bag: Bag, name: str) -> Any:
    """A payload JSON file, or None when it is absent or does not parse (the generic checks report why)."""
    raw = bag.files.get(f"data/{name}")
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def check_bag(bag: Bag, profiles: Mapping[str, Profile], trust: Trust | None = None, as_of: datetime | None = None) -> Report:
    """Every check of 四性检测 on one bag; the report names each failing file and why. With `trust`, the keys in
    the package must also be among the keys known from outside it. With `as_of`, the report also says whether the
    time-stamp evidence held at that time and which stamp carried it."""
    report = Report(trust=trust, as_of=as_of)
    _integrity(bag, report)
    _usability(bag, report)
    _security(bag, report)
    _timestamp(bag, report)
    meta = load_json(bag, PACKAGE_METADATA)
    if not isinstance(meta, dict):
        report.add(Property.INTEGRITY, "package metadata", False, f"data/{PACKAGE_METADATA} is missing or not a JSON object")
        return report
    report.record_class, report.identifier = str(meta.get("record_class")), str(meta.get("identifier"))
    _audit_evidence(bag, report)
    profile = profiles.get(report.record_class)
    if profile is None:
        report.add(Property.INTEGRITY, "record class", False, f"unknown record class {report.record_class!r}")
    else:
        profile(bag, report)
    return report


def check_fixity(bag: Bag, report: Report) -> None:
    """The bag's own integrity: its declaration, every file against both manifests and tag manifests, missing and
    extra files, Payload-Oxum (a transfer's outer bag gets these alone)."""
    _integrity(bag, report)


def _integrity(bag: Bag, report: Report) -> None:
    if bag.files.get("bagit.txt", b"").replace(b"\r\n", b"\n") != BAGIT_TXT:
        report.add(Property.INTEGRITY, "bag declaration", False, "bagit.txt is missing or not BagIt 1.0 in UTF-8", "bagit.txt")
    payload = {n for n in bag.files if n.startswith("data/")}
    tag_files = set(bag.files) - payload
    for algorithm in ALGORITHMS:
        for kind, expected, covered in (
            ("manifest", payload, f"manifest-{algorithm}.txt"),
            ("tagmanifest", None, f"tagmanifest-{algorithm}.txt"),
        ):
            raw = bag.files.get(covered)
            if raw is None:
                report.add(Property.INTEGRITY, f"{kind} {algorithm}", False, f"{covered} is missing", covered)
                continue
            try:
                listed = parse_manifest(raw)
            except (UnicodeDecodeError, ValueError) as exc:
                report.add(Property.INTEGRITY, f"{kind} {algorithm}", False, f"{covered} cannot be read: {exc}", covered)
                continue
            bad = False
            for name, value in sorted(listed.items()):
                if name not in bag.files:
                    bad = True
                    report.add(
                        Property.INTEGRITY, "missing file", False, f"{covered} lists {name}, absent from the package", name
                    )
                elif digest(algorithm, bag.files[name]) != value:
                    bad = True
                    report.add(
                        Property.INTEGRITY,
                        f"fixity {algorithm}",
                        False,
                        f"{name} does not match its {algorithm} in {covered}",
                        name,
                    )
            if expected is not None:
                for name in sorted(expected - listed.keys()):
                    bad = True
                    report.add(Property.INTEGRITY, "extra file", False, f"{name} is in the package but not in {covered}", name)
            else:
                wanted = tag_files - {f"tagmanifest-{a}.txt" for a in ALGORITHMS} - set(stamp_files(bag.files))
                for name in sorted(wanted - listed.keys()):
                    bad = True
                    report.add(Property.INTEGRITY, "extra file", False, f"tag file {name} is not in {covered}", name)
            if not bad:
                report.add(
                    Property.INTEGRITY, f"{kind} {algorithm}", True, f"every file listed in {covered} matches ({len(listed)})"
                )
    oxum = bag.info().get("Payload-Oxum")
    actual = f"{sum(len(bag.files[n]) for n in payload)}.{len(payload)}"
    report.add(
        Property.INTEGRITY,
        "payload oxum",
        oxum == actual,
        f"Payload-Oxum {oxum} matches" if oxum == actual else f"Payload-Oxum says {oxum}, the payload is {actual}",
        "bag-info.txt",
    )


@dataclass(frozen=True)
class _Stamp:
    name: str
    at: datetime | None
    not_before: datetime | None
    not_after: datetime | None
    digest_algorithm: str | None


def _timestamp(bag: Bag, report: Report) -> None:
    """The stamp chain's checks, then (when asked) what it proves as of a past time: nothing when it is broken."""
    _as_of(report, _stamp_chain(bag, report))


def _stamp_chain(bag: Bag, report: Report) -> list[_Stamp]:
    """The package's chain of RFC 3161 time stamps: `timestamp.tsr` over the tag manifest, each renewal
    `timestamp-N.tsr` over the previous token followed by the tag manifest (RFC 4998's idea), each made before its
    predecessor's authority certificate expired. Each token's signature holds (checked at the time its successor
    was made, the last one now), its signer is a time-stamping certificate, chained (with trust named) to one of
    the hub's published roots. A package written while the TSA was unreachable has none yet: reported as awaiting,
    not as a failure of integrity."""
    names = stamp_files(bag.files)
    if not names:
        report.add(
            Property.AUTHENTICITY,
            "time stamp",
            True,
            f"no RFC 3161 time stamp ({TIMESTAMP}) yet: the package awaits one (the hub adds it when its time-stamp "
            "authority answers)",
            TIMESTAMP,
        )
        return []
    from ops.timestamping import check_token, signer_is_time_stamping, token_facts

    roots = _trusted_roots(report.trust)
    stamps: list[_Stamp] = []
    for position, name in enumerate(names, 1):
        if name != stamp_name(position):
            missing = stamp_name(position)
            report.add(
                Property.AUTHENTICITY,
                "time stamp",
                False,
                f"{name}: the chain of time stamps is broken, {missing} is missing before it",
                missing if missing not in bag.files else name,
            )
            return []
        data = stamped_data(bag.files, position)
        if data is None:
            report.add(Property.AUTHENTICITY, "time stamp", False, f"{name} has no {STAMPED_TAG_MANIFEST} to cover", name)
            return []
        token = bag.files[name]
        facts = token_facts(token)
        successor = bag.files.get(stamp_name(position + 1))
        moment = token_facts(successor).at if successor is not None else None
        checked = check_token(token, data, trusted=(roots, []) if roots else None, moment=moment)
        if not checked.ok:
            covers = STAMPED_TAG_MANIFEST if position == 1 else f"{stamp_name(position - 1)} and {STAMPED_TAG_MANIFEST}"
            report.add(Property.AUTHENTICITY, "time stamp", False, f"{name} (over {covers}): {checked.message}", name)
            return []
        purpose = signer_is_time_stamping(token)
        if purpose is not None:
            report.add(Property.AUTHENTICITY, "time stamp", False, f"{name}: {purpose}", name)
            return []
        if stamps:
            before = stamps[-1]
            # genTime precision differs between authorities (whole seconds, or finer): compare whole seconds
            if facts.at is None or before.at is None or facts.at < before.at.replace(microsecond=0):
                report.add(Property.AUTHENTICITY, "time stamp", False, f"{name} is not later than {before.name}: reordered", name)
                return []
            if before.not_after is not None and facts.at > before.not_after:
                report.add(
                    Property.AUTHENTICITY,
                    "time stamp",
                    False,
                    f"{name} was made at {facts.at:%Y-%m-%dT%H:%M:%SZ}, after {before.name}'s authority certificate "
                    f"expired ({before.not_after:%Y-%m-%dT%H:%M:%SZ}): the chain does not carry the earlier evidence",
                    name,
                )
                return []
        stamps.append(_Stamp(name, facts.at, facts.signer_not_before, facts.signer_not_after, facts.digest_algorithm))
    where = "" if roots else " (the authorities' chains are in the tokens, not verified against a trusted root)"
    first = stamps[0].at
    at = f"{first:%Y-%m-%dT%H:%M:%SZ}" if first is not None else "an unknown time"
    signers = "a time-stamping certificate" if len(stamps) == 1 else "time-stamping certificates"
    chain = "" if len(stamps) == 1 else f", renewed {len(stamps) - 1} time(s) up to {stamps[-1].name}"
    report.add(
        Property.AUTHENTICITY,
        "time stamp",
        True,
        f"RFC 3161 time stamp at {at} over {STAMPED_TAG_MANIFEST}{chain}, signed by {signers}{where}",
        names[-1],
    )
    return stamps


def parse_as_of(text: str, *, now: datetime) -> datetime:
    """The past moment a check is asked "as of": ISO 8601 with a time zone, not after `now` (Invalid, 422, says
    what is wrong otherwise)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(
            f"as_of {text[:60]!r} is not an ISO 8601 time (e.g. 2026-01-31T08:00:00Z)",
            errors=[{"field": "as_of", "message": "not an ISO 8601 time"}],
        ) from None
    if moment.tzinfo is None:
        raise Invalid("as_of must carry a time zone (Z or +08:00)", errors=[{"field": "as_of", "message": "no time zone"}])
    if moment > now:
        raise Invalid(
            f"as_of {moment.isoformat()} is in the future: the evidence can be asked about the past only",
            errors=[{"field": "as_of", "message": "in the future"}],
        )
    return moment


def _as_of(report: Report, stamps: list[_Stamp]) -> None:
    """Whether the evidence held at `report.as_of`: the earliest stamp made by then whose authority certificate was
    valid then carries it (the chain checks already said each successor came before its predecessor expired)."""
    when = report.as_of
    if when is None:
        return
    carrier = next(
        (
            s
            for s in stamps
            if s.at is not None
            and s.at <= when
            and (s.not_before is None or s.not_before <= when)
            and (s.not_after is None or when <= s.not_after)
        ),
        None,
    )
    stamp = f"{when:%Y-%m-%dT%H:%M:%SZ}"
    if carrier is not None:
        reason = f"the evidence held at {stamp}: carried by {carrier.name}"
        if carrier.at is not None:
            reason += f" (made {carrier.at:%Y-%m-%dT%H:%M:%SZ}"
            reason += (
                f", its authority certificate valid until {carrier.not_after:%Y-%m-%dT%H:%M:%SZ})" if carrier.not_after else ")"
            )
    elif not stamps:
        reason = f"not proven at {stamp}: the package has no valid chain of time stamps"
    elif stamps[0].at is not None and when < stamps[0].at:
        reason = (
            f"not proven at {stamp}: the first time stamp ({stamps[0].name}) was made later, at {stamps[0].at:%Y-%m-%dT%H:%M:%SZ}"
        )
    else:
        reason = f"not proven at {stamp}: no stamp's authority certificate was valid then"
    report.as_of_result = {
        "at": when.isoformat(),
        "proven": carrier is not None,
        "stamp": carrier.name if carrier else None,
        "reason": reason,
    }
    report.add(Property.AUTHENTICITY, "evidence as of", carrier is not None, reason, carrier.name if carrier else None)


def _trusted_roots(trust: Trust | None) -> list[Any]:
    from cryptography import x509

    out = []
    for pem in trust.ca_roots if trust is not None else []:
        try:
            out.append(x509.load_pem_x509_certificate(pem.encode()))
        except ValueError:
            continue
    return out


def _usability(bag: Bag, report: Report) -> None:
    for name, data in sorted(bag.payload().items()):
        suffix = next((s for s in FORMATS if name.endswith(s)), None)
        path = f"data/{name}"
        if suffix is None:
            report.add(
                Property.USABILITY, "format", False, f"{path}: not one of the archival formats ({', '.join(FORMATS)})", path
            )
            continue
        problem = _format_problem(FORMATS[suffix], data)
        if problem:
            report.add(Property.USABILITY, "format", False, f"{path} {problem}", path)
    if not any(f.property == Property.USABILITY and not f.ok for f in report.findings):
        report.add(
            Property.USABILITY, "format", True, "every payload file opens in its format (JSON parses, PDF opens, text is UTF-8)"
        )


def _format_problem(kind: str, data: bytes) -> str | None:
    try:
        if kind == "json":
            json.loads(data)
        elif kind == "text":
            data.decode("utf-8")
        elif kind == "ofd":  # GB/T 33190: a zip whose entry point is OFD.xml (its seals are the record class's check)
            with zipfile.ZipFile(io.BytesIO(data)) as ofd:
                if "OFD.xml" not in ofd.namelist():
                    return "is not an OFD document (no OFD.xml)"
                broken = ofd.testzip()
                if broken is not None:
                    return f"holds a damaged entry {broken}"
        elif kind == "der":
            from asn1crypto import core

            core.load(data, strict=True)  # one whole DER value, nothing after it
        else:
            from pyhanko.pdf_utils.reader import PdfFileReader

            reader = PdfFileReader(io.BytesIO(data), strict=False)
            if reader.root.get("/Pages") is None:
                return "the PDF has no pages"
    except Exception as exc:
        return f"does not open as {kind}: {type(exc).__name__}: {str(exc)[:200]}"
    return None


def _security(bag: Bag, report: Report) -> None:
    bad = False
    for name, data in sorted(bag.files.items()):
        if data.startswith(_EXECUTABLE_MAGIC):
            bad = report.add(Property.SECURITY, "executable content", False, f"{name} is an executable or a script", name) or True
        elif data.startswith(b"PK\x03\x04") and name.endswith(".ofd"):  # an OFD is a zip by its standard
            inside = _executables_in_zip(data)
            if inside:
                bad = report.add(Property.SECURITY, "executable content", False, f"{name} holds {inside}", name) or True
        elif data.startswith(b"PK\x03\x04"):
            bad = report.add(Property.SECURITY, "nested archive", False, f"{name} is an archive inside the package", name) or True
        elif name.endswith(".pdf"):
            active = [m.decode() for m in _PDF_ACTIVE if m in data]
            if active:
                bad = report.add(Property.SECURITY, "active content", False, f"{name} holds {', '.join(active)}", name) or True
    if not bad:
        report.add(Property.SECURITY, "executable content", True, "no executable, script, nested archive or active PDF content")


def _executables_in_zip(data: bytes) -> str | None:
    """The first entry of a zip (an OFD) that is an executable, a script or another archive; None if none is."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            for member in inner.infolist():
                if member.file_size > MAX_PACKAGE_BYTES:
                    return f"an entry too large to inspect ({member.filename})"
                head = inner.open(member).read(8)
                if head.startswith((*_EXECUTABLE_MAGIC, b"PK\x03\x04")):
                    return f"an executable, a script or an archive ({member.filename})"
    except Exception as exc:  # untrusted input: unreadable is reported by the format check
        return f"an unreadable zip structure ({type(exc).__name__})"
    return None


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or None when the proof has the wrong shape."""
    if index < 0 or index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = merkle.node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = merkle.node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def _audit_evidence(bag: Bag, report: Report) -> None:
    path = f"data/{CHECKPOINT}"
    checkpoint = load_json(bag, CHECKPOINT)
    if not isinstance(checkpoint, dict) or not all(
        isinstance(checkpoint.get(k), str) for k in ("body", "signature", "public_key")
    ):
        report.add(Property.AUTHENTICITY, "checkpoint", False, f"{path} is missing or lacks body, signature, public_key", path)
        return
    if not signature_ok(checkpoint["public_key"], checkpoint["signature"], checkpoint["body"]):
        report.add(
            Property.AUTHENTICITY, "checkpoint signature", False, f"the signature in {path} does not verify its body", path
        )
        return
    report.add(
        Property.AUTHENTICITY, "checkpoint signature", True, f"checkpoint signed by {checkpoint.get('key_id')} verifies", path
    )
    if report.trust is not None and report.trust.log_keys:
        known = report.trust.log_keys.get(str(checkpoint.get("key_id"))) == checkpoint["public_key"]
        report.add(
            Property.AUTHENTICITY,
            "checkpoint key trusted",
            known,
            f"the checkpoint's key {checkpoint.get('key_id')} is one of the audit log's published keys"
            if known
            else f"the checkpoint's key {checkpoint.get('key_id')} is not among the audit log keys given",
            path,
        )
    lines = checkpoint["body"].split("\n")
    try:
        size, root = int(lines[1]), base64.b64decode(lines[2], validate=True)
    except (IndexError, ValueError):
        report.add(Property.AUTHENTICITY, "checkpoint", False, f"the checkpoint body in {path} is malformed", path)
        return
    ipath = f"data/{INCLUSIONS}"
    inclusions = load_json(bag, INCLUSIONS)
    if not isinstance(inclusions, list) or not inclusions:
        report.add(Property.AUTHENTICITY, "audit inclusion", False, f"{ipath} is missing or holds no proof", ipath)
        return
    for item in inclusions:
        try:
            leaf = merkle.leaf_hash(item["record"].encode())
            proof = [base64.b64decode(p, validate=True) for p in item["proof"]]
            got = root_from_inclusion(int(item["leaf_index"]), size, leaf, proof)
            audit_id = json.loads(item["record"])["id"]
        except (KeyError, TypeError, ValueError, AttributeError):
            report.add(Property.AUTHENTICITY, "audit inclusion", False, f"a proof in {ipath} is malformed", ipath)
            continue
        if got != root:
            report.add(
                Property.AUTHENTICITY,
                "audit inclusion",
                False,
                f"audit record {audit_id}: its inclusion proof does not lead to the checkpoint's root (size {size})",
                ipath,
            )
        else:
            report.add(
                Property.AUTHENTICITY,
                "audit inclusion",
                True,
                f"audit record {audit_id} is in the log at leaf {item['leaf_index']}",
                ipath,
            )


def check_pdf_seals(payload: Mapping[str, bytes], pdf_name: str, ca_name: str, report: Report) -> None:
    """The seals of a sealed PDF in the package: every one intact, cryptographically valid, covering the whole file
    and chained to the CA certificates in `ca_name` (`{"roots": [PEM], "intermediates": [PEM]}`), as of the time
    each seal states (no time stamp or revocation data is archived, so that time is the signer's own claim)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    path = f"data/{pdf_name}"
    try:
        chain = json.loads(payload[ca_name])

        def load(pem: str) -> Any:
            return asn1_x509.Certificate.load(x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER))

        roots, intermediates = [load(p) for p in chain["roots"]], [load(p) for p in chain["intermediates"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        report.add(Property.AUTHENTICITY, "seal", False, f"data/{ca_name} is missing or unreadable ({exc})", f"data/{ca_name}")
        return
    try:
        signatures = list(PdfFileReader(io.BytesIO(payload[pdf_name]), strict=False).embedded_signatures)
    except Exception as exc:  # an unreadable PDF is the finding
        report.add(Property.AUTHENTICITY, "seal", False, f"the seals of {pdf_name} cannot be read: {exc}", path)
        return
    if not signatures:
        report.add(Property.AUTHENTICITY, "seal", False, f"{pdf_name} carries no seal", path)
    for sig in signatures:
        try:
            context = ValidationContext(
                trust_roots=roots, other_certs=intermediates, allow_fetching=False, moment=sig.self_reported_timestamp
            )
            status = validate_pdf_signature(sig, context)
        except Exception as exc:  # a broken signature structure is the finding
            report.add(
                Property.AUTHENTICITY, "seal", False, f"seal {sig.field_name} of {pdf_name} cannot be checked: {exc}", path
            )
            continue
        whole = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
        problems = [
            text
            for ok, text in (
                (status.intact, "the sealed bytes were altered"),
                (status.valid, "the signature does not verify"),
                (status.trusted, "the seal's certificate does not chain to the CA certificates in the package"),
                (whole, "the seal does not cover the whole file"),
            )
            if not ok
        ]
        report.add(
            Property.AUTHENTICITY,
            "seal",
            not problems,
            f"seal {sig.field_name} of {pdf_name}: {'; '.join(problems)}"
            if problems
            else f"seal {sig.field_name} of {pdf_name} is intact, valid and chains to the hub CA",
            path,
        )


def check_described_files(bag: Bag, report: Report, *, metadata: str, prefix: str = "original/") -> None:
    """The DA/T 46 计算机文件 of `metadata` against the files under `prefix`: each described, each present, each
    size, SHA-256 and SM3 as described."""
    payload = bag.payload()
    doc = load_json(bag, metadata)
    described = doc.get("计算机文件") if isinstance(doc, dict) else None
    listed: dict[str, dict[str, Any]] = {
        str(f.get("计算机文件名")): f for f in (described if isinstance(described, list) else []) if isinstance(f, dict)
    }
    originals = {n for n in payload if n.startswith(prefix)}
    for name in sorted(originals | listed.keys()):
        entry, data = listed.get(name), payload.get(name)
        if entry is None or data is None:
            where = "not described in the metadata" if entry is None else "described in the metadata but absent"
            report.add(Property.INTEGRITY, "metadata files", False, f"{name} is {where}", f"data/{metadata}")
            continue
        wrong = [
            k
            for k, v in (("计算机文件大小", len(data)), ("SHA-256", digest("sha256", data)), ("SM3", digest("sm3", data)))
            if entry.get(k) != v
        ]
        report.add(
            Property.INTEGRITY,
            "metadata files",
            not wrong,
            f"the metadata's {', '.join(wrong)} of {name} do not match the file" if wrong else f"{name} matches its metadata",
            f"data/{metadata}",
        )


def check_required_elements(bag: Bag, report: Report, *, metadata: str, required: tuple[str, ...]) -> dict[str, Any] | None:
    """The DA/T 46 metadata is a JSON object with every required element filled and 电子文件号 naming the record."""
    doc = load_json(bag, metadata)
    path = f"data/{metadata}"
    if not isinstance(doc, dict):
        report.add(Property.INTEGRITY, "metadata", False, f"{path} is missing or not a JSON object", path)
        return None
    missing = [e for e in required if not doc.get(e)]
    report.add(
        Property.INTEGRITY,
        "metadata complete",
        not missing,
        f"DA/T 46 elements missing: {', '.join(missing)}" if missing else "every required DA/T 46 element is filled",
        path,
    )
    number = doc.get("电子文件号")
    report.add(
        Property.INTEGRITY,
        "metadata identifier",
        number == report.identifier,
        f"电子文件号 (DA/T 46) is {number}, the package is of {report.identifier}"
        if number != report.identifier
        else "电子文件号 (DA/T 46) names the package's record",
        path,
    )
    return doc


def audit_records(bag: Bag) -> list[dict[str, Any]]:
    """The audit records the package's inclusion proofs carry (those that parse)."""
    items = load_json(bag, INCLUSIONS)
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            record = json.loads(item["record"])
        except (TypeError, KeyError, ValueError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out
