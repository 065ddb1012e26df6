"""Benchmarks of the platform: audited writes, audit-log proofs and verification, metrics, scheduler leases.

    python bench/ops_bench.py [--full] [--postgres URL]

Every figure is printed beside a baseline measured in the same run on the same hub.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from ops import audit
from ops.audit import AuditRecord
from ops.auditlog import service
from ops.auditlog.models import LogEntry
from ops.codes import USCC_ALPHABET, uscc_check_char
from ops.db import make_engine, make_sessionmaker
from ops.hubprocess import HubProcess, drop_postgres, fresh_postgres
from ops.scheduler import Job, LeaseRunner
from tests.ops.merkle_textbook import inclusion_proof

ACCEPTS = ("--postgres",)  # the options of bench/run.py this benchmark takes


def _uscc() -> str:
    body = "11330000" + "".join(secrets.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


def _throughput(call: Callable[[], int], *, threads: int, seconds: float, ok: int) -> float:
    """Requests per second answered with status `ok`, from `threads` clients for `seconds`."""
    done = [0] * threads
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            if call() == ok:
                done[i] += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.monotonic() - started)


def _p50_ms(call: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _row(name: str, value: float, unit: str, baseline_name: str, baseline_value: float, target: str = "") -> dict[str, object]:
    row: dict[str, object] = {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline_value": round(baseline_value, 3),
    }
    if target:
        row["target"] = target
    return row


def run(hub: HubProcess, database_url: str, *, records: int, seconds: float) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    token = hub.token()
    assert token

    def write() -> int:
        body = {"code": _uscc(), "name": "基准测试局", "level": "province", "region_code": "330000"}
        return hub.request("POST", "/departments", json_body=body, auth=True)[0]

    healthz = _throughput(lambda: hub.request("GET", "/healthz")[0], threads=4, seconds=seconds, ok=200)
    writes = _throughput(write, threads=4, seconds=seconds, ok=201)
    rows.append(_row("audited write (POST /departments)", writes, "req/s", "GET /healthz", healthz))

    engine = make_engine(database_url)
    factory = make_sessionmaker(engine)
    with factory() as db:
        actor = audit.SystemActor(subject="bench", primary_role="department_system")
        existing = db.scalar(select(text("count(*)")).select_from(AuditRecord)) or 0
        for i in range(max(0, records - int(existing))):
            audit.record(db, actor=actor, action="data.query", object_type="grant", object_id=f"g{i}", purpose="基准")
        db.commit()
    with factory() as db:  # what the sequencer job does, until it has caught up
        while service.sequence(db, grace_seconds=0):
            db.commit()
        db.commit()
    status, checkpoint = hub.request("POST", "/audit/log/checkpoint", auth=True, timeout=120)
    assert status == 201, checkpoint
    size = int(checkpoint["tree_size"])

    with factory() as db:
        ids = list(db.scalars(select(AuditRecord.id).order_by(AuditRecord.id).limit(200)))
    proof_ms = _p50_ms(lambda: hub.request("GET", f"/audit/log/inclusion/{ids[len(ids) // 2]}", auth=True), 50)
    cp_ms = _p50_ms(lambda: hub.request("GET", "/audit/log/checkpoint", auth=True), 50)
    rows.append(_row(f"inclusion proof p50 (log of {size})", proof_ms, "ms", "GET checkpoint p50", cp_ms))

    metrics_ms = _p50_ms(lambda: hub.request("GET", "/metrics"), 30)
    health_ms = _p50_ms(lambda: hub.request("GET", "/healthz"), 30)
    rows.append(_row("GET /metrics p50", metrics_ms, "ms", "GET /healthz p50", health_ms))

    with factory() as db:
        started = time.perf_counter()
        report = service.verify(db, grace_seconds=3600)
        verify_s = time.perf_counter() - started
        assert report.ok, report.problems[:3]
        started = time.perf_counter()
        list(db.scalars(select(AuditRecord).join(LogEntry, LogEntry.audit_id == AuditRecord.id)))
        read_s = time.perf_counter() - started
    rows.append(_row(f"audit verify ({report.entries} records)", verify_s, "s", "reading the same records", read_s))

    # the service builds a proof from O(log n) stored subtree hashes; the baseline is the textbook
    # way, from every leaf hash of the log
    from ops.auth import Principal, Role

    def leaf_hashes(db: Any) -> list[bytes]:
        query = select(LogEntry.leaf_hash).where(LogEntry.index < size).order_by(LogEntry.index)
        return [bytes.fromhex(h) for h in db.scalars(query)]

    admin = Principal(subject="bench", roles=frozenset({Role.PLATFORM_ADMIN}))
    middle = ids[len(ids) // 2]
    with factory() as db:
        stored_ms = _p50_ms(lambda: service.inclusion(db, who=admin, audit_id=middle), 30)
        index = service.inclusion(db, who=admin, audit_id=middle).leaf_index
        all_leaves_ms = _p50_ms(lambda: inclusion_proof(index, leaf_hashes(db)), 10)
    rows.append(_row(f"proof from stored subtrees ({size} leaves)", stored_ms, "ms", "proof from all leaf hashes", all_leaves_ms))

    runner = LeaseRunner(factory, [Job(name=f"bench.{secrets.token_hex(3)}", interval_seconds=0, run=lambda _db: None)])
    job = next(iter(runner.jobs.values()))
    claim_ms = _p50_ms(lambda: runner.run_once(job.name), 50)

    def ping() -> None:
        with factory() as db:
            db.execute(text("SELECT 1"))

    ping_ms = _p50_ms(ping, 50)
    rows.append(_row("scheduler lease claim + release", claim_ms, "ms", "SELECT 1 round trip", ping_ms))
    engine.dispose()
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--full", action="store_true", help="100 000 audit records and 20 s load phases")
    parser.add_argument("--postgres", metavar="URL", help="run the hub on a fresh database next to this PostgreSQL URL")
    args = parser.parse_args(argv)
    records, seconds = (100_000, 20.0) if args.full else (5_000, 4.0)
    name = ""
    url = ""
    if args.postgres:
        url, name = fresh_postgres(args.postgres)
    try:
        with HubProcess(database_url=url, scheduler=False) as hub:
            database_url = url or f"sqlite:///{hub.data_dir / 'govhub.db'}"
            rows = run(hub, database_url, records=records, seconds=seconds)
    finally:
        if name and args.postgres:
            drop_postgres(args.postgres, name)
    for row in rows:
        print(
            f"{row['name']}: {row['value']} {row['unit']}  (baseline {row['baseline_name']}: {row['baseline_value']})",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
