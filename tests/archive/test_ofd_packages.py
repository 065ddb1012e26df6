"""A sealed OFD document (GB/T 33190, sealed per GB/T 38540) archived as a sealed document: the package passes
四性检测 with the hub's database gone, and an OFD altered inside the package (its manifests and metadata
recomputed) fails, naming what changed."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import bagit

from ops.archive import service as archive
from seal import repository as seal_repository
from tests.archive.test_records import (
    archived,
    check,
    checkpoint,
    last_use,
    rebag,
    sealing_department,
    unpack,
    without_database,
)
from tests.conftest import Actor
from tests.exchange.conftest import World
from tests.seal.helpers import plain_ofd


def sealed_ofd_use(world: World, system: Actor) -> str:
    response = world.client.post(
        "/seal/ofd",
        headers=system.headers,
        files={"file": ("通知.ofd", plain_ofd(pages=2), "application/ofd")},
        data={"purpose": "发文用印", "page": "1", "x_mm": "120", "y_mm": "200", "size_mm": "40"},
    )
    assert response.status_code == 200, response.text
    return last_use(world, system)


def _with_ofd(files: dict[str, bytes], ofd: bytes) -> dict[str, bytes]:
    """The package with another OFD, the metadata and every manifest recomputed (a forger's work)."""
    meta = json.loads(files["data/metadata/dat46.json"])
    for entry in meta["计算机文件"]:
        entry.update({"计算机文件大小": len(ofd), "SHA-256": archive.digest("sha256", ofd), "SM3": archive.digest("sm3", ofd)})
    changes = {"original/sealed.ofd": ofd, "metadata/dat46.json": json.dumps(meta, ensure_ascii=False).encode()}
    return rebag(files, changes)


def _ofd_entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        return {name: package.read(name) for name in package.namelist()}


def _ofd_zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for name, body in entries.items():
            package.writestr(name, body)
    return out.getvalue()


def test_a_sealed_ofd_is_archived_and_passes_the_four_checks_with_the_database_gone(world: World, tmp_path: Path) -> None:
    system = sealing_department(world, algorithm="SM2")  # OFD seals are SM2 (GB/T 38540)
    use_id = sealed_ofd_use(world, system)
    checkpoint(world.hub)
    data = archived(world, system, f"/seal/uses/{use_id}")
    bag_dir = unpack(data, tmp_path / "bag")
    bagit.Bag(str(bag_dir)).validate()
    (tmp_path / "ofd.zip").write_bytes(data)
    run = without_database(tmp_path, "archive", "check", "ofd.zip")
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert all(report["properties"].values()), report
    passed = {f["check"] for f in report["findings"] if f["ok"]}
    assert {"ofd references", "ofd signature file", "ofd seal file", "seal signature", "seal chain", "time stamp"} <= passed

    files = archive.read_zip(data).files
    assert json.loads(files["data/record/use.json"])["kind"] == "ofd"
    assert "OFD" in json.loads(files["data/metadata/dat46.json"])["计算机文件"][0]["格式名称"]
    assert check(files).ok

    # A page's content changed inside the OFD: its SM3 CheckValue in Signature.xml no longer matches.
    entries = _ofd_entries(files["data/original/sealed.ofd"])
    [content] = [n for n in entries if n.endswith("Content.xml")][:1]
    entries[content] = entries[content].replace("通知".encode(), "通告".encode())
    failures = check(_with_ofd(files, _ofd_zip(entries))).failures()
    assert {f.check for f in failures} >= {"ofd references", "use record hash"}, failures
    assert any(content in f.reason for f in failures if f.check == "ofd references"), failures

    # Signature.xml changed (a reference dropped): the seal signature is no longer over it.
    entries = _ofd_entries(files["data/original/sealed.ofd"])
    [signature_xml] = [n for n in entries if n.endswith("Signature.xml")]
    entries[signature_xml] = entries[signature_xml].replace(b"SignatureDateTime>2", b"SignatureDateTime>1")
    failures = check(_with_ofd(files, _ofd_zip(entries))).failures()
    assert "ofd signature file" in {f.check for f in failures}, failures

    # An executable slipped into the OFD (a file no reference covers): the security check names the OFD.
    entries = _ofd_entries(files["data/original/sealed.ofd"])
    entries["Doc_0/Res/viewer.exe"] = b"MZ\x90\x00\x03\x00\x00\x00"
    failures = check(_with_ofd(files, _ofd_zip(entries))).failures()
    [security] = [f for f in failures if f.property == "security"]
    assert security.file == "data/original/sealed.ofd" and "viewer.exe" in security.reason, failures


def test_the_range_archiver_takes_sealed_ofd_uses(world: World) -> None:
    system = sealing_department(world, algorithm="SM2")
    use_id = sealed_ofd_use(world, system)
    with world.hub.factory() as db:
        kept = seal_repository.uses_kept_between(
            db, since=datetime(2000, 1, 1, tzinfo=UTC), until=datetime(2100, 1, 1, tzinfo=UTC), department_id=None
        )
    assert use_id in kept
