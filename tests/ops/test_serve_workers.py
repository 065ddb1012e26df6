"""`govhub serve --workers N` leaves nothing behind when its master is killed: the workers end with it,
the port is free again and the next `govhub serve` on it starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.hubprocess import HubProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="processes are found in /proc"),
]


def _group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_killing_the_master_of_serve_workers_ends_its_workers_and_a_restart_on_the_port_works() -> None:
    with HubProcess(workers=2, scheduler=False) as first:
        assert first.proc is not None
        master = first.proc.pid  # the hub is started in a session (and process group) of its own
        try:
            assert len([p for p in _group(master) if p != master]) >= 2  # the workers (and multiprocessing's tracker)
            os.kill(master, signal.SIGKILL)
            first.proc.wait(10)
            deadline = time.monotonic() + 15
            while (_group(master) or not _port_free(first.port)) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _group(master) == [], "processes of the killed hub are still running"
            assert _port_free(first.port)
        finally:
            if _group(master):
                os.killpg(master, signal.SIGKILL)

        with HubProcess(workers=2, scheduler=False, data_dir=first.data_dir, port=first.port) as second:
            status, body = second.request("GET", "/healthz")
            assert status == 200 and body == {"status": "ok"}


def test_a_worker_whose_parent_dies_ends_even_without_the_kernels_death_signal(tmp_path: Path) -> None:
    """The portable fallback: a thread that watches the parent process."""
    worker = (
        "import time; from ops.runtime import end_with_parent; "
        "end_with_parent(deathsig=False, check_seconds=0.1, grace_seconds=2); time.sleep(60)"
    )
    parent = (
        "import subprocess, sys, time; "
        f"child = subprocess.Popen([sys.executable, '-c', {worker!r}]); print(child.pid, flush=True); time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    middle = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert middle.stdout is not None
        child = int(middle.stdout.readline())
        time.sleep(1)  # the child is set up and watching
        assert _alive(child)
        middle.kill()
        middle.wait(10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the orphaned worker is still running"
    finally:
        middle.kill()
