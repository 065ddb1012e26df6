"""Audited writes with many concurrent writers: how many a hub commits per second, and how many fail.

    python bench/writes_bench.py [--full] [--writers 16] [--part filing|issuing] [--database-url postgresql+psycopg://…]

Starts its own hub (its scheduled jobs running, as in real use), then `--writers` keep-alive clients
each send writes as fast as they are answered, taking turns with the same number of clients calling
`GET /healthz` on the same hub: a sharing request filed (`POST /exchange/requests`), then a
certificate issued (`POST /certhub/certificates`: two ES256 signatures, the certificate, its status
entry), each a transaction that reads, writes and records an audit record. Targets: each kind at
least 25 % of /healthz's rate at the same concurrency, its p99 at most twice /healthz's, and none
failed: a write that is not answered 201 counts as failed (a write waits its turn for the database,
up to GOVHUB_DATABASE_BUSY_TIMEOUT_SECONDS).
"""

from __future__ import annotations

import argparse
import itertools
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from ops.codes import USCC_ALPHABET, uscc_check_char
from ops.hubprocess import HubProcess, drop_postgres, fresh_postgres

sys.path.insert(0, str(Path(__file__).resolve().parent))
import certhub_bench
from loadgen import alternate, http_request, measure

ACCEPTS = ("--postgres", "--quick")  # the options of bench/run.py this benchmark takes


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


def _row(
    name: str,
    value: float,
    unit: str,
    baseline_name: str,
    baseline_value: float,
    target: str = "",
    check: tuple[str, float] | None = None,
) -> dict[str, object]:
    """A figure; `check`, when it has a target (bench/run.py's summary): ("none", 0) the value must be
    0, (">=", x) or ("<=", x) its ratio to the baseline."""
    row: dict[str, object] = {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline_value": round(baseline_value, 3),
    }
    if target:
        row["target"] = target
    if check:
        row["check"] = check
    return row


WRITE_SHARE_TARGET = 0.25  # audited writes: at least a quarter of /healthz's rate, same writers
P99_FACTOR = 2.0


def _measure_writes(
    hub: HubProcess, label: str, write: Callable[[int], bytes], *, writers: int, seconds: float, rounds: int
) -> list[dict[str, object]]:
    """Writes (each answered 201 or failed) taking turns with as many /healthz callers; four rows."""

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
        print(f"first failed write ({label}): {writes.first_error}", flush=True)
    return [
        _row(f"{label}, {writers} writers", writes.rate, "req/s", "GET /healthz", base.rate,
             f">= {WRITE_SHARE_TARGET:.0%} of baseline", check=(">=", WRITE_SHARE_TARGET)),
        _row(f"{label}: failed", float(writes.errors), "writes", "writes committed",
             float(round(writes.rate * seconds)), "0", check=("none", 0.0)),
        _row(f"{label}: p99", writes.p99_ms, "ms", f"GET /healthz p99 ({writers} connections)", base.p99_ms,
             f"<= {P99_FACTOR:.0f}x baseline", check=("<=", P99_FACTOR)),
        _row(f"{label}: hub CPU per write", writes.cpu_ms or 0.0, "ms", "hub CPU per GET /healthz", base.cpu_ms or 0.0),
    ]  # fmt: skip


def run(
    hub: HubProcess, *, writers: int, seconds: float, rounds: int, world: Any = None, filing: bool = True
) -> list[dict[str, object]]:
    """Filing sharing requests (unless not `filing`); and, given the certificate benchmark's `world` (the
    hub's database), issuing certificates (POST /certhub/certificates, each a new holder's)."""
    rows: list[dict[str, object]] = []
    if filing:
        rows += _measure_filing(hub, writers=writers, seconds=seconds, rounds=rounds)
    if world is not None:
        issuer = {"Authorization": f"Bearer {_issuer_token(world)}"}
        numbers = itertools.count(1)

        def issue(_n: int) -> bytes:
            holder = certhub_bench._citizen(next(numbers))
            body = {"type_code": certhub_bench.ID_CARD, "holder": {"code": holder, "kind": "person", "name": "张三"},
                    "face": certhub_bench._face(holder), "render_pdf": False}  # fmt: skip
            return http_request("POST", "/certhub/certificates", headers=issuer, json_body=body)

        rows += _measure_writes(hub, "issuing a certificate", issue, writers=writers, seconds=seconds, rounds=rounds)
    return rows


def _measure_filing(hub: HubProcess, *, writers: int, seconds: float, rounds: int) -> list[dict[str, object]]:
    _admin, consumer, entry_id = _setup(hub)
    request_body = {
        "resource_id": entry_id, "items": ["身份证号", "姓名"], "purpose": "低保资格审核", "scenario": "窗口受理低保申请",
        "legal_basis": "《社会救助暂行办法》第十一条", "contact_name": "李四", "contact_phone": "010-12345678",
        "valid_until": (date.today() + timedelta(days=300)).isoformat(),
    }  # fmt: skip
    filing = http_request("POST", "/exchange/requests", headers=consumer, json_body=request_body)
    return _measure_writes(hub, "filing a sharing request", lambda _n: filing, writers=writers, seconds=seconds,
                           rounds=rounds)  # fmt: skip


def _issuer_token(world: Any) -> str:
    """A token of the issuing department's system (the bureau that holds the seal)."""
    from ops.cli import CLI_ADMIN
    from ops.identity import service as identity
    from ops.identity.schemas import ClientCreate
    from ops.identity.tokens import KeyRing

    with world.factory() as db:
        created = identity.create_client(
            db, who=CLI_ADMIN, data=ClientCreate(name="签发系统", roles=["department_system"], department_id=world.bureau.id)
        )
        db.commit()
        client_id = created.client.client_id
    return KeyRing(world.factory, world.vault, world.settings).issue(
        subject=client_id, audience=world.settings.token_audience, issuer=world.settings.issuer, ttl=3600,
        roles=["department_system"], client_name="签发系统", dept=world.bureau.id, dept_code=world.bureau.code,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="30 s of load instead of 10")
    parser.add_argument("--quick", action="store_true", help="the default sizes (for bench/run.py --quick)")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers (and as many /healthz callers)")
    parser.add_argument("--seconds", type=float, help="load time of each kind, all rounds together")
    parser.add_argument("--rounds", type=int, default=5, help="writes and /healthz take turns this many times")
    parser.add_argument("--database-url", "--postgres", default=os.environ.get("GOVHUB_BENCH_DATABASE_URL"),
                        help="a PostgreSQL server URL: the hub runs on a fresh database there (default: SQLite)")  # fmt: skip
    parser.add_argument("--no-certificates", dest="certificates", action="store_false",
                        help="only file requests (no seal, no certificate types to set up)")  # fmt: skip
    parser.add_argument("--part", choices=("all", "filing", "issuing"), default="all",
                        help="measure only filing requests or only issuing certificates (default: both)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.part == "filing":
        args.certificates = False
    seconds = args.seconds or (30.0 if args.full else 10.0)
    url, name = fresh_postgres(args.database_url) if args.database_url else ("", "")
    data_dir = Path(tempfile.mkdtemp(prefix="govhub-writes-bench-"))
    try:
        env = {"GOVHUB_MASTER_KEY": certhub_bench.MASTER_KEY, "GOVHUB_PUBLIC_URL": "http://127.0.0.1"}
        with HubProcess(database_url=url, scheduler=True, data_dir=data_dir, env=env) as hub:
            # The certificate benchmark's world (a seal, the types) in the hub's own database.
            world = certhub_bench.World(data_dir, algorithm="ES256", database_url=url) if args.certificates else None
            rows = run(hub, writers=args.writers, seconds=seconds, rounds=args.rounds, world=world, filing=args.part != "issuing")
            if world is not None:
                world.engine.dispose()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
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
