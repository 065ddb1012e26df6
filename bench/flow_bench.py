"""Change delivery benchmark: a new dataset version with 10 % of its rows changed, delivered end to end to a
local webhook subscriber by the hub's own scheduled jobs, while granted lookups run.

    python bench/flow_bench.py                    # 100,000 rows (10,000 changed)
    python bench/flow_bench.py --rows 1000000     # the full size the issue names
    python bench/flow_bench.py --nats             # the outbox also published to NATS at 127.0.0.1:4222

A hub process of its own (scheduler on, webhooks to loopback allowed), a subscriber process of its own (an
HTTP server that records when each event arrived). Figures: the upload rate of the first version and of the
changed one (its change set included), the rows per second delivered to the subscriber (from the end of the
upload to the last event received), the delivery lag (upload end to arrival) p50/p99, and the lookups per
second and their p99 while the delivery runs. SQLite unless GOVHUB_BENCH_DATABASE_URL names a PostgreSQL
database (a fresh one is created beside it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from ops.codes import id_check_char, uscc_check_char
from ops.hubprocess import drop_postgres, free_port, fresh_postgres

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ADMIN_ID, ADMIN_SECRET, Hub
from common import bearer as _token
from common import ok as _ok

BASELINE_SECONDS = 10.0


def _row_id(n: int) -> str:
    """Unique identity numbers for n < 1,000,000 (the serial is spread over the date and the sequence)."""
    body = f"11{n // 10000:04d}{1950 + (n // 1000) % 10}0101{n % 1000:03d}"
    return body + id_check_char(body)


def _subscriber(port: int, out: Any, stop: Any) -> None:
    """The subscriber: records (event id, rows, arrival time) of each event once (it applies each id once)."""
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            event = json.loads(body)
            if event["id"] not in seen:
                seen.add(event["id"])
                out.put((event["id"], len(event.get("changes", [])), time.time()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stop.wait()
    server.shutdown()


def _uscc(rng: random.Random) -> str:
    body = "11" + "110000" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(9))
    return body + uscc_check_char(body)


def _write_csv(path: Path, rows: int, *, changed: bool) -> int:
    """The dataset; with `changed`, every tenth row's 姓名 differs. Returns the rows changed."""
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        handle.write("身份证号,姓名,户籍地址,出生日期\n")
        for n in range(rows):
            pid = _row_id(n)
            name = f"姓名{n}"
            if changed and n % 10 == 0:
                name, count = f"更名{n}", count + 1
            handle.write(f"{pid},{name},北京市东城区某街道{n % 997}号,{pid[6:10]}-{pid[10:12]}-{pid[12:14]}\n")
    return count


def _upload(client: httpx.Client, headers: dict[str, str], entry_id: str, path: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    with path.open("rb") as handle:
        body = _ok(
            client.post(
                f"/catalog/entries/{entry_id}/datasets", files={"file": ("people.csv", handle, "text/csv")}, headers=headers
            ),
            201,
        )
    return time.perf_counter() - started, body


def _setup(client: httpx.Client) -> tuple[dict[str, str], dict[str, str], dict[str, str], str]:
    rng = random.Random(20261207)
    admin = _token(client, ADMIN_ID, ADMIN_SECRET)
    actors = {}
    for role, name in (("provider", "市公安局"), ("consumer", "市民政局")):
        dept = _ok(
            client.post(
                "/departments",
                json={"code": _uscc(rng), "name": name, "level": "city", "region_code": "110000"},
                headers=admin,
            ),
            201,
        )
        made = _ok(
            client.post(
                "/clients",
                json={"name": name + "系统", "roles": ["department_system"], "department_id": dept["id"]},
                headers=admin,
            ),
            201,
        )
        actors[role] = _token(client, made["client_id"], made["client_secret"])
    items = [
        {"name": "身份证号", "data_type": "string", "length": 18, "sensitivity": "sensitive", "personal": True},
        {"name": "姓名", "data_type": "string", "length": 50, "sensitivity": "sensitive", "personal": True},
        {"name": "户籍地址", "data_type": "string", "length": 200, "sensitivity": "internal", "personal": True},
        {"name": "出生日期", "data_type": "date", "sensitivity": "internal", "personal": True},
    ]
    entry = _ok(
        client.post(
            "/catalog/entries",
            json={
                "code": "R00001", "name": "户籍人口基本信息", "classification": "基础",
                "abstract": "全市户籍人口的基本信息，用于政务服务中的身份核验。", "format": "数据库表", "items": items,
                "sharing_type": "conditional", "conditions": "仅限政务服务办理", "sharing_method": "api",
                "control_parameters": [{"item": "身份证号", "required": True, "max_rows": 10}],
                "open_attribute": "not_open", "update_cycle": "每天", "serves_dataset": True,
            },
            headers=actors["provider"],
        ),
        201,
    )  # fmt: skip
    _ok(client.post(f"/catalog/entries/{entry['id']}/submit", headers=actors["provider"]))
    _ok(client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=admin))
    return admin, actors["provider"], actors["consumer"], str(entry["id"])


def _grant(client: httpx.Client, admin: dict[str, str], provider: dict[str, str], consumer: dict[str, str], entry_id: str) -> str:
    request = _ok(
        client.post(
            "/exchange/requests",
            json={
                "resource_id": entry_id, "items": ["身份证号", "姓名", "出生日期"], "purpose": "低保资格审核",
                "scenario": "户籍变化时更新救助对象", "legal_basis": "《社会救助暂行办法》第十一条",
                "valid_until": (date.today() + timedelta(days=300)).isoformat(), "contact_name": "李四",
                "contact_phone": "010-12345678",
            },
            headers=consumer,
        ),
        201,
    )  # fmt: skip
    _ok(client.post(f"/exchange/requests/{request['id']}/accept", headers=admin))
    return str(
        _ok(client.post(f"/exchange/requests/{request['id']}/decision", json={"approve": True}, headers=provider))["grant_id"]
    )


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _lookups(
    url: str, headers: dict[str, str], grant_id: str, rows: int, stop: threading.Event, out: list[tuple[float, float]]
) -> None:
    """Granted lookups one after another until stopped: (wall-clock start, seconds taken) of each."""
    rng = random.Random()
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            pid = _row_id(rng.randrange(rows))
            wall, started = time.time(), time.perf_counter()
            response = client.post(f"/exchange/grants/{grant_id}/lookup", json={"params": {"身份证号": pid}}, headers=headers)
            if response.status_code == 200:
                out.append((wall, time.perf_counter() - started))


def run(rows: int, *, database_url: str | None, nats: bool, lookup_threads: int, timeout_s: float) -> list[dict[str, object]]:
    data_dir = Path(tempfile.mkdtemp(prefix="govhub-flow-bench-"))
    arrivals: Any = multiprocessing.Queue()
    stop_subscriber = multiprocessing.Event()
    port = free_port()
    subscriber = multiprocessing.Process(target=_subscriber, args=(port, arrivals, stop_subscriber), daemon=True)
    subscriber.start()
    hub = Hub(
        data_dir,
        database_url,
        {
            "GOVHUB_RUN_SCHEDULER": "true",
            "GOVHUB_WEBHOOK_ALLOW_PRIVATE": "true",
            "GOVHUB_DATABASE_STATEMENT_TIMEOUT_SECONDS": "0",
            "GOVHUB_NATS_URL": "nats://127.0.0.1:4222" if nats else "",
        },
        stop_timeout=30,
    )
    try:
        with httpx.Client(base_url=hub.url, timeout=3600) as client:
            admin, provider, consumer, entry_id = _setup(client)
            first, second = data_dir / "v1.csv", data_dir / "v2.csv"
            _write_csv(first, rows, changed=False)
            changed = _write_csv(second, rows, changed=True)
            upload1_s, _ = _upload(client, provider, entry_id, first)
            print(f"version 1: {rows:,} rows uploaded in {upload1_s:.1f} s", flush=True)
            grant_id = _grant(client, admin, provider, consumer, entry_id)
            _ok(client.post(f"/exchange/grants/{grant_id}/subscriptions", json={"kind": "webhook", "url": f"http://127.0.0.1:{port}/hook"},
                            headers=consumer), 201)  # fmt: skip

            latencies: list[tuple[float, float]] = []
            stop = threading.Event()
            workers = [
                threading.Thread(target=_lookups, args=(hub.url, consumer, grant_id, rows, stop, latencies), daemon=True)
                for _ in range(lookup_threads)
            ]
            for w in workers:
                w.start()
            quiet_from = time.time()
            time.sleep(BASELINE_SECONDS)  # lookups alone: the baseline
            quiet_until = time.time()
            upload2_s, body = _upload(client, provider, entry_id, second)
            uploaded_at = time.time()
            print(f"version 2: {rows:,} rows ({body['rows_changed']:,} changed) uploaded in {upload2_s:.1f} s", flush=True)
            received, lags, last = 0, [], uploaded_at
            deadline = time.monotonic() + timeout_s
            while received < changed and time.monotonic() < deadline:
                try:
                    _event_id, n, at = arrivals.get(timeout=1)
                except Exception:  # noqa: S112 (nothing arrived this second: wait on)
                    continue
                received += n
                lags.append(at - uploaded_at)
                last = at
            delivery_s = max(last - uploaded_at, 1e-9)
            stop.set()
            for w in workers:
                w.join(timeout=10)
            print(f"delivered {received:,} of {changed:,} changed rows in {delivery_s:.1f} s after the upload", flush=True)
    finally:
        hub.stop()
        stop_subscriber.set()
        subscriber.join(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)
    # Lookups begun while the delivery ran (those begun during the upload waited for it: not counted here).
    during = [took for at, took in latencies if uploaded_at <= at <= last]
    alone = [took for at, took in latencies if quiet_from <= at <= quiet_until]
    label = "postgresql" if database_url else "sqlite"
    return [
        _fig(f"upload, version 1 ({label})", rows / upload1_s, "rows/s"),
        _fig(
            f"upload, version 2 with its change set ({label})", rows / upload2_s, "rows/s", "upload, version 1", rows / upload1_s
        ),
        _fig(
            f"changed rows delivered to the webhook ({label})",
            received / delivery_s,
            "rows/s",
            "upload, version 2",
            rows / upload2_s,
        ),
        _fig(f"delivery lag p50 ({label})", _pct(lags, 0.5), "s"),
        _fig(f"delivery lag p99 ({label})", _pct(lags, 0.99), "s"),
        _fig(f"lookups during delivery ({label})", len(during) / delivery_s, "lookups/s", "alone", len(alone) / BASELINE_SECONDS),
        _fig(f"lookup p99 during delivery ({label})", _pct(during, 0.99) * 1000, "ms", "alone", _pct(alone, 0.99) * 1000),
        _fig(f"rows delivered ({label})", received, "rows", "rows changed", changed),
    ]


def _fig(name: str, value: object, unit: str, baseline_name: str = "", baseline_value: object = None) -> dict[str, object]:
    return {"name": name, "value": value, "unit": unit, "baseline_name": baseline_name, "baseline_value": baseline_value}


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the dataset (default 100,000)")
    parser.add_argument("--full", action="store_true", help="1,000,000 rows, as the issue asks")
    parser.add_argument("--nats", action="store_true", help="also publish the outbox to NATS at 127.0.0.1:4222")
    parser.add_argument("--lookup-threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the delivery")
    args = parser.parse_args(argv)
    rows = 1_000_000 if args.full else args.rows
    base = os.environ.get("GOVHUB_BENCH_DATABASE_URL")
    results: list[dict[str, object]] = []
    if base:
        url, name = fresh_postgres(base)
        try:
            results += run(rows, database_url=url, nats=args.nats, lookup_threads=args.lookup_threads, timeout_s=args.timeout)
        finally:
            drop_postgres(base, name)
    else:
        results += run(rows, database_url=None, nats=args.nats, lookup_threads=args.lookup_threads, timeout_s=args.timeout)
    return results


if __name__ == "__main__":
    for row in main():
        value, base = row["value"], row["baseline_value"]
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        beside = f"  ({row['baseline_name']}: {base:,.1f})" if isinstance(base, (int, float)) else ""
        print(f"{row['name']}: {shown} {row['unit']}{beside}")
