"""A real hub process on 127.0.0.1 for fault checks and benchmarks: own port, own data directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

ADMIN_ID = "bench-admin"
ADMIN_SECRET = "bench-admin-secret-" + "x" * 8


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_postgres(base_url: str) -> tuple[str, str]:
    """A new empty database next to `base_url`; returns (url, name)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"govhub_run_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def drop_postgres(base_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(make_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class HubProcess:
    """`govhub serve` in a subprocess; stopped (and its data removed) on exit."""

    def __init__(
        self,
        *,
        database_url: str = "",
        env: dict[str, str] | None = None,
        workers: int = 1,
        scheduler: bool = True,
        data_dir: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="govhub-run-"))
        self.env = {
            **os.environ,
            "GOVHUB_DATA_DIR": str(self.data_dir),
            "GOVHUB_DATABASE_URL": database_url,
            "GOVHUB_BOOTSTRAP_ADMIN_CLIENT_ID": ADMIN_ID,
            "GOVHUB_BOOTSTRAP_ADMIN_SECRET": ADMIN_SECRET,
            "GOVHUB_RUN_SCHEDULER": "true" if scheduler else "false",
            "GOVHUB_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None
        self._token: str | None = None

    def start(self, timeout: float = 120.0) -> HubProcess:
        log = (self.data_dir / "hub.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "govhub.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.proc.returncode}; see {self.data_dir / 'hub.log'}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1) as response:  # noqa: S310 (local)
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError("the hub did not start in time")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (workers included) and wait for it."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def token(self, *, refresh: bool = False) -> str:
        if self._token is None or refresh:
            form = {"grant_type": "client_credentials"}
            body = self.request("POST", "/auth/token", form=form, basic=(ADMIN_ID, ADMIN_SECRET))[1]
            self._token = str(body["access_token"])
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        basic: tuple[str, str] | None = None,
        auth: bool = False,
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """One HTTP call; returns (status, parsed body). Connection failures raise OSError."""
        import base64
        from urllib.parse import urlencode

        headers: dict[str, str] = {}
        data: bytes | None = None
        if json_body is not None:
            data, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        if form is not None:
            data, headers["Content-Type"] = urlencode(form).encode(), "application/x-www-form-urlencoded"
        if basic:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 (local)
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def govhub(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a `govhub` command against this hub's database."""
        return subprocess.run(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "govhub.cli", *args], env=self.env, capture_output=True, text=True, check=False
        )

    def __enter__(self) -> HubProcess:
        return self.start()

    def __exit__(self, *_exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
