"""BagIt (RFC 8493) bags as zip files: writing one from named payload files, reading one back.

Fixity is kept twice, SHA-256 and SM3 (GB/T 32905): `manifest-sha256.txt`, `manifest-sm3.txt` and a
tag manifest of each. Tools that know only SHA-256 (bagit-python where the platform's OpenSSL lacks
SM3) validate that one and skip the other; this module checks both.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from ops.errors import Invalid

ALGORITHMS = ("sha256", "sm3")
# The RFC 3161 time-stamp token over the SHA-256 of `tagmanifest-sha256.txt`: a tag file no tag manifest lists
# (the stamp covers the tag manifest, so the tag manifest cannot cover the stamp).
TIMESTAMP = "timestamp.tsr"
# Its renewals (RFC 4998's idea): `timestamp-2.tsr`, `timestamp-3.tsr`, ... each a token over the hash of the previous
# token's bytes followed by the tag manifest's, so that each new stamp covers the old one and the data.
_STAMP_NAME = re.compile(r"timestamp(?:-([2-9]|[1-9][0-9]{1,5}))?\.tsr")
STAMPED_TAG_MANIFEST = "tagmanifest-sha256.txt"
BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
# A package is read whole into memory: refuse archives larger than this (and zip bombs).
MAX_PACKAGE_BYTES = 200 * 1024 * 1024


def digest(algorithm: str, data: bytes) -> str:
    """The hex digest of `data` with `sha256` or `sm3` (OpenSSL's SM3, else Tongsuo's)."""
    if algorithm == "sha256":
        return hashlib.sha256(data).hexdigest()
    if algorithm != "sm3":
        raise ValueError(f"unknown algorithm {algorithm}")
    try:
        return hashlib.new("sm3", data).hexdigest()
    except ValueError:  # an OpenSSL built without SM3
        from tongsuopy.crypto import hashes

        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return str(h.finalize().hex())


def _manifest(files: Mapping[str, bytes], algorithm: str) -> bytes:
    return "".join(f"{digest(algorithm, files[name])}  {name}\n" for name in sorted(files)).encode()


def write_bag(payload: Mapping[str, bytes], *, info: Mapping[str, str], root: str) -> bytes:
    """A zip holding one bag `root/`: payload files under `data/` (names relative to it), manifests, tag manifests."""
    files = {f"data/{name}": data for name, data in payload.items()}
    octets = sum(len(d) for d in files.values())
    lines = {"Bagging-Date": datetime.now(UTC).date().isoformat(), **info, "Payload-Oxum": f"{octets}.{len(files)}"}
    tags: dict[str, bytes] = {
        "bagit.txt": BAGIT_TXT,
        "bag-info.txt": "".join(f"{k}: {v}\n" for k, v in lines.items()).encode(),
    }
    for algorithm in ALGORITHMS:
        tags[f"manifest-{algorithm}.txt"] = _manifest(files, algorithm)
    covered = dict(tags)  # each tag manifest lists the other tag files, never a tag manifest
    for algorithm in ALGORITHMS:
        tags[f"tagmanifest-{algorithm}.txt"] = _manifest(covered, algorithm)
    return _zip({**tags, **files}, root)


def _zip(files: Mapping[str, bytes], root: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            info_ = zipfile.ZipInfo(f"{root}/{name}", date_time=(2000, 1, 1, 0, 0, 0))
            info_.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info_, data)
    return out.getvalue()


def stamped_digest(zipped: bytes) -> bytes:
    """The SHA-256 (raw) a package's time stamp is over: that of its `tagmanifest-sha256.txt`."""
    bag = read_zip(zipped)
    manifest = bag.files.get(STAMPED_TAG_MANIFEST)
    if manifest is None:
        raise Invalid(f"the package has no {STAMPED_TAG_MANIFEST} to time-stamp")
    return hashlib.sha256(manifest).digest()


def stamp_name(position: int) -> str:
    """The tag file of the `position`-th stamp of the chain (1: `timestamp.tsr`, 2: `timestamp-2.tsr`, ...)."""
    return TIMESTAMP if position == 1 else f"timestamp-{position}.tsr"


def stamp_position(name: str) -> int | None:
    """The position in the chain of a tag file named like a stamp, else None."""
    found = _STAMP_NAME.fullmatch(name)
    if found is None:
        return None
    return int(found.group(1)) if found.group(1) else 1


def stamp_files(files: Mapping[str, bytes]) -> list[str]:
    """The stamp tag files a bag holds, in the order of their positions (gaps are the checker's business)."""
    named = [(position, name) for name in files if (position := stamp_position(name)) is not None]
    return [name for _, name in sorted(named)]


def stamped_data(files: Mapping[str, bytes], position: int) -> bytes | None:
    """The bytes the `position`-th stamp is over: the tag manifest (the first), else the previous stamp's token
    followed by the tag manifest; None when a file it needs is absent."""
    manifest = files.get(STAMPED_TAG_MANIFEST)
    if manifest is None:
        return None
    if position == 1:
        return manifest
    previous = files.get(stamp_name(position - 1))
    return None if previous is None else previous + manifest


def with_timestamp(zipped: bytes, token: bytes, *, name: str = TIMESTAMP) -> bytes:
    """The same zipped bag with a time-stamp token added as the tag file `name` (`timestamp.tsr`, or a renewal's
    `timestamp-N.tsr`); nothing else changes: the manifests and tag manifests stay as they were."""
    archive = zipfile.ZipFile(io.BytesIO(zipped))
    [root] = {m.filename.split("/", 1)[0] for m in archive.infolist()}
    files = read_zip(zipped).files
    files[name] = token
    return _zip(files, root)


@dataclass
class Bag:
    """Every file of a bag by its path inside the bag (`data/...`, `bagit.txt`, ...)."""

    files: dict[str, bytes]

    def payload(self) -> dict[str, bytes]:
        return {name[5:]: data for name, data in self.files.items() if name.startswith("data/")}

    def info(self) -> dict[str, str]:
        text = self.files.get("bag-info.txt", b"").decode("utf-8", "replace")
        return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def read_zip(data: bytes) -> Bag:
    """The bag inside a zip (one top directory), refusing what is not a zip or holds unsafe names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise Invalid("the package is not a zip file") from exc
    members = [m for m in archive.infolist() if not m.is_dir()]
    if sum(m.file_size for m in members) > MAX_PACKAGE_BYTES:
        raise Invalid(f"the package unpacks to more than {MAX_PACKAGE_BYTES} bytes")
    tops = {m.filename.split("/", 1)[0] for m in members}
    if len(tops) != 1 or any("/" not in m.filename for m in members):
        raise Invalid("the package must hold one bag directory at its top")
    files: dict[str, bytes] = {}
    for member in members:
        inner = member.filename.split("/", 1)[1]
        path = PurePosixPath(inner)
        if path.is_absolute() or ".." in path.parts or "\\" in inner:
            raise Invalid(f"unsafe file name in the package: {member.filename!r}")
        try:
            files[inner] = archive.read(member)
        except Exception as exc:  # an encrypted member, an unknown compression, a damaged stream: untrusted input
            raise Invalid(f"{member.filename!r} in the package cannot be read: {exc}") from exc
    return Bag(files)


def read_dir(root: Path) -> Bag:
    """The bag in a directory (as bagit-python and unzip leave it)."""
    if not root.is_dir():
        raise Invalid(f"{root} is not a directory")
    links = [p for p in root.rglob("*") if p.is_symlink()]
    if links:
        raise Invalid(f"the bag holds a symbolic link, which a package may not: {links[0].relative_to(root)}")
    return Bag({p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()})


def parse_manifest(text: bytes) -> dict[str, str]:
    """path → digest of a (tag) manifest; a malformed line raises ValueError naming it."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f"line {number} is not 'digest  path'")
        out[parts[1].strip()] = parts[0].lower()
    return out
