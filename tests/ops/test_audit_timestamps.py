"""Audit checkpoints carry an RFC 3161 time stamp over their signed bytes; when the time-stamp authority is
unreachable they wait, visibly, and the audit-log job stamps them later. OpenSSL checks the tokens."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session

from ops import audit, timestamping
from ops.auditlog import service
from ops.auditlog import tasks as auditlog_tasks
from ops.auditlog.models import LogCheckpoint, LogTimestamp
from ops.hubprocess import free_port
from tests.conftest import Hub

AWAITING = "govhub_audit_log_checkpoints_awaiting_timestamp"


def _some_records(db: Session, count: int = 3) -> None:
    for n in range(count):
        audit.record(db, actor=audit.SYSTEM, action="test.event", object_type="thing", object_id=f"t-{n}")
    db.commit()


def _checkpoint(client: TestClient, hub: Hub) -> dict[str, object]:
    response = client.post("/audit/log/checkpoint", headers=hub.admin.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def _timestamp_job(hub: Hub) -> auditlog_tasks.Job:
    (job,) = [j for j in auditlog_tasks.jobs(vault=hub.app.state.vault, store=None) if j.name == "audit_log.timestamp"]
    return job


def test_a_checkpoint_is_time_stamped_and_openssl_verifies_the_token(
    client: TestClient, hub: Hub, db: Session, tmp_path: Path
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl on this machine")
    _some_records(db)
    signed = _checkpoint(client, hub)
    assert signed["timestamp_state"] == "stamped" and signed["timestamped_at"] is not None
    latest = client.get("/audit/log/checkpoint", headers=hub.admin.headers).json()
    assert latest["timestamp_token"] == signed["timestamp_token"]

    import base64

    (tmp_path / "checkpoint.bin").write_bytes(str(signed["body"]).encode() + str(signed["signature"]).encode())
    (tmp_path / "token.der").write_bytes(base64.b64decode(str(signed["timestamp_token"])))
    ca = client.get("/seal/ca").json()
    (tmp_path / "root.pem").write_text(ca["root"])
    (tmp_path / "issuing.pem").write_text(ca["issuing"])
    verified = subprocess.run(
        [openssl, "ts", "-verify", "-data", str(tmp_path / "checkpoint.bin"), "-in", str(tmp_path / "token.der"), "-token_in",
         "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "issuing.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stdout + verified.stderr

    report = service.verify(db, grace_seconds=3600)
    assert report.ok, report.problems
    assert report.timestamped >= 1 and report.awaiting_timestamp == 0


def test_an_unreachable_tsa_leaves_the_checkpoint_awaiting_until_the_job_stamps_it(
    client: TestClient, hub: Hub, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _some_records(db)
    working = timestamping.current_stamper()
    nobody_listens = timestamping.http_stamper(f"http://127.0.0.1:{free_port()}/tsa", timeout=5)
    monkeypatch.setattr(timestamping, "_stamper", nobody_listens)

    signed = _checkpoint(client, hub)  # signed all the same, and said to be waiting
    assert signed["timestamp_state"] == "awaiting" and signed["timestamp_token"] is None
    assert REGISTRY.get_sample_value(AWAITING) == 1.0
    report = service.verify(db, grace_seconds=3600)
    assert report.ok and report.awaiting_timestamp == 1  # waiting is not tampering, and it is counted

    job = _timestamp_job(hub)
    with pytest.raises(timestamping.StampUnavailable, match=r"1 checkpoint\(s\) await a time stamp"):
        job.run(db)  # the job fails visibly (the scheduler counts the failure) while the TSA is away
    db.rollback()
    assert db.scalars(select(LogTimestamp)).all() == []

    monkeypatch.setattr(timestamping, "_stamper", working)  # the TSA is back
    assert job.run(db) == 1
    db.commit()
    assert REGISTRY.get_sample_value(AWAITING) == 0.0
    latest = client.get("/audit/log/checkpoint", headers=hub.admin.headers).json()
    assert latest["timestamp_state"] == "stamped" and latest["signature"] == signed["signature"]
    stamp = db.scalars(select(LogTimestamp)).one()
    assert stamp.stamped_at >= stamp.gen_time  # stamped later, at the time the token states
    assert service.verify(db, grace_seconds=3600).timestamped == 1


def test_a_time_stamp_over_other_data_is_reported_by_verify(client: TestClient, hub: Hub, db: Session) -> None:
    _some_records(db)
    working = timestamping.current_stamper()
    assert working is not None
    checkpoint = db.scalars(select(LogCheckpoint).order_by(LogCheckpoint.id.desc())).first()
    if checkpoint is None:
        service.checkpoint_now(db, vault=hub.app.state.vault, store=None, force=True, grace_seconds=0)
        checkpoint = db.scalars(select(LogCheckpoint).order_by(LogCheckpoint.id.desc())).one()
    forged = working(db, hashlib.sha256(b"some other checkpoint").digest())
    db.add(LogTimestamp(checkpoint_id=checkpoint.id, token=forged, gen_time=checkpoint.signed_at))
    db.flush()
    problems = service.verify(db, grace_seconds=3600).problems
    assert [p["kind"] for p in problems] == ["bad_timestamp"]
    assert "over other data" in problems[0]["detail"] and str(checkpoint.id) in problems[0]["detail"]
