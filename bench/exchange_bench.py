"""Sharing-exchange benchmark.

    python bench/exchange_bench.py            # 100,000-row dataset, sweep over 100,000 open requests
    python bench/exchange_bench.py --full     # 1,000,000 rows, sweeps over 100,000 and 1,000,000 open requests

1. Starts a hub (uvicorn on 127.0.0.1, a free port, its own temporary data directory), creates a provider and a
   consumer department, publishes a conditional catalogue entry looked up by 身份证号, uploads the dataset through
   the catalogue's upload endpoint, files a sharing request, has it accepted and approved, then measures granted
   lookups (POST /exchange/grants/{id}/lookup) per second and their p99 latency over several connections, beside
   the same server's trivial endpoint (GET /healthz) in the same run. Target: lookups >= 35% of the trivial rate.
2. Reports the hub's peak resident memory (VmHWM) over the upload and the load. Target: <= 250 MB.
3. Times the overdue sweep (the scheduler job) over N open requests of which a share is past due. Target: <= 5 s
   for 1,000,000.

SQLite by default; --database-url postgresql+psycopg://... runs the hub and the sweep on PostgreSQL.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from ops.codes import USCC_ALPHABET, id_check_char, uscc_check_char
from ops.hubprocess import drop_postgres, fresh_postgres

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ADMIN_ID, ADMIN_SECRET, Hub
from common import bearer as _token
from common import ok as _ok
from loadgen import alternate, average_batch, http_request, measure, profile_summary, start_profile, status_ok

LOOKUP_SHARE_TARGET = 0.35
P99_FACTOR = 2.0  # a lookup's p99 at most twice /healthz's at the same concurrency
RSS_TARGET_MB = 250.0
SWEEP_TARGET_S = 5.0


ACCEPTS = ("--postgres", "--quick")  # the options of bench/run.py this benchmark takes


def _uscc(rng: random.Random) -> str:
    body = "11110000" + "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


def _citizen(n: int) -> str:
    born = date(1950, 1, 1) + timedelta(days=n % 20000)
    body = f"110105{born:%Y%m%d}{n // 20000 % 1000:03d}"
    return body + id_check_char(body)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _setup(hub: Hub, rows: int, data_dir: Path) -> tuple[dict[str, str], str, list[str], float]:
    """Departments, clients, a published entry with `rows` rows uploaded, and a grant; returns what the load needs."""
    rng = random.Random(20261124)
    with httpx.Client(base_url=hub.url, timeout=600) as client:
        admin = _token(client, ADMIN_ID, ADMIN_SECRET)
        actors = {}
        for role, name in (("provider", "市公安局"), ("consumer", "市民政局")):
            dept = _ok(client.post("/departments", json={"code": _uscc(rng), "name": name, "level": "city",
                                                         "region_code": "110000"}, headers=admin), 201)  # fmt: skip
            created = _ok(client.post("/clients", json={"name": name + "系统", "roles": ["department_system"],
                                                        "department_id": dept["id"]}, headers=admin), 201)  # fmt: skip
            actors[role] = _token(client, created["client_id"], created["client_secret"])
        provider, consumer = actors["provider"], actors["consumer"]
        entry = _ok(
            client.post(
                "/catalog/entries",
                json={
                    "code": "R00001",
                    "name": "户籍人口基本信息",
                    "classification": "基础",
                    "abstract": "全市户籍人口的基本信息，用于政务服务中的身份核验。",
                    "format": "数据库表",
                    "items": [
                        {"name": "身份证号", "data_type": "string", "length": 18, "sensitivity": "sensitive", "personal": True},
                        {"name": "姓名", "data_type": "string", "length": 50, "sensitivity": "sensitive", "personal": True},
                        {"name": "户籍地址", "data_type": "string", "length": 200, "sensitivity": "internal", "personal": True},
                        {"name": "出生日期", "data_type": "date", "sensitivity": "internal", "personal": True},
                    ],
                    "sharing_type": "conditional",
                    "conditions": "仅限政务服务办理",
                    "sharing_method": "api",
                    "control_parameters": [{"item": "身份证号", "required": True, "max_rows": 10}],
                    "open_attribute": "not_open",
                    "update_cycle": "每天",
                    "serves_dataset": True,
                },
                headers=provider,
            ),
            201,
        )
        _ok(client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider))
        _ok(client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=admin))

        path = data_dir / "people.csv"
        with path.open("w", encoding="utf-8") as handle:
            handle.write("身份证号,姓名,户籍地址,出生日期\n")
            for n in range(rows):
                pid = _citizen(n)
                handle.write(f"{pid},姓名{n},北京市东城区某街道{n % 997}号,{pid[6:10]}-{pid[10:12]}-{pid[12:14]}\n")
        started = time.perf_counter()
        with path.open("rb") as handle:
            _ok(client.post(f"/catalog/entries/{entry['id']}/datasets", files={"file": ("people.csv", handle, "text/csv")},
                            headers=provider), 201)  # fmt: skip
        upload_s = time.perf_counter() - started
        print(f"uploaded {rows:,} rows in {upload_s:.1f} s", flush=True)

        request = _ok(
            client.post(
                "/exchange/requests",
                json={
                    "resource_id": entry["id"],
                    "items": ["身份证号", "姓名", "出生日期"],
                    "purpose": "低保资格审核",
                    "scenario": "窗口受理低保申请时核验户籍",
                    "legal_basis": "《社会救助暂行办法》第十一条",
                    "valid_until": (date.today() + timedelta(days=300)).isoformat(),
                    "contact_name": "李四",
                    "contact_phone": "010-12345678",
                },
                headers=consumer,
            ),
            201,
        )
        _ok(client.post(f"/exchange/requests/{request['id']}/accept", headers=admin))
        approved = _ok(client.post(f"/exchange/requests/{request['id']}/decision", json={"approve": True}, headers=provider))
        ids = [_citizen(rng.randrange(rows)) for _ in range(5000)]
        probe = _ok(client.post(f"/exchange/grants/{approved['grant_id']}/lookup", json={"params": {"身份证号": ids[0]}},
                                headers=consumer))  # fmt: skip
        if len(probe["rows"]) != 1:
            raise SystemExit(f"a lookup of a loaded identity number found {len(probe['rows'])} rows, not 1")
        return consumer, approved["grant_id"], ids, upload_s


def _sweep_bench(open_requests: int, overdue_share: float, database_url: str | None, data_dir: Path) -> float:
    """Seconds the overdue sweep takes over `open_requests` open requests, `overdue_share` of them past due."""
    from sqlalchemy import insert

    from exchange import service
    from exchange.models import RequestStep, SharingRequest
    from govhub.database import upgrade
    from ops.config import Settings
    from ops.db import make_engine, make_sessionmaker
    from ops.identity.models import Department

    url = database_url or f"sqlite:///{data_dir / f'sweep-{open_requests}.db'}"
    settings = Settings(data_dir=data_dir, database_url=url, master_key=base64.b64encode(os.urandom(32)).decode(),
                        run_scheduler=False)  # fmt: skip
    engine = make_engine(settings.effective_database_url)
    upgrade(engine, settings)
    factory = make_sessionmaker(engine)
    now = datetime.now(UTC)
    rng = random.Random(open_requests)
    with factory() as db:
        depts = []
        for name in ("提供部门", "使用部门"):
            dept = Department(code=_uscc(rng), name=f"{name}{open_requests}", level="city", region_code="110000", version=1)
            db.add(dept)
            depts.append(dept)
        db.flush()
        provider, consumer = depts[0].id, depts[1].id
        batch = 20000
        for start in range(0, open_requests, batch):
            reqs, steps = [], []
            for n in range(start, min(open_requests, start + batch)):
                rid = f"{open_requests:07d}-{n:012d}"
                reqs.append({
                    "id": rid, "consumer_department_id": consumer, "provider_department_id": provider,
                    "resource_id": "r", "version_id": "v", "resource_version": 1, "resource_code": "R1",
                    "resource_name": "户籍人口基本信息", "sharing_type": "conditional", "has_control_parameters": True,
                    "route": "provider", "items": ["身份证号"], "clear_items": [], "purpose": "审核", "scenario": "窗口",
                    "legal_basis": "法", "valid_from": now.date(), "valid_until": now.date() + timedelta(days=365),
                    "contact_name": "李", "contact_phone": "123", "state": "provider_review", "filed_by": "bench",
                    "filed_at": now, "created_at": now, "updated_at": now, "version": 1,
                })  # fmt: skip
                late = n < open_requests * overdue_share
                due = now - timedelta(hours=1) if late else now + timedelta(days=5)
                steps.append({
                    "request_id": rid, "step": "decision", "department_id": provider, "started_at": now - timedelta(days=14),
                    "working_days": 10, "due_at": due, "due_last_day": due.date(), "provisional": False, "open": True,
                    "overdue": False,
                })  # fmt: skip
            db.execute(insert(SharingRequest), reqs)
            db.execute(insert(RequestStep), steps)
        db.commit()
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    with factory() as db:
        started = time.perf_counter()
        count = service.sweep_overdue(db, now=now)
        db.commit()
        elapsed = time.perf_counter() - started
    engine.dispose()
    print(f"sweep over {open_requests:,} open requests: {count:,} newly overdue in {elapsed:.2f} s", flush=True)
    return elapsed


def _analyze(url: str) -> None:
    """Refresh the planner's statistics after the bulk load, as an operator does after loading a large dataset."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def _row(
    name: str,
    value: float,
    unit: str,
    baseline_name: str,
    baseline_value: float,
    target: str | None = None,
    check: tuple[str, float] | None = None,
) -> dict[str, object]:
    """A figure; `check` as in bench/run.py's summary of the targets."""
    row: dict[str, object] = {"name": name, "value": round(value, 3), "unit": unit, "baseline_name": baseline_name,
                              "baseline_value": round(baseline_value, 3)}  # fmt: skip
    if target:
        row["target"] = target
    if check:
        row["check"] = check
    return row


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="1,000,000 rows; sweeps over 100,000 and 1,000,000")
    parser.add_argument("--rows", type=int, help="dataset rows (default 100,000; 1,000,000 with --full)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="load time of each endpoint, all rounds together")
    parser.add_argument("--rounds", type=int, default=5, help="the endpoints take turns this many times")
    parser.add_argument("--overdue-share", type=float, default=0.1, help="share of open requests past due in the sweep")
    parser.add_argument("--database-url", "--postgres", default=os.environ.get("GOVHUB_BENCH_DATABASE_URL"),
                        help="a PostgreSQL server URL: the hub and the sweep run on a fresh database there "
                             "(default: SQLite)")  # fmt: skip
    parser.add_argument("--profile", metavar="FILE",
                        help="sample the hub with py-spy during the lookups (collapsed stacks into FILE) and "
                             "print where its time goes")  # fmt: skip
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="skip ANALYZE after the upload (the catalogue's lookup then may scan the dataset)")  # fmt: skip
    parser.add_argument("--sweep-only", action="store_true", help="only time the overdue sweep")
    parser.add_argument("--quick", action="store_true", help="20,000 rows and no sweep (bench/run.py --quick)")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false", help="skip the overdue sweep")
    args = parser.parse_args(argv)
    rows_n = args.rows or (1_000_000 if args.full else 20_000 if args.quick else 100_000)
    sweeps = ([100_000, 1_000_000] if args.full else [100_000]) if args.sweep and not args.quick else []
    fresh = None
    if args.database_url:
        base = args.database_url
        args.database_url, name = fresh_postgres(base)
        fresh = (base, name)
    try:
        return _run(args, rows_n, sweeps)
    finally:
        if fresh:
            drop_postgres(*fresh)


def _run(args: argparse.Namespace, rows_n: int, sweeps: list[int]) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="govhub-exchange-bench-") as tmp:
        data_dir = Path(tmp)
        if not args.sweep_only:
            (data_dir / "hub").mkdir()
            hub = Hub(data_dir / "hub", args.database_url)
            try:
                consumer, grant_id, ids, upload_s = _setup(hub, rows_n, data_dir)
                if args.analyze:
                    _analyze(args.database_url or f"sqlite:///{data_dir / 'hub' / 'govhub.db'}")
                rss_after_upload = _peak_rss_mb(hub.process.pid)
                port = int(hub.url.rsplit(":", 1)[1])
                trivial = http_request("GET", "/healthz")
                pid = hub.process.pid
                path = f"/exchange/grants/{grant_id}/lookup"

                def lookup(n: int) -> bytes:
                    return http_request("POST", path, headers=consumer, json_body={"params": {"身份证号": ids[n % len(ids)]}})

                measure(port, lookup, connections=args.connections, seconds=1)  # warm-up
                if args.profile:
                    spy = start_profile(pid, args.seconds, args.profile)
                    if spy is not None:
                        measure(port, lookup, connections=args.connections, seconds=args.seconds)
                        spy.wait(timeout=args.seconds + 30)
                        print(profile_summary(args.profile), flush=True)
                # Turn about, so that a slow spell of the machine falls on both.
                base, result = alternate(
                    port, [(lambda _n: trivial, status_ok), (lookup, status_ok)],
                    rounds=args.rounds, connections=args.connections, seconds=args.seconds / args.rounds, pid=pid,
                )  # fmt: skip
                if result.errors:
                    print(f"first failure: {result.first_error}", flush=True)
                trivial_rps, trivial_p99 = base.rate, base.p99_ms
                lookup_rps, lookup_p99, failures = result.rate, result.p99_ms, result.errors
                batch = average_batch(port, "lookups")
                peak = _peak_rss_mb(hub.process.pid)
            finally:
                hub.stop()
            print(f"trivial: {trivial_rps:.0f} req/s p99 {trivial_p99:.1f} ms; lookups: {lookup_rps:.0f} req/s "
                  f"p99 {lookup_p99:.1f} ms ({failures} failed); peak RSS {peak:.0f} MB "
                  f"({rss_after_upload:.0f} MB after the upload)", flush=True)  # fmt: skip
            results += [
                _row(f"granted lookups, {args.connections} connections", lookup_rps, "req/s", "healthz_per_s", trivial_rps,
                     f">= {LOOKUP_SHARE_TARGET:.0%} of baseline", (">=", LOOKUP_SHARE_TARGET)),
                _row(f"granted lookup p99, {args.connections} connections", lookup_p99, "ms", "healthz_p99", trivial_p99,
                     f"<= {P99_FACTOR:.0f}x baseline", ("<=", P99_FACTOR)),
                _row("granted lookups failed", float(failures), "req", "lookups_answered",
                     float(round(result.rate * args.seconds)), "0", ("none", 0.0)),
                _row("hub_cpu_per_lookup", result.cpu_ms or 0.0, "ms", "hub_cpu_per_healthz", base.cpu_ms or 0.0),
                _row("lookups_per_batch", batch, "items", "", 0.0),
                _row("hub_peak_rss", peak, "MB", "hub_rss_after_upload", rss_after_upload, f"<= {RSS_TARGET_MB:.0f} MB"),
                _row("dataset_upload", upload_s, "s", "rows_uploaded", float(rows_n)),
            ]  # fmt: skip
        for n in sweeps:
            seconds = _sweep_bench(n, args.overdue_share, args.database_url, data_dir)
            results.append(_row(f"overdue_sweep_{n}", seconds, "s", "open_requests", float(n),
                                f"<= {SWEEP_TARGET_S:.0f} s for 1,000,000" if n == 1_000_000 else None))  # fmt: skip
    for row in results:
        print(row)
    return results


if __name__ == "__main__":
    main()
