"""Benchmark of archive packages (电子档案).

    python bench/archive_bench.py [--n 100] [--pdf] [--postgres URL]

1. Archive packages written per second for certificate versions (each a BagIt zip with SHA-256 and SM3
   manifests, DA/T 46 metadata, the audit-log inclusion proofs, stored in object storage and recorded),
   beside the raw write of the same bytes to the same kind of object store in the same run.
2. 四性检测 of one package (from its bytes, no database), in milliseconds.

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
from ops.archive import service as archive  # noqa: E402
from ops.auditlog import service as auditlog  # noqa: E402
from ops.cli import CLI_ADMIN  # noqa: E402
from ops.db import utcnow  # noqa: E402
from ops.hubprocess import drop_postgres, fresh_postgres  # noqa: E402
from ops.storage import LocalStore, get_bytes  # noqa: E402


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="certificate versions to archive")
    parser.add_argument("--pdf", action="store_true", help="issue the certificates with sealed PDF copies")
    parser.add_argument("--postgres", default=os.environ.get("GOVHUB_BENCH_POSTGRES_URL", ""), help="a PostgreSQL server URL")
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="archive-bench-"))
    database_url, pg_name = ("", "")
    if args.postgres:
        database_url, pg_name = fresh_postgres(args.postgres)
    rows: list[dict[str, object]] = []
    try:
        world = World(data_dir, algorithm="ES256", database_url=database_url)
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
