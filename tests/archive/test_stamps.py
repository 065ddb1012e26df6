"""Every archive package carries an RFC 3161 time stamp over its tag manifest (`timestamp.tsr`); bagit-python still
validates the bag and OpenSSL verifies the token against the tag manifest on its own. When the time-stamp authority
is unreachable the package is written without it, visibly awaiting, and the archive job stamps it later."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import bagit
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from govhub.archives import ARCHIVE_PROFILES
from ops import timestamping
from ops.archive import service as archive
from ops.archive import tasks as archive_tasks
from ops.audit import AuditRecord
from ops.hubprocess import free_port
from ops.storage import get_bytes
from tests.archive.test_records import (
    archived,
    check,
    checkpoint,
    detached_use,
    sealing_department,
    unpack,
    without_database,
)
from tests.exchange.conftest import World

AWAITING = "govhub_archive_packages_awaiting_timestamp"


def _stamp_finding(report: archive.Report) -> archive.Finding:
    [finding] = [f for f in report.findings if f.check == "time stamp"]
    return finding


def test_a_package_is_time_stamped_and_openssl_verifies_the_token_over_its_tag_manifest(world: World, tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl on this machine")
    system = sealing_department(world)
    use_id = detached_use(world, system)
    checkpoint(world.hub)
    data = archived(world, system, f"/seal/uses/{use_id}")
    [listed] = world.client.get(f"/seal/uses/{use_id}/archive-packages", headers=system.headers).json()["items"]
    assert listed["timestamp_state"] == "stamped" and listed["timestamped_at"] is not None

    bag_dir = unpack(data, tmp_path / "bag")
    assert (bag_dir / "timestamp.tsr").is_file()
    bagit.Bag(str(bag_dir)).validate()  # the stamp is a tag file no tag manifest lists: still a valid bag

    ca = world.client.get("/seal/ca").json()
    (tmp_path / "root.pem").write_text(ca["root"])
    (tmp_path / "issuing.pem").write_text(ca["issuing"])
    verified = subprocess.run(
        [openssl, "ts", "-verify", "-data", str(bag_dir / "tagmanifest-sha256.txt"), "-in", str(bag_dir / "timestamp.tsr"),
         "-token_in", "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "issuing.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stdout + verified.stderr
    refused = subprocess.run(
        [openssl, "ts", "-verify", "-data", str(bag_dir / "bag-info.txt"), "-in", str(bag_dir / "timestamp.tsr"),
         "-token_in", "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "issuing.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert refused.returncode != 0  # the token is over the tag manifest, nothing else

    files = archive.read_zip(data).files
    alone = _stamp_finding(check(files))
    assert alone.ok and "not verified against a trusted root" in alone.reason, alone
    trusted = archive.check_bag(archive.Bag(files), ARCHIVE_PROFILES, archive.Trust.from_documents([ca]))
    finding = _stamp_finding(trusted)
    assert finding.ok and "signed by a time-stamping certificate" in finding.reason
    assert "not verified" not in finding.reason
    # Another hub's root: the token's authority does not chain to it.
    stranger = archive.check_bag(
        archive.Bag(files), ARCHIVE_PROFILES, archive.Trust.from_documents([{"roots": [ca["sm2_root"]]}])
    )
    finding = _stamp_finding(stranger)
    assert not finding.ok and finding.file == "timestamp.tsr" and "not trusted" in finding.reason, finding

    # The same from the shell, with the hub's database gone, and through the endpoint, given the hub's CA as trust.
    (tmp_path / "package.zip").write_bytes(data)
    (tmp_path / "ca.json").write_text(json.dumps(ca))
    run = without_database(tmp_path, "archive", "check", "package.zip", "--trust", "ca.json")
    assert run.returncode == 0, run.stdout + run.stderr
    [shell] = [f for f in json.loads(run.stdout)["findings"] if f["check"] == "time stamp"]
    assert shell["ok"] and "not verified" not in shell["reason"]
    answer = world.client.post(
        "/archive/check",
        files=[("file", ("package.zip", data, "application/zip")), ("trust", ("ca.json", json.dumps(ca), "application/json"))],
        headers=world.hub.admin.headers,
    )
    assert answer.status_code == 200, answer.text
    [endpoint] = [f for f in answer.json()["findings"] if f["check"] == "time stamp"]
    assert endpoint["ok"] and "not verified" not in endpoint["reason"]


def test_a_time_stamp_over_other_data_fails_naming_the_file(world: World) -> None:
    system = sealing_department(world)
    use_id = detached_use(world, system)
    checkpoint(world.hub)
    files = archive.read_zip(archived(world, system, f"/seal/uses/{use_id}")).files
    stamper = timestamping.current_stamper()
    assert stamper is not None
    with world.hub.factory() as db:
        other = stamper(db, hashlib.sha256(b"another package's tag manifest").digest())
    report = check(dict(files, **{"timestamp.tsr": other}))
    assert [(f.check, f.file) for f in report.failures()] == [("time stamp", "timestamp.tsr")], report.failures()
    assert "over other data" in report.failures()[0].reason
    garbage = check(dict(files, **{"timestamp.tsr": b"\x30\x03\x02\x01\x00"}))
    assert [(f.check, f.file) for f in garbage.failures()] == [("time stamp", "timestamp.tsr")]


def test_an_unreachable_tsa_leaves_the_package_awaiting_until_the_job_stamps_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = sealing_department(world)
    use_id = detached_use(world, system)
    checkpoint(world.hub)
    working = timestamping.current_stamper()
    nobody_listens = timestamping.http_stamper(f"http://127.0.0.1:{free_port()}/tsa", timeout=5)
    monkeypatch.setattr(timestamping, "_stamper", nobody_listens)

    made = world.client.post(f"/seal/uses/{use_id}/archive", headers=system.headers)
    assert made.status_code == 201, made.text  # written all the same, and said to be waiting
    package = made.json()
    assert package["timestamp_state"] == "awaiting" and "did not answer" in package["timestamp_error"]
    assert REGISTRY.get_sample_value(AWAITING) == 1.0
    unstamped = world.client.get(f"/seal/uses/{use_id}/archive-packages/{package['id']}", headers=system.headers).content
    files = archive.read_zip(unstamped).files
    assert "timestamp.tsr" not in files
    report = check(files)
    assert report.ok, report.failures()  # waiting is a finding, not a failure of integrity
    assert "awaits one" in _stamp_finding(report).reason

    storage = world.hub.app.state.storage
    [job] = [j for j in archive_tasks.jobs(store=storage) if j.name == "archive.timestamp"]
    with world.hub.factory() as db, pytest.raises(timestamping.StampUnavailable, match=r"1 archive package\(s\) await"):
        job.run(db)  # the job fails visibly (the scheduler counts the failure) while the TSA is away

    monkeypatch.setattr(timestamping, "_stamper", working)  # the TSA is back
    with world.hub.factory() as db:
        assert job.run(db) == 1
        db.commit()
    assert REGISTRY.get_sample_value(AWAITING) == 0.0
    [listed] = world.client.get(f"/seal/uses/{use_id}/archive-packages", headers=system.headers).json()["items"]
    assert listed["id"] == package["id"] and listed["timestamp_state"] == "stamped" and listed["timestamp_error"] is None
    assert listed["object_key"] != package["object_key"]  # the stamped zip is the package's new object
    with world.hub.factory() as db:
        [stamping] = db.scalars(
            select(AuditRecord).where(AuditRecord.action == "archive.timestamp", AuditRecord.object_id == package["id"])
        )
    assert stamping.detail == {
        "record": use_id, "previous_sha256": package["object_key"], "sha256": listed["object_key"], "size": listed["size"]
    }  # fmt: skip
    with pytest.raises(Exception):  # noqa: B017 - the store's own "not found"
        get_bytes(storage, package["object_key"])  # the unstamped one is gone: disposal leaves nothing behind
    stamped = world.client.get(f"/seal/uses/{use_id}/archive-packages/{package['id']}", headers=system.headers).content
    assert archive.digest("sm3", stamped) == listed["sm3"]
    files_now = archive.read_zip(stamped).files
    assert {k: v for k, v in files_now.items() if k != "timestamp.tsr"} == files  # nothing else changed
    report = check(files_now)
    assert report.ok and "RFC 3161 time stamp at" in _stamp_finding(report).reason, report.failures()
    with world.hub.factory() as db:
        assert job.run(db) == 0  # nothing left to stamp
