"""Fault checks against a real hub process (destructive: not part of the test suite).

    python -m ops.faults                 # every check
    python -m ops.faults sigkill         # one check
    GOVHUB_FAULTS_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres (default)

`db_restart` restarts the machine's PostgreSQL cluster (pg_ctlcluster): run it only where
nothing else depends on that server at the moment.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ops.codes import USCC_ALPHABET, uscc_check_char
from ops.hubprocess import HubProcess, drop_postgres, free_port, fresh_postgres

PG = os.environ.get("GOVHUB_FAULTS_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _uscc() -> str:
    body = "11330000" + "".join(secrets.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


class Load:
    """Writers registering departments; remembers every write the hub acknowledged."""

    def __init__(self, hub: HubProcess, *, threads: int = 4) -> None:
        self.hub = hub
        self.threads = threads
        self.acknowledged: list[str] = []
        self.outcomes: list[tuple[float, str]] = []  # (time, status or error class)
        self.bodies: list[Any] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def _one(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, body = self.hub.request(
                    "POST",
                    "/departments",
                    json_body={"code": _uscc(), "name": "故障演练局", "level": "province", "region_code": "330000"},
                    auth=True,
                    timeout=15,
                )
                outcome = str(status)
            except OSError as exc:
                status, body, outcome = 0, None, type(exc).__name__
                time.sleep(0.05)
            with self._lock:
                self.outcomes.append((started, outcome))
                if status == 201:
                    self.acknowledged.append(body["id"])
                elif status >= 400:
                    self.bodies.append(body)

    def start(self) -> Load:
        self.hub.token()
        self._workers = [threading.Thread(target=self._one, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=30)


def _missing(hub: HubProcess, ids: list[str]) -> list[str]:
    return [i for i in ids if hub.request("GET", f"/departments/{i}", auth=True)[0] != 200]


def _verify(hub: HubProcess) -> dict[str, Any]:
    hub.govhub("audit", "sequence", "--grace", "0")
    done = hub.govhub("audit", "verify", "--grace", "0")
    return {"exit": done.returncode, "report": json.loads(done.stdout) if done.stdout.strip().startswith("{") else done.stderr}


def check_sigkill(seconds: float = 4.0) -> dict[str, Any]:
    """SIGKILL the hub under a write load; after restart every acknowledged write is there and the log verifies."""
    url, name = fresh_postgres(PG)
    try:
        first = HubProcess(database_url=url).start()
        load = Load(first, threads=6).start()
        time.sleep(seconds / 2)
        signed_before_kill = first.request("POST", "/audit/log/checkpoint", auth=True)[0] == 201
        time.sleep(seconds / 2)
        killed_at = time.monotonic()
        first.kill(signal.SIGKILL)
        load.stop()
        second = HubProcess(database_url=url, data_dir=first.data_dir).start()
        restarted_in = time.monotonic() - killed_at
        try:
            missing = _missing(second, load.acknowledged)
            verify = _verify(second)
        finally:
            second.stop()
        counts = Counter(o for _, o in load.outcomes)
        return {
            "passed": not missing and verify["exit"] == 0 and signed_before_kill,
            "checkpoint_signed_before_kill": signed_before_kill,
            "acknowledged_writes": len(load.acknowledged),
            "missing_after_restart": len(missing),
            "outcomes": dict(counts),
            "restart_seconds": round(restarted_in, 2),
            "audit_verify": verify["report"],
        }
    finally:
        drop_postgres(PG, name)


def _pg_restart() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 (fixed command)


def check_db_restart(before: float = 3.0, after: float = 6.0) -> dict[str, Any]:
    """Restart PostgreSQL under load: requests in flight fail as 503 problems; the hub recovers by itself."""
    url, name = fresh_postgres(PG)
    try:
        with HubProcess(database_url=url, scheduler=True) as hub:
            load = Load(hub, threads=4).start()
            time.sleep(before)
            t0 = time.monotonic()
            _pg_restart()
            t1 = time.monotonic()
            time.sleep(after)
            load.stop()
            during = Counter(o for t, o in load.outcomes if t0 - 0.5 <= t <= t1 + 0.5)
            tail = [o for t, o in load.outcomes if t >= t1 + after - 2]
            first_ok = min((t for t, o in load.outcomes if t > t1 and o == "201"), default=None)
            problems = [b for b in load.bodies if isinstance(b, dict)]
            missing = _missing(hub, load.acknowledged)
            statuses = Counter(o for _, o in load.outcomes)
            verify = _verify(hub)
        clean = all(o in {"201", "503"} for o in statuses)
        return {
            "passed": clean and bool(tail) and all(o == "201" for o in tail) and not missing and verify["exit"] == 0,
            "restart_seconds": round(t1 - t0, 2),
            "recovered_after_seconds": round(first_ok - t1, 2) if first_ok else None,
            "outcomes": dict(statuses),
            "outcomes_during_restart": dict(during),
            "problem_codes": dict(Counter(b.get("code") for b in problems)),
            "acknowledged_writes": len(load.acknowledged),
            "missing_after_restart": len(missing),
            "audit_verify_exit": verify["exit"],
        }
    finally:
        drop_postgres(PG, name)


def check_storage_down() -> dict[str, Any]:
    """Object storage unreachable: a write that needs it answers 503 and leaves no record behind."""
    closed = free_port()
    env = {
        "GOVHUB_STORAGE_BACKEND": "s3",
        "GOVHUB_S3_ENDPOINT": f"127.0.0.1:{closed}",
        "GOVHUB_S3_SECURE": "false",
        "GOVHUB_S3_ACCESS_KEY": "none",
        "GOVHUB_S3_SECRET_KEY": "none-none",
    }
    with HubProcess(env=env, scheduler=False) as hub:
        ready_status, ready = hub.request("GET", "/readyz")
        started = time.monotonic()
        status, body = hub.request("POST", "/audit/log/checkpoint", auth=True, timeout=60)
        took = time.monotonic() - started
        after_status, _ = hub.request("GET", "/audit/log/checkpoint", auth=True)
    return {
        "passed": status == 503 and ready_status == 503 and after_status == 404,
        "readyz": ready_status,
        "readyz_detail": ready.get("detail") if isinstance(ready, dict) else ready,
        "write_status": status,
        "write_problem": {k: body.get(k) for k in ("code", "detail", "request_id")} if isinstance(body, dict) else body,
        "failed_after_seconds": round(took, 2),
        "checkpoint_rows_after": "none (404)" if after_status == 404 else after_status,
    }


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "storage_down": check_storage_down,
    "sigkill": check_sigkill,
    "db_restart": check_db_restart,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.faults", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("checks", nargs="*", help=f"which checks: {', '.join(CHECKS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [c for c in args.checks if c not in CHECKS]
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    failed = 0
    for name in args.checks or list(CHECKS):
        result = CHECKS[name]()
        failed += not result["passed"]
        print(json.dumps({"check": name, **result}, ensure_ascii=False, indent=2), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
