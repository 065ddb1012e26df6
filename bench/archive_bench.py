"""Benchmark of archive packages (电子档案).

    python bench/archive_bench.py [--n 100] [--pdf] [--records 50] [--postgres URL] [--no-timestamp]

1. Archive packages written per second for certificate versions (each a BagIt zip with SHA-256 and SM3
   manifests, DA/T 46 metadata, the audit-log inclusion proofs, stored in object storage and recorded),
   beside the raw write of the same bytes to the same kind of object store in the same run.
2. 四性检测 of one package (from its bytes, no database), in milliseconds.
3. The same for sealed documents (detached GB/T 38540 seal signatures, kept in object storage when made) and for
   sharing-request dossiers (refused requests with their steps, written directly), `--records` of each.

Each package is time-stamped (RFC 3161, over its tag manifest) by the hub's own TSA, as a deployment without an
external TSA does; `--no-timestamp` writes them awaiting a stamp instead (no TSA configured), to see its cost.

The certificates are issued first (without PDF copies unless --pdf) by the same set-up as
bench/certhub_bench.py, in a temporary data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from certhub_bench import World, bulk_rate  # noqa: E402

from certhub import service  # noqa: E402
from govhub.timestamping import configure_time_stamps  # noqa: E402
from ops import timestamping  # noqa: E402
from ops.archive import service as archive  # noqa: E402
from ops.auditlog import service as auditlog  # noqa: E402
from ops.cli import CLI_ADMIN  # noqa: E402
from ops.db import utcnow  # noqa: E402
from ops.hubprocess import drop_postgres, fresh_postgres  # noqa: E402
from ops.storage import LocalStore, get_bytes  # noqa: E402


def _rate_rows(
    label: str, n: int, elapsed: float, packages: list[bytes], data_dir: Path, profiles: dict[str, archive.Profile]
) -> list[dict[str, object]]:
    """packages/s beside the raw write of the same bytes (same run), and 四性检测 per package."""
    raw_store = LocalStore(data_dir / f"raw-{label.split()[0]}")
    t1 = time.perf_counter()
    for data in packages:
        raw_store.put([data + b"\n"])
    raw_elapsed = time.perf_counter() - t1
    size = sum(len(p) for p in packages) / len(packages)
    t2 = time.perf_counter()
    for data in packages:
        report = archive.check_bytes(data, profiles)
        assert report.ok, report.failures()
    return [
        {
            "name": f"archive packages of {n} {label} ({size / 1024:.1f} KiB each, one transaction)",
            "value": round(n / elapsed, 2),
            "unit": "packages/s",
            "baseline_name": "raw writes of the same bytes to the object store",
            "baseline_value": round(n / raw_elapsed, 2),
        },
        {
            "name": f"四性检测 of one package of {label} (no database)",
            "value": round((time.perf_counter() - t2) / len(packages) * 1000, 2),
            "unit": "ms/package",
        },
    ]


def record_class_rows(world: World, store: LocalStore, n: int, data_dir: Path) -> list[dict[str, object]]:
    """Sealed documents (detached seal signatures) and sharing-request dossiers: written, then archived."""
    from exchange import service as exchange
    from exchange.models import RequestTransition, SharingRequest
    from ops import audit
    from seal import service as seals

    sealer = audit.SystemActor(subject=seals.CERTHUB, primary_role="system")
    started = utcnow() - timedelta(minutes=1)
    with world.factory() as db:
        for i in range(n):
            seals.sign_detached_der(
                db, vault=world.vault, department_id=world.bureau.id, data=f"行政许可决定书 {i}".encode(),
                purpose="行政许可决定书用印", actor=sealer, settings=world.settings, storage=store,
            )  # fmt: skip
        for i in range(n):
            req = SharingRequest(
                consumer_department_id=world.window.id, provider_department_id=world.bureau.id, resource_id=f"res-{i}",
                version_id=f"ver-{i}", resource_version=1, resource_code=f"11000011A{i:05d}", resource_name="人口基本信息",
                sharing_type="conditional", items=["姓名"], clear_items=[], purpose="办理社会救助资格审核",
                scenario="窗口受理", legal_basis="《社会救助暂行办法》第十一条", valid_from=utcnow().date(),
                valid_until=utcnow().date(), contact_name="李四", contact_phone="010-12345678", state="refused",
                filed_by="bench", decided_at=utcnow(), reason="材料不全",
            )  # fmt: skip
            db.add(req)
            db.flush()
            for action, before, after in (("file", None, "submitted"), ("refuse", "submitted", "refused")):
                reason = "材料不全" if after == "refused" else None
                db.add(
                    RequestTransition(
                        request_id=req.id, action=action, from_state=before, to_state=after, actor="bench",
                        actor_role="platform_admin", reason=reason, detail={},
                    )
                )  # fmt: skip
                audit.record(
                    db, actor=CLI_ADMIN, action=f"sharing_request.{action}", object_type="sharing_request", object_id=req.id
                )
        db.commit()
    with world.factory() as db:
        auditlog.checkpoint_now(db, vault=world.vault, store=store, force=True, grace_seconds=0)
        db.commit()
    rows: list[dict[str, object]] = []
    until = utcnow() + timedelta(minutes=1)
    profiles = {**seals.ARCHIVE_PROFILES, **exchange.ARCHIVE_PROFILES}
    for label, archiver in (("sealed documents", seals.archive_uses_between), ("dossiers", exchange.archive_requests_between)):
        t0 = time.perf_counter()
        with world.factory() as db:
            written, skipped = archiver(
                db, who=CLI_ADMIN, storage=store, settings=world.settings, vault=world.vault, since=started, until=until
            )
            db.commit()
        elapsed = time.perf_counter() - t0
        assert not skipped and len(written) == n, (label, skipped[:3], len(written))
        rows += _rate_rows(label, n, elapsed, [get_bytes(store, p.object_key) for p in written], data_dir, profiles)
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="certificate versions to archive")
    parser.add_argument("--pdf", action="store_true", help="issue the certificates with sealed PDF copies")
    parser.add_argument("--records", type=int, default=50, help="sealed documents and dossiers to archive (0: none)")
    parser.add_argument("--postgres", default=os.environ.get("GOVHUB_BENCH_POSTGRES_URL", ""), help="a PostgreSQL server URL")
    parser.add_argument("--no-timestamp", action="store_true", help="no TSA: packages are written awaiting their stamp")
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="archive-bench-"))
    database_url, pg_name = ("", "")
    if args.postgres:
        database_url, pg_name = fresh_postgres(args.postgres)
    rows: list[dict[str, object]] = []
    try:
        world = World(data_dir, algorithm="ES256", database_url=database_url)
        if args.no_timestamp:
            timestamping.configure(stamper=None, trust=None)
        else:
            configure_time_stamps(world.settings)
        store = LocalStore(data_dir / "objects")
        started = utcnow() - timedelta(minutes=1)
        bulk_rate(world, args.n, pdf=args.pdf, offset=0)
        with world.factory() as db:
            auditlog.checkpoint_now(db, vault=world.vault, store=store, force=True, grace_seconds=0)
            db.commit()
        t0 = time.perf_counter()
        with world.factory() as db:
            written, skipped = service.archive_range(
                db,
                who=CLI_ADMIN,
                storage=store,
                settings=world.settings,
                vault=world.vault,
                since=started,
                until=utcnow() + timedelta(minutes=1),
            )
            db.commit()
        elapsed = time.perf_counter() - t0
        assert not skipped and len(written) == args.n, skipped[:3]
        wanted = "awaiting" if args.no_timestamp else "stamped"
        assert all(p.timestamp_state == wanted for p in written), [p.timestamp_error for p in written][:3]
        packages = [get_bytes(store, p.object_key) for p in written]
        raw_store = LocalStore(data_dir / "raw")
        t1 = time.perf_counter()
        for data in packages:
            raw_store.put([data + b"\n"])  # a different key than the package's: a real write, not a no-op
        raw_elapsed = time.perf_counter() - t1
        size = sum(len(p) for p in packages) / len(packages)
        rows.append(
            {
                "name": f"archive packages of {args.n} certificate versions ({'with' if args.pdf else 'no'} PDF; "
                f"{size / 1024:.1f} KiB each, one transaction)",
                "value": round(args.n / elapsed, 2),
                "unit": "packages/s",
                "baseline_name": "raw writes of the same bytes to the object store",
                "baseline_value": round(args.n / raw_elapsed, 2),
            }
        )
        t2 = time.perf_counter()
        for data in packages:
            report = archive.check_bytes(data, service.ARCHIVE_PROFILES)
            assert report.ok, report.failures()
        rows.append(
            {
                "name": "四性检测 of one package (no database)",
                "value": round((time.perf_counter() - t2) / len(packages) * 1000, 2),
                "unit": "ms/package",
            }
        )
        if args.records:
            rows += record_class_rows(world, store, args.records, data_dir)
        world.engine.dispose()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if pg_name:
            drop_postgres(args.postgres, pg_name)
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
