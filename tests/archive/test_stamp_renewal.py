"""An archive package's time stamps are renewed as a chain before the last stamp's authority certificate expires
(RFC 4998's idea): `timestamp-2.tsr` is a token over the previous token followed by the tag manifest. OpenSSL
verifies the renewal on its own, bagit-python still validates the bag, 四性检测 checks the chain from the package
alone and answers "as of" a past time with the stamp that carried the evidence."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bagit
import pytest
from sqlalchemy import select

from govhub.archives import ARCHIVE_PROFILES
from ops import timestamping
from ops.archive import packages
from ops.archive import service as archive
from ops.archive import tasks as archive_tasks
from ops.audit import AuditRecord
from ops.db import utcnow
from ops.hubprocess import free_port
from tests.archive.test_records import archived, check, checkpoint, detached_use, sealing_department, unpack, without_database
from tests.exchange.conftest import World
from tests.seal.helpers import ltv_tsa


def _short_lived_stamper(world: World, *, days_left: int) -> timestamping.Stamper:
    """A TSA certified by the hub's issuing CA whose certificate expires in `days_left` days."""
    app = world.hub.app
    with world.hub.factory() as db:
        tsa = ltv_tsa(
            db, app.state.vault, public_url=app.state.settings.public_url, years=1,
            not_before=utcnow() - timedelta(days=365 - days_left),
        )  # fmt: skip
        db.commit()
    return lambda _db, digest: timestamping.token_for(tsa, digest)


def _renew(world: World) -> int:
    [job] = [j for j in archive_tasks.jobs(store=world.hub.app.state.storage) if j.name == "archive.renew_stamps"]
    with world.hub.factory() as db:
        renewed: int = job.run(db)
        db.commit()
    return renewed


def _stamp(report: archive.Report) -> archive.Finding:
    [finding] = [f for f in report.findings if f.check == "time stamp"]
    return finding


def _renewed_package(world: World, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, dict[str, Any], bytes]:
    system = sealing_department(world)
    use_id = detached_use(world, system)
    checkpoint(world.hub)
    working = timestamping.current_stamper()
    monkeypatch.setattr(timestamping, "_stamper", _short_lived_stamper(world, days_left=30))
    first = archived(world, system, f"/seal/uses/{use_id}")
    monkeypatch.setattr(timestamping, "_stamper", working)  # renewals go to the hub's own, longer-lived TSA
    base = f"/seal/uses/{use_id}/archive-packages"
    [before] = world.client.get(base, headers=system.headers).json()["items"]
    assert before["stamp_chain_length"] == 1 and before["stamp_digest_algorithm"] == "sha256"
    expires = datetime.fromisoformat(before["stamp_expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) < timedelta(days=31)
    assert datetime.fromisoformat(before["stamp_renewal_due_at"]) <= datetime.now(UTC)  # within the 365-day margin
    assert "timestamp-2.tsr" not in archive.read_zip(first).files

    assert _renew(world) == 1
    [after] = world.client.get(base, headers=system.headers).json()["items"]
    assert after["stamp_chain_length"] == 2 and after["stamp_renewal_error"] is None
    assert after["object_key"] != before["object_key"]  # the renewed zip is the package's new object
    with world.hub.factory() as db:
        [renewal] = db.scalars(
            select(AuditRecord).where(AuditRecord.action == "archive.timestamp_renewal", AuditRecord.object_id == after["id"])
        )
    assert renewal.detail == {
        "record": use_id, "stamp": "timestamp-2.tsr", "previous_sha256": before["object_key"],
        "sha256": after["object_key"], "size": after["size"],
    }  # fmt: skip
    assert datetime.fromisoformat(after["stamp_expires_at"]) > expires
    data = world.client.get(f"{base}/{after['id']}", headers=system.headers).content
    assert archive.digest("sm3", data) == after["sm3"]
    return system, base, after, data


def test_a_stamp_whose_tsa_certificate_expires_soon_is_renewed_and_the_chain_verifies(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, _, _, data = _renewed_package(world, monkeypatch)
    assert _renew(world) == 0  # not due again: the new stamp's authority lasts beyond the margin

    files = archive.read_zip(data).files
    assert {"timestamp.tsr", "timestamp-2.tsr"} <= files.keys() and "timestamp-3.tsr" not in files
    report = check(files)
    assert report.ok, report.failures()
    finding = _stamp(report)
    assert "renewed 1 time(s) up to timestamp-2.tsr" in finding.reason and finding.file == "timestamp-2.tsr"

    bag_dir = unpack(data, tmp_path / "bag")
    bagit.Bag(str(bag_dir)).validate()  # the stamps are tag files no tag manifest lists: still a valid bag

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl on this machine")
    ca = world.client.get("/seal/ca").json()
    (tmp_path / "root.pem").write_text(ca["root"])
    (tmp_path / "issuing.pem").write_text(ca["issuing"])
    covered = files["timestamp.tsr"] + files["tagmanifest-sha256.txt"]

    def verify(digest: bytes) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [openssl, "ts", "-verify", "-digest", digest.hex(), "-in", str(bag_dir / "timestamp-2.tsr"), "-token_in",
             "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "issuing.pem")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    verified = verify(hashlib.sha256(covered).digest())
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stdout + verified.stderr
    alone = verify(hashlib.sha256(files["tagmanifest-sha256.txt"]).digest())
    assert alone.returncode != 0  # the renewal covers the first stamp too, not the tag manifest alone

    trusted = archive.check_bag(archive.Bag(files), ARCHIVE_PROFILES, archive.Trust.from_documents([ca]))
    assert trusted.ok and "not verified" not in _stamp(trusted).reason, trusted.failures()


def test_a_chain_with_a_stamp_removed_or_reordered_fails_naming_the_file(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, _, data = _renewed_package(world, monkeypatch)
    files = archive.read_zip(data).files

    removed = {k: v for k, v in files.items() if k != "timestamp.tsr"}
    failures = check(removed).failures()
    assert [(f.check, f.file) for f in failures] == [("time stamp", "timestamp.tsr")], failures
    assert "timestamp.tsr is missing" in failures[0].reason
    broken = archive.check_bag(archive.Bag(removed), ARCHIVE_PROFILES, as_of=utcnow()).as_of_result
    assert broken is not None and not broken["proven"] and "no valid chain" in broken["reason"], broken

    swapped = dict(files, **{"timestamp.tsr": files["timestamp-2.tsr"], "timestamp-2.tsr": files["timestamp.tsr"]})
    failures = check(swapped).failures()
    assert [(f.check, f.file) for f in failures] == [("time stamp", "timestamp.tsr")], failures
    assert "over other data" in failures[0].reason

    stray = dict(files, **{"timestamp-4.tsr": files["timestamp-2.tsr"]})  # a gap: no timestamp-3.tsr
    failures = check(stray).failures()
    assert [(f.check, f.file) for f in failures] == [("time stamp", "timestamp-3.tsr")], failures

    manifest = files["tagmanifest-sha256.txt"]
    changed = dict(files, **{"tagmanifest-sha256.txt": manifest + b"\n"})  # the data under the chain changed
    assert any(f.check == "time stamp" and f.file == "timestamp.tsr" for f in check(changed).failures())


def test_evidence_as_of_a_past_time_names_the_stamp_that_carried_it(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, _, _, data = _renewed_package(world, monkeypatch)
    files = archive.read_zip(data).files
    made = timestamping.gen_time(files["timestamp.tsr"])
    assert made is not None

    now = archive.check_bag(archive.Bag(files), ARCHIVE_PROFILES, as_of=utcnow())
    assert now.as_of_result is not None and now.as_of_result["proven"], now.as_of_result
    assert now.as_of_result["stamp"] == "timestamp.tsr"  # the earliest stamp whose authority was valid then

    earlier = archive.check_bag(archive.Bag(files), ARCHIVE_PROFILES, as_of=made - timedelta(days=1))
    assert earlier.as_of_result is not None and not earlier.as_of_result["proven"]
    assert (
        earlier.as_of_result["stamp"] is None
        and "the first time stamp (timestamp.tsr) was made later" in earlier.as_of_result["reason"]
    )
    assert [(f.check, f.ok) for f in earlier.failures()] == [("evidence as of", False)]

    def post(as_of: str) -> Any:
        return world.client.post(
            "/archive/check",
            files=[("file", ("package.zip", data, "application/zip"))],
            data={"as_of": as_of},
            headers=world.hub.admin.headers,
        )

    answer = post((made - timedelta(days=1)).isoformat())
    assert answer.status_code == 200, answer.text
    assert answer.json()["as_of"]["proven"] is False and answer.json()["ok"] is False
    answer = post(utcnow().isoformat())
    assert answer.status_code == 200 and answer.json()["as_of"]["stamp"] == "timestamp.tsr", answer.text
    future = post((utcnow() + timedelta(days=1)).isoformat())
    assert future.status_code == 422 and "in the future" in future.json()["detail"], future.text
    garbage = post("last tuesday")
    assert garbage.status_code == 422 and "not an ISO 8601 time" in garbage.json()["detail"], garbage.text
    naive = post("2026-01-01T00:00:00")
    assert naive.status_code == 422 and "time zone" in naive.json()["detail"], naive.text

    (tmp_path / "package.zip").write_bytes(data)
    run = without_database(tmp_path, "archive", "check", "package.zip", "--as-of", utcnow().isoformat())
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["as_of"]["stamp"] == "timestamp.tsr"
    run = without_database(tmp_path, "archive", "check", "package.zip", "--as-of", "yesterday-ish")
    assert run.returncode != 0 and "not an ISO 8601 time" in run.stderr, run.stdout + run.stderr


def test_a_renewal_that_fails_stays_due_with_its_reason_and_a_renewal_that_proves_nothing_more_is_not_made(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = sealing_department(world)
    use_id = detached_use(world, system)
    checkpoint(world.hub)
    working = timestamping.current_stamper()
    monkeypatch.setattr(timestamping, "_stamper", _short_lived_stamper(world, days_left=30))
    archived(world, system, f"/seal/uses/{use_id}")  # due at once: its authority expires within the margin
    base = f"/seal/uses/{use_id}/archive-packages"
    storage = world.hub.app.state.storage
    settings = world.hub.app.state.settings
    monkeypatch.setattr(timestamping, "_stamper", working)

    def renew(settings: Any = settings, now: datetime | None = None) -> packages.RenewalRun:
        with world.hub.factory() as db:
            run = packages.renew_stamps(db, storage=storage, settings=settings, now=now)
            db.commit()
        return run

    def listed() -> Any:
        [item] = world.client.get(base, headers=system.headers).json()["items"]
        return item

    refused = renew(settings.model_copy(update={"seal_lta_weakened_digests": "SHA-1, sha256"}))
    assert (refused.renewed, refused.failed) == (0, 1)
    assert listed()["stamp_chain_length"] == 1 and "sha256 is itself listed as weakened" in listed()["stamp_renewal_error"]

    monkeypatch.setattr(timestamping, "_stamper", timestamping.http_stamper(f"http://127.0.0.1:{free_port()}/tsa", timeout=5))
    stopped = renew()
    assert stopped.renewed == 0 and stopped.failure is not None and "did not answer" in stopped.failure
    assert listed()["stamp_chain_length"] == 1 and "did not answer" in listed()["stamp_renewal_error"]

    monkeypatch.setattr(timestamping, "_stamper", working)  # the TSA is back: the package is still due, and renewed
    assert renew().renewed == 1
    assert listed()["stamp_chain_length"] == 2 and listed()["stamp_renewal_error"] is None
    data = world.client.get(f"{base}/{listed()['id']}", headers=system.headers).content
    assert check(archive.read_zip(data).files).ok

    # Years later the hub's authority nears its own expiry; a stamp from that same authority would add nothing.
    key = listed()["object_key"]
    pointless = renew(now=utcnow() + timedelta(days=365 * 30))
    assert (pointless.renewed, pointless.failed) == (0, 1)
    assert listed()["stamp_chain_length"] == 2 and listed()["object_key"] == key
    assert "would prove nothing more" in listed()["stamp_renewal_error"]
