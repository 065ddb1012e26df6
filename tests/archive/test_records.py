"""电子档案 of sealed documents and sharing-request dossiers: their packages pass 四性检测 from the package alone
(bagit-python, an independent implementation of RFC 8493, validates each), and what is wrong is named."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import bagit
import pytest

from govhub.archives import ARCHIVE_PROFILES
from ops.archive import service as archive
from ops.auditlog import service as auditlog
from seal import sesder
from tests.conftest import Actor, Hub
from tests.exchange.conftest import World
from tests.seal.helpers import one_page_pdf, seal_body, sealer

ROOT = Path(__file__).resolve().parents[2]


def checkpoint(hub: Hub) -> None:
    with hub.factory() as db:
        auditlog.checkpoint_now(db, vault=hub.app.state.vault, store=hub.app.state.storage, force=True, grace_seconds=0)
        db.commit()


def sealing_department(world: World, *, algorithm: str = "ES256") -> Actor:
    """A department with a seal, and its system authorised to use it."""
    department = world.hub.department("测试市市场监督管理局")
    issued = world.client.post("/seals", headers=world.admin.headers, json=seal_body(department.id, algorithm=algorithm))
    assert issued.status_code == 201, issued.text
    system: Actor = sealer(world.hub, department)
    system.extra["seal_id"] = issued.json()["id"]
    return system


def last_use(world: World, system: Actor) -> str:
    uses = world.client.get(f"/seals/{system.extra['seal_id']}/uses", headers=system.headers)
    assert uses.status_code == 200, uses.text
    return str(uses.json()["items"][0]["id"])


def sealed_pdf_use(world: World, system: Actor) -> str:
    response = world.client.post(
        "/seal/pdf",
        headers=system.headers,
        files={"file": ("notice.pdf", one_page_pdf("Permit 2026-001"), "application/pdf")},
        data={"purpose": "行政许可决定书用印"},
    )
    assert response.status_code == 200, response.text
    return last_use(world, system)


def detached_use(world: World, system: Actor) -> str:
    data = base64.b64encode("行政处罚决定书 第12号".encode()).decode()
    response = world.client.post("/seal/sign", headers=system.headers, json={"purpose": "处罚决定书用印", "data_base64": data})
    assert response.status_code == 200, response.text
    return last_use(world, system)


def granted_dossier(world: World) -> str:
    """A request taken to a grant, with a few lookups through it; returns the request's id."""
    grant = world.granted(world.persons)
    for pid in world.person_ids[:3]:
        looked = world.client.post(
            f"/exchange/grants/{grant['id']}/lookup", json={"params": {"身份证号": pid}}, headers=world.consumer.headers
        )
        assert looked.status_code == 200, looked.text
    return str(grant["request_id"])


def archived(world: World, who: Actor, base: str) -> bytes:
    """Archive the record at `base` (…/archive), list its packages and download the new one."""
    made = world.client.post(f"{base}/archive", headers=who.headers)
    assert made.status_code == 201, made.text
    listed = world.client.get(f"{base}/archive-packages", headers=who.headers)
    assert made.json()["id"] in [p["id"] for p in listed.json()["items"]]
    got = world.client.get(f"{base}/archive-packages/{made.json()['id']}", headers=who.headers)
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip", got.text
    assert archive.digest("sm3", got.content) == made.json()["sm3"]
    return got.content


def unpack(data: bytes, where: Path) -> Path:
    zipfile.ZipFile(io.BytesIO(data)).extractall(where)
    [root] = list(where.iterdir())
    return root


def rezip(files: dict[str, bytes], root: str = "bag") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(f"{root}/{name}", data)
    return out.getvalue()


def rebag(files: dict[str, bytes], changes: dict[str, bytes]) -> dict[str, bytes]:
    """The same bag with payload files changed and every manifest recomputed (a forger's work)."""
    payload = {name[5:]: data for name, data in files.items() if name.startswith("data/")} | changes
    info = archive.Bag(files).info()
    info.pop("Payload-Oxum", None)
    return archive.read_zip(archive.write_bag(payload, info=info, root="bag")).files


def check(files: dict[str, bytes]) -> archive.Report:
    return archive.check_bag(archive.Bag(dict(files)), ARCHIVE_PROFILES)


def without_database(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`govhub …` in another process whose database is unreachable: only the package is there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")}
    env |= {"GOVHUB_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "govhub.cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )


def test_a_sealed_document_and_a_dossier_pass_the_four_checks_from_the_package_alone(world: World, tmp_path: Path) -> None:
    system = sealing_department(world)
    pdf_use, der_use = sealed_pdf_use(world, system), detached_use(world, system)
    request_id = granted_dossier(world)
    # Before a signed checkpoint covers the record, archiving waits (409, retry).
    early = world.client.post(f"/exchange/requests/{request_id}/archive", headers=world.consumer.headers)
    assert early.status_code == 409 and "checkpoint" in early.json()["detail"], early.text
    checkpoint(world.hub)
    packages = {
        "pdf": archived(world, system, f"/seal/uses/{pdf_use}"),
        "der": archived(world, system, f"/seal/uses/{der_use}"),
        "dossier": archived(world, world.provider, f"/exchange/requests/{request_id}"),
    }
    for kind, data in packages.items():
        bag_dir = unpack(data, tmp_path / kind)
        bagit.Bag(str(bag_dir)).validate()  # raises on any fixity, completeness or Oxum problem
        (tmp_path / f"{kind}.zip").write_bytes(data)
        # The hub's database is gone for this process: the check runs on the package alone.
        for target in (f"{kind}.zip", str(bag_dir)):
            run = without_database(tmp_path, "archive", "check", target)
            assert run.returncode == 0, (kind, run.stdout + run.stderr)
            report = json.loads(run.stdout)
            assert report["properties"] == {"authenticity": True, "integrity": True, "usability": True, "security": True}
            assert {"audit inclusion", "checkpoint signature", "metadata complete", "metadata files"} <= {
                f["check"] for f in report["findings"]
            }
    pdf_files = archive.read_zip(packages["pdf"]).files
    assert "data/original/sealed.pdf" in pdf_files and "data/signature/seal.der" in pdf_files
    seals = [f for f in check(pdf_files).findings if f.check == "seal"]
    assert seals and all(f.ok for f in seals) and "chains to the hub CA" in seals[0].reason
    use = json.loads(pdf_files["data/record/use.json"])
    assert use["used_by"] == system.client.client_id and use["purpose"] == "行政许可决定书用印"  # type: ignore[union-attr]
    der_report = check(archive.read_zip(packages["der"]).files)
    assert {f.check for f in der_report.findings if f.ok} >= {"seal signature", "seal structure", "seal chain", "use record hash"}
    dossier = archive.read_zip(packages["dossier"]).files
    decisions = json.loads(dossier["data/original/decisions.json"])
    assert [d["action"] for d in decisions][:2] == ["file", "accept_to_provider"] and all(d["by"] for d in decisions)
    summary = json.loads(dossier["data/original/access-summary.json"])
    assert summary["total_accesses"] == 3 and "身份证号" not in json.dumps(summary["days"], ensure_ascii=False)
    assert all(pid not in dossier["data/original/access-summary.json"].decode() for pid in world.person_ids)
    dat46 = json.loads(dossier["data/metadata/dat46.json"])
    assert dat46["电子文件号"] == request_id and dat46["保管期限"] == "10年"


def test_one_changed_byte_anywhere_fails_naming_the_file(world: World, tmp_path: Path) -> None:
    system = sealing_department(world)
    der_use = detached_use(world, system)
    request_id = granted_dossier(world)
    checkpoint(world.hub)
    for number, data in enumerate(
        (archived(world, system, f"/seal/uses/{der_use}"), archived(world, world.consumer, f"/exchange/requests/{request_id}"))
    ):
        files = archive.read_zip(data).files
        assert check(files).ok, check(files).failures()
        for name in files:
            changed = dict(files)
            content = bytearray(changed[name])
            content[len(content) // 2] ^= 0x01
            changed[name] = bytes(content)
            report = check(changed)
            assert not report.ok, name
            assert any(name == f.file or name in f.reason for f in report.failures()), (name, report.failures())
            where = unpack(rezip(changed), tmp_path / f"case{number}-{len(name)}-{abs(hash(name))}")
            try:
                valid = bagit.Bag(str(where)).is_valid()
            except (bagit.BagError, ValueError):
                valid = False
            # bagit-python reads neither the SM3 tag manifest nor the time stamp (a tag file no manifest lists)
            assert valid == (name in ("tagmanifest-sm3.txt", "timestamp.tsr")), name


def test_bad_packages_are_reported_with_their_reason(world: World) -> None:
    system = sealing_department(world)
    der_use = detached_use(world, system)
    request_id = granted_dossier(world)
    checkpoint(world.hub)
    sealed = archive.read_zip(archived(world, system, f"/seal/uses/{der_use}")).files
    dossier = archive.read_zip(archived(world, world.consumer, f"/exchange/requests/{request_id}")).files

    missing = {k: v for k, v in sealed.items() if k != "data/original/seal-signature.der"}
    reasons = [f.reason for f in check(missing).failures()]
    assert "manifest-sha256.txt lists data/original/seal-signature.der, absent from the package" in reasons

    extra = dict(dossier, **{"data/notes.txt": b"added later"})
    assert "data/notes.txt is in the package but not in manifest-sha256.txt" in [f.reason for f in check(extra).failures()]

    # Changed metadata values, with every manifest recomputed so that fixity alone does not catch them.
    use = json.loads(sealed["data/record/use.json"])
    use["document_hash"] = "00" * 32
    failures = check(rebag(sealed, {"record/use.json": json.dumps(use).encode()})).failures()
    assert [(f.check, f.file) for f in failures] == [("use record hash", "data/record/use.json")], failures

    req = json.loads(dossier["data/original/request.json"])
    req["state"] = "refused"
    forged = rebag(dossier, {"original/request.json": json.dumps(req, ensure_ascii=False).encode()})
    checks = {f.check for f in check(forged).failures()}
    assert checks == {"metadata files", "dossier decisions"}, checks

    dat46 = json.loads(dossier["data/metadata/dat46.json"])
    dat46["电子文件号"] = "other"
    failures = check(rebag(dossier, {"metadata/dat46.json": json.dumps(dat46).encode()})).failures()
    assert [f.reason for f in failures] == [f"电子文件号 (DA/T 46) is other, the package is of {request_id}"]

    # A signature value altered (and the metadata and manifests recomputed) no longer verifies; nor does the
    # time stamp over it, whose imprint is the old value's hash.
    original = sealed["data/original/seal-signature.der"]
    value = sesder.parse_signature(original).signature
    der = bytearray(original)
    der[original.index(value) + len(value) - 5] ^= 0x01
    meta = json.loads(sealed["data/metadata/dat46.json"])
    for entry in meta["计算机文件"]:
        entry.update(
            {
                "计算机文件大小": len(der),
                "SHA-256": archive.digest("sha256", bytes(der)),
                "SM3": archive.digest("sm3", bytes(der)),
            }
        )
    forged = rebag(sealed, {"original/seal-signature.der": bytes(der), "metadata/dat46.json": json.dumps(meta).encode()})
    assert {"seal signature", "seal signature time stamp"} <= {f.check for f in check(forged).failures()}

    # A byte of the time stamp token changed: the stamp no longer verifies, the signature still does.
    der = bytearray(original)
    der[-5] ^= 0x01
    meta = json.loads(sealed["data/metadata/dat46.json"])
    for entry in meta["计算机文件"]:
        entry.update(
            {
                "计算机文件大小": len(der),
                "SHA-256": archive.digest("sha256", bytes(der)),
                "SM3": archive.digest("sm3", bytes(der)),
            }
        )
    forged = rebag(sealed, {"original/seal-signature.der": bytes(der), "metadata/dat46.json": json.dumps(meta).encode()})
    assert {f.check for f in check(forged).failures()} == {"seal signature time stamp"}


def test_only_the_records_own_departments_or_the_platform_archive(world: World) -> None:
    system = sealing_department(world)
    use_id = detached_use(world, system)
    request_id = granted_dossier(world)
    checkpoint(world.hub)
    assert world.client.post(f"/seal/uses/{use_id}/archive", headers=world.other.headers).status_code == 404
    assert world.client.post(f"/exchange/requests/{request_id}/archive", headers=world.other.headers).status_code == 404
    assert world.client.post(f"/seal/uses/{use_id}/archive", headers=world.admin.headers).status_code == 201
    open_request = world.file(world.persons)
    still_open = world.client.post(f"/exchange/requests/{open_request['id']}/archive", headers=world.consumer.headers)
    assert still_open.status_code == 409 and "still open" in still_open.json()["detail"]


def record_ref(kind: str, record_id: str) -> dict[str, Any]:
    return {"record_class": kind, "record_id": record_id}


def test_a_document_sealed_with_an_sm2_seal_passes_from_its_package(world: World) -> None:
    """The GB/T 38540 signature of an SM2 seal: SM2 with SM3, the seal's maker and its chain on the SM2 CA."""
    system = sealing_department(world, algorithm="SM2")
    use_id = detached_use(world, system)
    checkpoint(world.hub)
    files = archive.read_zip(archived(world, system, f"/seal/uses/{use_id}")).files
    report = check(files)
    assert report.ok, report.failures()
    passed = {f.check: f.reason for f in report.findings if f.ok}
    assert "SM2 with SM3" in passed["seal signature"] and "chain of" in passed["seal chain"]
    assert json.loads(files["data/record/use.json"])["hash_alg"] == "SM3"
    # Against the CA certificates the hub publishes: its roots are trusted; another hub's are not.
    published = world.client.get("/seal/ca").json()
    trusted = archive.check_bag(archive.Bag(files), ARCHIVE_PROFILES, archive.Trust.from_documents([published]))
    assert [f.ok for f in trusted.findings if f.check == "seal CA trusted"] == [True]
    other = {"roots": [published["root"]]}  # the P-256 chain's root only: the SM2 root in the package is a stranger
    stranger = archive.check_bag(archive.Bag(files), ARCHIVE_PROFILES, archive.Trust.from_documents([other]))
    [finding] = [f for f in stranger.findings if f.check == "seal CA trusted"]
    assert not finding.ok and "not among the published ones" in finding.reason


def test_the_seal_and_exchange_commands_archive_the_records_of_a_period(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`govhub seals archive` and `govhub exchange archive`: each record of the period printed (`record, sha256,
    size`) and its zip copied with --out; --department keeps one department's; a bad period or department refused."""
    import argparse
    from datetime import UTC, datetime, timedelta

    from exchange.cli import _archive as exchange_archive
    from ops.errors import NotFound
    from seal.cli import seals_archive

    system = sealing_department(world)
    assert system.department is not None
    pdf_use = sealed_pdf_use(world, system)
    request_id = granted_dossier(world)
    # The command's store is the one the settings name: the hub's, where the sealed outputs are.
    settings = world.hub.settings.model_copy(update={"storage_dir": world.hub.app.state.storage.root})
    today = datetime.now(UTC).date()
    runs = [
        (seals_archive, None, pdf_use),
        (seals_archive, system.department.code, pdf_use),
        (exchange_archive, None, request_id),
    ]
    for number, (command, department, record) in enumerate(runs):
        out = tmp_path / f"out{number}"
        args = argparse.Namespace(since=today, until=today + timedelta(days=1), department=department, out=out)
        with world.hub.factory() as db:
            command(db, settings, args)
            db.commit()
        printed = capsys.readouterr()
        ids = [line.split("\t")[0] for line in printed.out.splitlines()]
        assert record in ids and printed.err.endswith(f"{len(ids)} package(s) written, 0 skipped\n"), printed
        zips = sorted(out.glob("*.zip"))
        assert len(zips) == len(ids)
        for package in zips:
            report = archive.check_path(package, ARCHIVE_PROFILES)
            assert report.ok, report.failures()
    with world.hub.factory() as db:
        backwards = argparse.Namespace(since=today, until=today, department=None, out=None)
        with pytest.raises(SystemExit, match="--until must be after --since"):
            exchange_archive(db, settings, backwards)
        unknown = argparse.Namespace(since=today, until=today + timedelta(days=1), department="NOPE", out=None)
        with pytest.raises(NotFound, match="no department with code NOPE"):
            seals_archive(db, settings, unknown)


def test_a_period_leaves_out_only_the_records_refused_with_a_conflict() -> None:
    from ops.errors import Conflict

    def store(record_id: str) -> archive.ArchivePackage:
        if record_id == "late":
            raise Conflict("no signed checkpoint covers it yet")
        if record_id == "broken":
            raise ValueError(record_id)
        return archive.ArchivePackage(record_id=record_id)

    written, skipped = archive.store_each(["a", "late", "b"], store)
    assert [p.record_id for p in written] == ["a", "b"]
    assert skipped == [("late", "no signed checkpoint covers it yet")]
    with pytest.raises(ValueError, match="broken"):
        archive.store_each(["a", "broken"], store)
