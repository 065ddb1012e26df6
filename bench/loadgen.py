"""A light HTTP/1.1 load generator for the benchmarks: keep-alive connections, pre-built requests.

The load runs on the same machine as the hub, so it must cost as little CPU as possible: requests are
bytes built up front, responses are read by Content-Length, nothing is parsed beyond the status line.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def http_request(method: str, path: str, *, headers: dict[str, str] | None = None, json_body: Any = None) -> bytes:
    """One HTTP/1.1 request as bytes (keep-alive), with a JSON body if given."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    body = b""
    if json_body is not None:
        body = json.dumps(json_body, ensure_ascii=False).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def status_ok(head: bytes, _body: bytes) -> bool:
    return head.startswith(b"HTTP/1.1 200")


@dataclass(frozen=True)
class Measurement:
    rate: float  # successful requests per second
    p50_ms: float
    p99_ms: float
    errors: int
    first_error: str
    cpu_ms: float | None = None  # the hub's CPU time (all its threads) per successful request, when its pid was given


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children (the workers of `--workers`), from /proc."""
    import os

    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    tree, total = {pid}, 0
    for process in sorted(parents):  # children have higher pids than their parent here
        if process in tree or parents[process] in tree:
            tree.add(process)
            total += ticks[process]
    return total / os.sysconf("SC_CLK_TCK")


async def _load(
    port: int, make: Callable[[int], bytes | None], *, connections: int, seconds: float, ok: Callable[[bytes, bytes], bool]
) -> tuple[int, list[float], int, str]:
    latencies: list[float] = []
    good = errors = 0
    first_error = ""
    counter = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal good, errors, counter, first_error
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < stop:
                request = make(counter)
                counter += 1
                if request is None:
                    return
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if ok(head, body):
                    good += 1
                else:
                    errors += 1
                    first_error = first_error or (head.split(b"\r\n")[0] + b" " + body[:300]).decode(errors="replace")
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return good, latencies, errors, first_error


def measure(
    port: int,
    make: Callable[[int], bytes | None],
    *,
    connections: int,
    seconds: float,
    ok: Callable[[bytes, bytes], bool] = status_ok,
    pid: int | None = None,
) -> Measurement:
    """Run `connections` keep-alive clients for `seconds`; `make(n)` gives the n-th request (None: no more).
    With the hub's `pid`, also its CPU time per request: unlike the rate, that does not depend on
    how much of the machine the load generator takes."""
    return _summary([_phase(port, make, connections=connections, seconds=seconds, ok=ok, pid=pid)])


Phase = tuple[Callable[[int], bytes | None], Callable[[bytes, bytes], bool]]


def alternate(
    port: int, phases: list[Phase], *, rounds: int, connections: int, seconds: float, pid: int | None = None
) -> list[Measurement]:
    """Measure several loads (a request maker and a success check each) in turn, `rounds` times over,
    `seconds` per load and round; one pooled :class:`Measurement` per load. Taking turns means a
    slow spell of a shared machine falls on the baseline and the measured endpoint alike."""
    runs: list[list[_Run]] = [[] for _ in phases]
    for _ in range(rounds):
        for index, (make, ok) in enumerate(phases):
            runs[index].append(_phase(port, make, connections=connections, seconds=seconds, ok=ok, pid=pid))
    return [_summary(phase_runs) for phase_runs in runs]


@dataclass(frozen=True)
class _Run:
    good: int
    errors: int
    first_error: str
    elapsed: float
    latencies: list[float]
    cpu_seconds: float | None


def _phase(
    port: int,
    make: Callable[[int], bytes | None],
    *,
    connections: int,
    seconds: float,
    ok: Callable[[bytes, bytes], bool],
    pid: int | None,
) -> _Run:
    started = time.perf_counter()
    cpu_before = cpu_seconds(pid) if pid else 0.0
    good, latencies, errors, first_error = asyncio.run(_load(port, make, connections=connections, seconds=seconds, ok=ok))
    elapsed = time.perf_counter() - started
    return _Run(good, errors, first_error, elapsed, latencies, cpu_seconds(pid) - cpu_before if pid else None)


def _summary(runs: list[_Run]) -> Measurement:
    good = sum(r.good for r in runs)
    latencies = sorted(latency for r in runs for latency in r.latencies)
    p50 = statistics.median(latencies) * 1000 if latencies else 0.0
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000 if latencies else 0.0
    cpu = [r.cpu_seconds for r in runs]
    cpu_ms = sum(c for c in cpu if c is not None) * 1000 / max(good, 1) if all(c is not None for c in cpu) else None
    first_error = next((r.first_error for r in runs if r.first_error), "")
    return Measurement(good / sum(r.elapsed for r in runs), p50, p99, sum(r.errors for r in runs), first_error, cpu_ms)


def average_batch(port: int, writer: str) -> float:
    """The average size of a group-commit writer's batches so far, from the hub's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            if line.startswith(f'govhub_group_commit_batch_size_{part}{{writer="{writer}"}}'):
                values[part] = float(line.rsplit(" ", 1)[1])
    return values.get("sum", 0.0) / values["count"] if values.get("count") else 0.0


def start_profile(pid: int, seconds: float, out: str) -> Any:
    """Sample the hub's threads with py-spy (from PyPI: `pip install py-spy`) for `seconds`, into `out`
    (collapsed stacks); returns the py-spy process, or None when py-spy is not installed. Waits included
    (`--idle`), so that time spent waiting for the database shows."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed: no profile", flush=True)
        return None
    command = [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "200",
               "--format", "raw", "--idle", "--threads", "--output", out, "--nonblocking"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_summary(path: str, *, top: int = 12) -> str:
    """Where the hub's busy threads spend their time in a collapsed-stack profile, as lines of text: for
    the event loop, the group-commit writers and the thread pool (its idle waits left out), the share of
    that thread's samples in each function (inclusive), `share  function (file:line)`."""
    from collections import Counter

    kinds: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not count_text.isdigit():
                continue
            frames = [_short(frame) for frame in stack.split(";")]
            joined = ";".join(frames)
            if "WorkerThread.run" in joined and "Queue.get (queue.py" in joined:
                continue  # a thread-pool worker waiting for work
            if "GroupCommit._loop" in joined:
                kind = "group-commit writer thread(s)"
            elif "Server.run" in joined:
                kind = "event loop"
            elif "WorkerThread.run" in joined:
                kind = "thread pool (busy)"
            else:
                kind = "other threads"
            totals[kind] += int(count_text)
            counter = kinds.setdefault(kind, Counter())
            for frame in set(frames):
                if not frame.startswith(("thread (", "process ")):
                    counter[frame] += int(count_text)
    lines = []
    for kind, total in totals.most_common():
        lines.append(f"{kind}: {total} samples")
        lines += [f"  {n / total:6.1%}  {frame}" for frame, n in kinds[kind].most_common(top) if "_bootstrap" not in frame]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """`lookup (exchange/access.py:312)` from py-spy's `lookup (/path/to/exchange/access.py:312)`."""
    name, _, where = frame.partition(" (")
    from pathlib import Path

    for marker in ("site-packages/", str(Path(__file__).resolve().parent.parent) + "/", "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where}" if where else name
