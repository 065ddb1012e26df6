"""What the HTTP benchmarks share: a hub process of their own and the small request helpers."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops.hubprocess import free_port

ADMIN_ID = "bench-admin"
ADMIN_SECRET = "bench-admin-secret-0123456789"  # noqa: S105 (a throwaway hub's credential)


class Hub:
    """A hub process of its own, on a free port, with a throwaway data directory; `env` adds to or overrides the
    settings every benchmark hub gets (scheduler off, a fresh master key, the bench admin, high limits)."""

    def __init__(
        self, data_dir: Path, database_url: str | None, env: dict[str, str] | None = None, *, stop_timeout: float = 20
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop_timeout = stop_timeout
        full_env = {
            **os.environ,
            "GOVHUB_DATA_DIR": str(data_dir),
            "GOVHUB_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
            "GOVHUB_BOOTSTRAP_ADMIN_CLIENT_ID": ADMIN_ID,
            "GOVHUB_BOOTSTRAP_ADMIN_SECRET": ADMIN_SECRET,
            "GOVHUB_RUN_SCHEDULER": "false",
            "GOVHUB_LOG_LEVEL": "WARNING",
            "GOVHUB_PUBLIC_URL": self.url,
            "GOVHUB_DEFAULT_GRANT_RATE_LIMIT_PER_MINUTE": "1000000",
            "GOVHUB_MAX_UPLOAD_BYTES": str(2 * 1024**3),
            "GOVHUB_TOKEN_TTL_SECONDS": "86400",
            **(env or {}),
        }
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if database_url:
            full_env["GOVHUB_DATABASE_URL"] = database_url
        self.log = (data_dir / "hub.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "govhub.cli", "serve", "--port", str(self.port)],
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit(f"the hub did not start; see {data_dir / 'hub.log'}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The response's JSON body (None when empty); anything but `status` stops the benchmark, saying why."""
    if response.status_code != status:
        raise SystemExit(f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else None


def bearer(client: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    """The Authorization header of a client-credentials token."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return {"Authorization": f"Bearer {ok(client.post('/auth/token', data=form))['access_token']}"}
