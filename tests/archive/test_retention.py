"""Retention, legal hold, disposal with tombstones, and transfer of archive packages to an archive system."""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bagit
import pytest
from sqlalchemy import select, update

from govhub.archives import ARCHIVE_PROFILES
from ops.archive import service as archive
from ops.archive.models import ArchivePackage
from ops.audit import AuditRecord
from ops.errors import HubError
from tests.archive.test_records import (
    archived,
    checkpoint,
    detached_use,
    granted_dossier,
    sealing_department,
    unpack,
    without_database,
)
from tests.exchange.conftest import World


def age(world: World, record_id: str, *, years: int) -> None:
    """Move the start of a record's retention `years` back (as if it had ended then)."""
    with world.hub.factory() as db:
        db.execute(
            update(ArchivePackage)
            .where(ArchivePackage.record_id == record_id)
            .values(retention_from=datetime.now(UTC) - timedelta(days=365 * years + 3))
        )
        db.commit()


def test_a_due_dossier_is_disposed_of_on_approval_leaving_a_tombstone_and_a_hold_blocks_it(world: World) -> None:
    old, recent = granted_dossier(world), granted_dossier(world)
    checkpoint(world.hub)
    archived(world, world.consumer, f"/exchange/requests/{old}")
    archived(world, world.consumer, f"/exchange/requests/{recent}")
    age(world, old, years=11)  # dossiers are kept 10 years
    admin = world.admin.headers
    assert world.client.get("/archive/retention", headers=admin).json()["years"]["sharing_dossier"] == 10
    due = world.client.get("/archive/due", headers=admin, params={"record_class": "sharing_dossier"}).json()["items"]
    assert [d["record_id"] for d in due] == [old]

    # Disposal before due: a clear 409 saying until when the record is kept.
    early = world.client.post(
        "/archive/disposals", headers=admin, json={"records": [{"record_class": "sharing_dossier", "record_id": recent}]}
    )
    assert early.status_code == 409 and "is kept until" in early.json()["detail"], early.text

    # A legal hold blocks the disposal of a held record, naming the hold.
    hold = world.client.post(
        "/archive/holds", headers=admin, json={"record_class": "sharing_dossier", "record_id": old, "reason": "行政复议案件在办"}
    )
    assert hold.status_code == 201, hold.text
    held = world.client.post(
        "/archive/disposals", headers=admin, json={"records": [{"record_class": "sharing_dossier", "record_id": old}]}
    )
    assert held.status_code == 409 and hold.json()["id"] in held.json()["detail"] and "legal hold" in held.json()["detail"]
    by_class = world.client.post("/archive/disposals", headers=admin, json={"record_class": "sharing_dossier"})
    assert by_class.status_code == 409 and "no record is due" in by_class.json()["detail"]  # the held one is left out

    # Only the platform places holds, proposes and approves.
    refused = world.client.post("/archive/disposals", headers=world.consumer.headers, json={"record_class": "sharing_dossier"})
    assert refused.status_code == 403

    released = world.client.post(f"/archive/holds/{hold.json()['id']}/release", headers=admin, json={"reason": "案件已办结"})
    assert released.status_code == 200 and released.json()["released_at"]
    proposed = world.client.post("/archive/disposals", headers=admin, json={"record_class": "sharing_dossier"})
    assert proposed.status_code == 201, proposed.text
    listing = proposed.json()
    assert [i["record_id"] for i in listing["items"]] == [old] and listing["status"] == "proposed"

    # A hold placed after the proposal still blocks the approval, and nothing is destroyed.
    late = world.client.post(
        "/archive/holds", headers=admin, json={"record_class": "sharing_dossier", "record_id": old, "reason": "审计调阅"}
    ).json()
    blocked = world.client.post(f"/archive/disposals/{listing['id']}/approve", headers=admin)
    assert blocked.status_code == 409 and late["id"] in blocked.json()["detail"]
    with world.hub.factory() as db:
        kept = db.scalars(select(ArchivePackage).where(ArchivePackage.record_id == old)).all()
        assert kept and all(p.disposed_at is None for p in kept)
        assert all(world.hub.app.state.storage.exists(p.object_key) for p in kept)
    world.client.post(f"/archive/holds/{late['id']}/release", headers=admin, json={"reason": "调阅完毕"})

    # Approval by someone without the platform role is refused.
    assert world.client.post(f"/archive/disposals/{listing['id']}/approve", headers=world.provider.headers).status_code == 403
    approved = world.client.post(f"/archive/disposals/{listing['id']}/approve", headers=admin)
    assert approved.status_code == 200, approved.text
    [stone] = approved.json()["items"]
    assert stone["record_id"] == old and stone["approved_by"] == world.admin.client.client_id  # type: ignore[union-attr]
    with world.hub.factory() as db:
        package = db.get(ArchivePackage, stone["package_id"])
        assert package is not None and package.disposed_at is not None
        assert stone["package_sha256"] == package.object_key and stone["package_sm3"] == package.sm3
        assert not world.hub.app.state.storage.exists(package.object_key)
        actions = {r.action for r in db.scalars(select(AuditRecord).where(AuditRecord.object_id == f"sharing_dossier/{old}"))}
        assert {"archive.hold", "archive.hold.release", "archive.dispose"} <= actions
    assert world.client.get("/archive/tombstones", headers=admin, params={"record_id": old}).json()["items"] == [stone]
    gone = world.client.get(f"/exchange/requests/{old}/archive-packages/{stone['package_id']}", headers=world.consumer.headers)
    assert gone.status_code == 404 and "disposed of" in gone.json()["detail"]
    again = world.client.post(f"/archive/disposals/{listing['id']}/approve", headers=admin)
    assert again.status_code == 409
    # The other record is untouched.
    assert world.client.get(f"/exchange/requests/{recent}/archive-packages", headers=world.consumer.headers).json()["items"]


def test_bad_disposal_and_hold_requests_get_a_clear_4xx(world: World) -> None:
    admin = world.admin.headers
    unknown = world.client.post(
        "/archive/disposals", headers=admin, json={"records": [{"record_class": "sharing_dossier", "record_id": "nope"}]}
    )
    assert unknown.status_code == 404 and "no archive package" in unknown.json()["detail"]
    neither = world.client.post("/archive/disposals", headers=admin, json={})
    assert neither.status_code == 422
    short = world.client.post("/archive/holds", headers=admin, json={"record_class": "x", "record_id": "y", "reason": "a"})
    assert short.status_code == 422
    assert world.client.post("/archive/holds/nope/release", headers=admin, json={"reason": "done"}).status_code == 404


def test_a_transfer_is_checked_by_the_receiver_and_by_bagit(world: World, tmp_path: Path) -> None:
    system = sealing_department(world)
    uses = [detached_use(world, system) for _ in range(2)]
    checkpoint(world.hub)
    for use_id in uses:
        archived(world, system, f"/seal/uses/{use_id}")
    today = datetime.now(UTC).date()
    body = {
        "record_class": "sealed_document",
        "since": f"{today.isoformat()}T00:00:00+00:00",
        "until": f"{(today + timedelta(days=1)).isoformat()}T00:00:00+00:00",
    }
    response = world.client.post("/archive/transfers", headers=world.admin.headers, json=body)
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip", response.text
    data = response.content
    where = unpack(data, tmp_path / "transfer")
    bagit.Bag(str(where)).validate()
    manifest = json.loads((where / "data/transfer-manifest.json").read_text())
    assert sorted(p["record_id"] for p in manifest["packages"]) == sorted(uses)
    (tmp_path / "transfer.zip").write_bytes(data)
    run = without_database(tmp_path, "archive", "check-transfer", "transfer.zip")
    assert run.returncode == 0, run.stdout + run.stderr
    assert all(p["ok"] for p in json.loads(run.stdout)["packages"])

    # One byte changed inside a package (the outer manifests recomputed): the receiver names the package.
    files = archive.read_zip(data).files
    inner_name = sorted(n for n in files if n.startswith("data/packages/"))[0]
    inner = archive.read_zip(files[inner_name]).files
    der = bytearray(inner["data/original/seal-signature.der"])
    der[len(der) // 2] ^= 0x01
    inner["data/original/seal-signature.der"] = bytes(der)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, content in inner.items():
            z.writestr(f"bag/{name}", content)
    payload = {n[5:]: d for n, d in files.items() if n.startswith("data/")} | {inner_name[5:]: out.getvalue()}
    forged = archive.write_bag(payload, info={}, root="transfer")
    report = archive.check_transfer_bytes(forged, ARCHIVE_PROFILES)
    assert not report.ok
    assert any(f.check == "transfer manifest" and not f.ok and f.file == inner_name for f in report.transfer.findings)
    [(name, bad, _)] = [(n, r, x) for n, r, x in report.packages if r is not None and not r.ok]
    assert name == inner_name[5:] and any(f.file == "data/original/seal-signature.der" for f in bad.failures())

    # An unlisted package slipped into the transfer is named.
    extra = archive.write_bag(payload | {"packages/sealed_document/extra.zip": out.getvalue()}, info={}, root="transfer")
    reasons = [f.reason for f in archive.check_transfer_bytes(extra, ARCHIVE_PROFILES).transfer.failures()]
    assert "packages/sealed_document/extra.zip is in the transfer but not in transfer-manifest.json" in reasons

    nothing = world.client.post(
        "/archive/transfers", headers=world.admin.headers, json={**body, "record_class": "sharing_dossier"}
    )
    assert nothing.status_code == 404
    backwards = world.client.post("/archive/transfers", headers=world.admin.headers, json={**body, "until": body["since"]})
    assert backwards.status_code == 422
    naive = world.client.post("/archive/transfers", headers=world.admin.headers, json={**body, "since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422


def test_the_commands_archive_hold_dispose_and_approve(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from exchange.cli import _archive as exchange_archive
    from ops.archive import cli
    from seal.cli import seals_archive

    monkeypatch.setattr(cli, "make_store", lambda _settings: world.hub.app.state.storage)  # the test hub's store

    system = sealing_department(world)
    use_id = detached_use(world, system)
    request_id = granted_dossier(world)
    today = datetime.now(UTC).date()
    period = {"since": today, "until": today + timedelta(days=1), "department": None}
    settings = world.hub.settings
    with world.hub.factory() as db:
        seals_archive(db, settings, argparse.Namespace(**period, out=tmp_path / "seals"))
        exchange_archive(db, settings, argparse.Namespace(**period, out=tmp_path / "dossiers"))
        db.commit()
    printed = capsys.readouterr().out
    assert use_id in printed and request_id in printed
    for package in [*sorted((tmp_path / "seals").glob("*.zip")), *sorted((tmp_path / "dossiers").glob("*.zip"))]:
        assert archive.check_path(package, ARCHIVE_PROFILES).ok, package

    age(world, use_id, years=31)
    with world.hub.factory() as db:
        cli._hold(db, settings, argparse.Namespace(record_class="sealed_document", record_id=use_id, reason="诉讼保全"))
        db.commit()
    hold_id = capsys.readouterr().out.strip()
    with world.hub.factory() as db, pytest.raises(HubError) as held:
        cli._dispose(db, settings, argparse.Namespace(records=[f"sealed_document/{use_id}"], record_class=None))
    assert held.value.status == 409 and hold_id in held.value.detail
    with world.hub.factory() as db:
        cli._release(db, settings, argparse.Namespace(hold_id=hold_id, reason="解除保全"))
        cli._dispose(db, settings, argparse.Namespace(records=[f"sealed_document/{use_id}"], record_class=None))
        db.commit()
    listing = json.loads(capsys.readouterr().out.split(" released\n", 1)[1])
    with world.hub.factory() as db:
        cli._approve(db, settings, argparse.Namespace(list_id=listing["id"], approver="档案室 王五"))
        db.commit()
    assert f"sealed_document/{use_id}" in capsys.readouterr().out
    with world.hub.factory() as db:
        cli._tombstones(db, settings, argparse.Namespace(record_class="sealed_document", record=use_id))
    [stone] = json.loads(capsys.readouterr().out)
    assert stone["approved_by"] == "cli:档案室 王五" and stone["proposed_by"] == "cli"


def test_a_filter_given_twice_is_refused(world: World) -> None:
    twice = world.client.get("/archive/holds?record_class=a&record_class=b", headers=world.admin.headers)
    assert twice.status_code == 422 and "more than once: record_class" in twice.json()["detail"], twice.text
