"""Audited writes with many concurrent writers: how many a hub commits per second, and how many fail.

    python bench/writes_bench.py [--full] [--writers 16] [--database-url postgresql+psycopg://…]

Starts its own hub (its scheduled jobs running, as in real use), then `--writers` keep-alive clients
each send writes as fast as they are answered, taking turns with the same number of clients calling
`GET /healthz` on the same hub: a department registered (`POST /departments`) or a sharing request
filed (`POST /exchange/requests`), each a transaction that reads, writes and records an audit record.
A write that is not answered 201 counts as failed; there must be none (a write waits its turn for
the database, up to GOVHUB_DATABASE_BUSY_TIMEOUT_SECONDS).
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from ops.codes import USCC_ALPHABET, uscc_check_char
from ops.hubprocess import HubProcess, drop_postgres, fresh_postgres

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import alternate, http_request, measure


def _uscc() -> str:
    body = "11110000" + "".join(secrets.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


def _ok(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise RuntimeError(f"setup failed: {response.status_code} {response.text}")
    return response.json()


def _department(client: httpx.Client, admin: dict[str, str], name: str) -> dict[str, str]:
    """A department and a system client of its own; returns the client's headers."""
    body = {"code": _uscc(), "name": name, "level": "province", "region_code": "110000"}
    department = _ok(client.post("/departments", json=body, headers=admin), 201)
    system = {"name": name + "系统", "roles": ["department_system"], "department_id": department["id"]}
    created = _ok(client.post("/clients", json=system, headers=admin), 201)
    form = {"grant_type": "client_credentials", "client_id": created["client_id"], "client_secret": created["client_secret"]}
    return {"Authorization": f"Bearer {_ok(client.post('/auth/token', data=form))['access_token']}"}


ENTRY = {
    "code": "RWRITES", "name": "户籍人口基本信息", "classification": "基础", "abstract": "写入基准测试用的目录。",
    "format": "数据库表", "sharing_type": "conditional", "conditions": "仅限政务服务办理", "sharing_method": "api",
    "items": [{"name": "身份证号", "data_type": "string", "length": 18, "sensitivity": "sensitive", "personal": True},
              {"name": "姓名", "data_type": "string", "length": 50, "sensitivity": "sensitive", "personal": True}],
    "control_parameters": [{"item": "身份证号", "required": True, "max_rows": 10}],
    "open_attribute": "not_open", "update_cycle": "每天", "serves_dataset": True,
}  # fmt: skip


def _setup(hub: HubProcess) -> tuple[dict[str, str], dict[str, str], str]:
    """The administrator's and a consumer department's headers, and a published conditional entry."""
    admin = {"Authorization": f"Bearer {hub.token()}"}
    with httpx.Client(base_url=hub.base, timeout=60) as client:
        provider = _department(client, admin, "基准测试提供部门")
        consumer = _department(client, admin, "基准测试使用部门")
        entry = _ok(client.post("/catalog/entries", json=ENTRY, headers=provider), 201)
        _ok(client.post(f"/catalog/entries/{entry['id']}/submit", headers=provider))
        _ok(client.post(f"/catalog/entries/{entry['id']}/review", json={"decision": "publish"}, headers=admin))
    return admin, consumer, str(entry["id"])


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


def run(hub: HubProcess, *, writers: int, seconds: float, rounds: int) -> list[dict[str, object]]:
    admin, consumer, entry_id = _setup(hub)
    request_body = {
        "resource_id": entry_id, "items": ["身份证号", "姓名"], "purpose": "低保资格审核", "scenario": "窗口受理低保申请",
        "legal_basis": "《社会救助暂行办法》第十一条", "contact_name": "李四", "contact_phone": "010-12345678",
        "valid_until": (date.today() + timedelta(days=300)).isoformat(),
    }  # fmt: skip
    kinds = itertools.cycle(("department", "request"))

    def write(_n: int) -> bytes:
        if next(kinds) == "department":
            body = {"code": _uscc(), "name": "基准测试局", "level": "province", "region_code": "110000"}
            return http_request("POST", "/departments", headers=admin, json_body=body)
        return http_request("POST", "/exchange/requests", headers=consumer, json_body=request_body)

    def created(head: bytes, _body: bytes) -> bool:
        return head.startswith(b"HTTP/1.1 201")

    healthz = http_request("GET", "/healthz")
    pid = hub.proc.pid if hub.proc else None
    measure(hub.port, write, connections=writers, seconds=1, ok=created)  # warm-up
    base, writes = alternate(
        hub.port,
        [(lambda _n: healthz, lambda head, _body: head.startswith(b"HTTP/1.1 200")), (write, created)],
        rounds=rounds,
        connections=writers,
        seconds=seconds / rounds,
        pid=pid,
    )
    if writes.errors:
        print(f"first failed write: {writes.first_error}", flush=True)
    return [
        _row(f"audited writes, {writers} writers", writes.rate, "req/s", "GET /healthz", base.rate),
        _row("failed writes", float(writes.errors), "writes", "writes committed", float(round(writes.rate * seconds)), "0"),
        _row("write p99", writes.p99_ms, "ms", "GET /healthz p99", base.p99_ms),
        _row("hub CPU per write", writes.cpu_ms or 0.0, "ms", "hub CPU per GET /healthz", base.cpu_ms or 0.0),
    ]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="30 s of load instead of 10")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers (and as many /healthz callers)")
    parser.add_argument("--seconds", type=float, help="load time of each kind, all rounds together")
    parser.add_argument("--rounds", type=int, default=5, help="writes and /healthz take turns this many times")
    parser.add_argument("--database-url", default=os.environ.get("GOVHUB_BENCH_DATABASE_URL"),
                        help="a PostgreSQL server URL: the hub runs on a fresh database there (default: SQLite)")  # fmt: skip
    args = parser.parse_args(argv)
    seconds = args.seconds or (30.0 if args.full else 10.0)
    url, name = fresh_postgres(args.database_url) if args.database_url else ("", "")
    try:
        with HubProcess(database_url=url, scheduler=True) as hub:
            rows = run(hub, writers=args.writers, seconds=seconds, rounds=args.rounds)
    finally:
        if name:
            drop_postgres(args.database_url, name)
    database = "PostgreSQL" if url else "SQLite"
    for row in rows:
        row["name"] = f"{row['name']} ({database})"
        print(
            f"{row['name']}: {row['value']} {row['unit']}  (baseline {row['baseline_name']}: {row['baseline_value']})",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
