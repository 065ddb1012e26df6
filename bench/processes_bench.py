"""Several hub processes on one PostgreSQL: each process's throughput, the database's, and pgbench's.

    python bench/processes_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
        [--seconds 10] [--connections 32] [--rows 20000] [--pgbench /usr/bin/pgbench]

On a fresh database next to the given URL: one hub process serves the exchange benchmark's world (a
published entry with a dataset, a grant; bench/exchange_bench.py), then granted lookups are sent, for
the same time each, to

1. one hub process (`govhub serve`, one worker),
2. the same process with `--workers 2`,
3. two hub processes side by side (each its own port, the same database),

and for each the requests per second of every process and the database's transactions per second
(the delta of pg_stat_database.xact_commit over the load). In the same run, `pgbench` on a scratch
database of the same server (`pgbench -i`, then the select-only `-S` and the default TPC-B-like
transaction, as long as each load) gives what this machine's PostgreSQL commits when nothing but
pgbench's client talks to it. The figures are read in docs/operations.md, "Several processes".
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ops.hubprocess import HubProcess, drop_postgres, fresh_postgres

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exchange_bench
from loadgen import _load, http_request, status_ok

ACCEPTS = ("--postgres",)  # the options of bench/run.py this benchmark takes


class _Served:
    """What exchange_bench's setup needs of a hub: its base URL."""

    def __init__(self, url: str) -> None:
        self.url = url


def _hub(url: str, data_dir: Path, master_key: str, workers: int = 1) -> HubProcess:
    env = {
        "GOVHUB_MASTER_KEY": master_key,  # every process of one hub shares its master key
        "GOVHUB_BOOTSTRAP_ADMIN_SECRET": exchange_bench.ADMIN_SECRET,
        "GOVHUB_DEFAULT_GRANT_RATE_LIMIT_PER_MINUTE": "1000000",
        "GOVHUB_TOKEN_TTL_SECONDS": "86400",
        "GOVHUB_PUBLIC_URL": "http://127.0.0.1",
    }
    return HubProcess(database_url=url, env=env, workers=workers, scheduler=False, data_dir=data_dir)


def _commits(url: str) -> int:
    """Transactions committed in the database so far (pg_stat_database.xact_commit)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")).scalar()
    engine.dispose()
    return int(value or 0)


def _loads(ports: list[int], make: Any, *, connections: int, seconds: float) -> tuple[list[float], float]:
    """The same load on each port at once; returns each port's successful requests per second, and the
    database's commits per second over the load (measured by the caller's `commits` around it)."""

    async def together() -> list[tuple[int, list[float], int, str]]:
        return await asyncio.gather(
            *(_load(port, make, connections=connections, seconds=seconds, ok=status_ok) for port in ports)
        )

    started = time.perf_counter()
    results = asyncio.run(together())
    elapsed = time.perf_counter() - started
    for port, (_good, _latencies, errors, first) in zip(ports, results, strict=True):
        if errors:
            print(f"port {port}: {errors} failed, first: {first}", flush=True)
    return [good / elapsed for good, *_ in results], elapsed


def _pgbench(pgbench: str, base_url: str, seconds: float, clients: int) -> dict[str, float]:
    """pgbench's tps on a scratch database of the same server: select-only (-S) and TPC-B-like."""
    url = make_url(base_url)
    _scratch, name = fresh_postgres(base_url)
    env = {**os.environ, "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432), "PGUSER": url.username or "postgres"}
    if url.password:
        env["PGPASSWORD"] = url.password
    out: dict[str, float] = {}
    try:
        subprocess.run([pgbench, "-i", "-q", "-s", "1", name], env=env, check=True, capture_output=True)
        for label, extra in (("select-only (-S)", ["-S"]), ("TPC-B-like (default)", [])):
            command = [pgbench, *extra, "-c", str(clients), "-j", "2", "-T", str(max(1, round(seconds))), name]
            done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            found = re.search(r"tps = ([0-9.]+)", done.stdout)
            out[label] = float(found.group(1)) if found else float("nan")
    finally:
        drop_postgres(base_url, name)
    return out


def _row(name: str, value: float, unit: str, baseline_name: str = "", baseline_value: float = 0.0) -> dict[str, object]:
    return {"name": name, "value": round(value, 1), "unit": unit, "baseline_name": baseline_name,
            "baseline_value": round(baseline_value, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", "--database-url", default=os.environ.get("GOVHUB_BENCH_DATABASE_URL"),
                        help="a PostgreSQL server URL (required: several processes need a database server)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="load time of each configuration")
    parser.add_argument("--connections", type=int, default=32, help="client connections to each process")
    parser.add_argument("--rows", type=int, default=20_000, help="dataset rows")
    parser.add_argument("--pgbench", default=shutil.which("pgbench") or "/usr/bin/pgbench")
    parser.add_argument("--pgbench-clients", type=int, default=16)
    parser.add_argument("--full", action="store_true", help="30 s per configuration")
    args = parser.parse_args(argv)
    if not args.postgres:
        print("processes: needs --postgres URL (several hub processes share one database server); skipped", flush=True)
        return []
    seconds = 30.0 if args.full else args.seconds
    url, name = fresh_postgres(args.postgres)
    data_dir = Path(tempfile.mkdtemp(prefix="govhub-processes-bench-"))
    master_key = base64.b64encode(os.urandom(32)).decode()
    rows: list[dict[str, object]] = []
    try:
        first = _hub(url, data_dir, master_key).start()
        try:
            consumer, grant_id, ids, _upload = exchange_bench._setup(_Served(first.base), args.rows, data_dir)  # type: ignore[arg-type]
            exchange_bench._analyze(url)
            path = f"/exchange/grants/{grant_id}/lookup"

            def lookup(n: int) -> bytes:
                return http_request("POST", path, headers=consumer, json_body={"params": {"身份证号": ids[n % len(ids)]}})

            _loads([first.port], lookup, connections=8, seconds=2)  # warm-up
            rows += _measure("one process", [first], lookup, url, args.connections, seconds)
        finally:
            first.stop()
        with _hub(url, data_dir, master_key, workers=2) as workers:
            _loads([workers.port], lookup, connections=8, seconds=2)
            rows += _measure("one process, --workers 2", [workers], lookup, url, args.connections, seconds)
        with _hub(url, data_dir, master_key) as one, _hub(url, data_dir, master_key) as two:
            _loads([one.port, two.port], lookup, connections=8, seconds=2)
            rows += _measure("two processes", [one, two], lookup, url, args.connections, seconds)
        for label, tps in _pgbench(args.pgbench, args.postgres, seconds, args.pgbench_clients).items():
            rows.append(_row(f"pgbench {label}, {args.pgbench_clients} clients, same server", tps, "tx/s"))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        drop_postgres(args.postgres, name)
    for row in rows:
        print(f"{row['name']}: {row['value']} {row['unit']}", flush=True)
    return rows


def _measure(
    label: str, hubs: list[HubProcess], lookup: Any, url: str, connections: int, seconds: float
) -> list[dict[str, object]]:
    before = _commits(url)
    rates, elapsed = _loads([hub.port for hub in hubs], lookup, connections=connections, seconds=seconds)
    tps = (_commits(url) - before) / elapsed
    out = [_row(f"{label}: granted lookups, process {n + 1} ({connections} connections)", rate, "req/s")
           for n, rate in enumerate(rates)]  # fmt: skip
    out.append(_row(f"{label}: granted lookups, all processes", sum(rates), "req/s", "database commits/s", tps))
    print(f"{label}: {' + '.join(f'{r:.0f}' for r in rates)} lookups/s; database {tps:.0f} commits/s", flush=True)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
