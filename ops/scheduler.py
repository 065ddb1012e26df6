"""Periodic jobs: what a domain declares in its tasks.py, and the runner that starts them.

A domain's `tasks.py` exposes `JOBS: list[Job]`. The composition root (govhub.app) collects them;
the runner makes sure that, with several hub processes on one database, each run happens once:
every job has a lease row, and a process runs the job only after winning a conditional UPDATE
of that row (`next_run_at <= now AND lease_until <= now`). The database decides the winner, so
two processes never both run the same slot, and a process that dies mid-run loses its lease
when `lease_until` passes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, Text, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from ops.db import Base, utcnow
from ops.metrics import JOB_DURATION, JOB_LAST_SUCCESS, JOB_RUNS

log = logging.getLogger("govhub.scheduler")


@dataclass(frozen=True)
class Job:
    """A periodic job. `run` gets a session whose transaction the runner commits."""

    name: str
    interval_seconds: int
    run: Callable[[Session], object]


class JobLease(Base):
    """The cluster-wide schedule of one job: when it is next due and who holds it now."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    next_run_at: Mapped[datetime]
    lease_until: Mapped[datetime]
    holder: Mapped[str | None] = mapped_column(String(200))
    last_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)


def process_name() -> str:
    """Who this process is, in lease rows and logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseRunner:
    """Runs due jobs, each at most once per interval across every process sharing the database."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        jobs: Sequence[Job],
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"job names must be unique: {sorted(names)}")
        self.factory = factory
        self.jobs = {j.name: j for j in jobs}
        self.owner = owner or process_name()
        self.clock = clock
        self._ensured: set[str] = set()  # jobs whose lease row is known to exist
        # SQLite has one writer at a time: running this process's jobs one after another keeps them
        # from failing on each other's locks. PostgreSQL runs them concurrently.
        bind = factory.kw.get("bind")
        self._serial = threading.Lock() if getattr(getattr(bind, "dialect", None), "name", "") == "sqlite" else None

    @staticmethod
    def lease_seconds(job: Job) -> int:
        """How long a run may hold its job before another process may take over."""
        return max(60, 2 * job.interval_seconds)

    def _ensure_row(self, job: Job) -> None:
        # Write first, never read-then-write: on SQLite a transaction that read before writing
        # cannot wait for the write lock, and all jobs start at once in their own threads.
        if job.name in self._ensured:
            return
        with self.factory() as db:
            epoch = self.clock() - timedelta(seconds=1)
            db.add(JobLease(name=job.name, next_run_at=epoch, lease_until=epoch))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()  # it exists already (created by this or another process)
        self._ensured.add(job.name)

    def claim(self, job: Job) -> datetime | None:
        """Take the job's lease if it is due and free; returns the run's start time when won."""
        self._ensure_row(job)
        now = self.clock()
        with self.factory() as db:
            result = db.execute(
                update(JobLease)
                .where(JobLease.name == job.name, JobLease.next_run_at <= now, JobLease.lease_until <= now)
                .values(
                    next_run_at=now + timedelta(seconds=job.interval_seconds),
                    lease_until=now + timedelta(seconds=self.lease_seconds(job)),
                    holder=self.owner,
                    last_started_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            db.commit()
            won: bool = getattr(result, "rowcount", 0) == 1
        return now if won else None

    def _release(self, job: Job, *, outcome: str, error: str | None) -> None:
        with self.factory() as db:
            db.execute(
                update(JobLease)
                .where(JobLease.name == job.name, JobLease.holder == self.owner)
                .values(lease_until=self.clock(), last_finished_at=self.clock(), last_outcome=outcome, last_error=error)
                .execution_options(synchronize_session=False)
            )
            db.commit()

    def run_once(self, name: str) -> bool:
        """Run the named job if this process wins its lease; True when it ran (successfully or not)."""
        with self._serial or contextlib.nullcontext():
            return self._run_once(name)

    def _run_once(self, name: str) -> bool:
        job = self.jobs[name]
        try:
            if self.claim(job) is None:
                return False
        except Exception:
            log.exception("could not claim job %s", name)
            return False
        started = time.perf_counter()
        outcome, error = "success", None
        try:
            with self.factory() as db:
                job.run(db)
                db.commit()
        except Exception as exc:
            outcome, error = "failure", f"{type(exc).__name__}: {exc}"[:2000]
            log.exception("job %s failed", name, extra={"job": name})
        elapsed = time.perf_counter() - started
        JOB_RUNS.labels(name, outcome).inc()
        JOB_DURATION.labels(name).observe(elapsed)
        if outcome == "success":
            JOB_LAST_SUCCESS.labels(name).set(time.time())
        try:
            self._release(job, outcome=outcome, error=error)
        except Exception:
            log.exception("could not release job %s (its lease expires by itself)", name)
        log.info("job %s %s in %.1f ms", name, outcome, elapsed * 1000, extra={"job": name})
        return True

    def run_due(self) -> list[str]:
        """Run every job that is due now; returns the names this process ran."""
        return [name for name in self.jobs if self.run_once(name)]

    def status(self) -> list[dict[str, Any]]:
        with self.factory() as db:
            rows = list(db.scalars(select(JobLease).order_by(JobLease.name)))
        return [
            {
                "name": r.name,
                "next_run_at": r.next_run_at.isoformat(),
                "holder": r.holder,
                "last_started_at": r.last_started_at.isoformat() if r.last_started_at else None,
                "last_outcome": r.last_outcome,
                "last_error": r.last_error,
            }
            for r in rows
        ]


class Scheduler:
    """APScheduler in a background thread, asking the LeaseRunner whether each job is due."""

    def __init__(self, runner: LeaseRunner, *, tick_seconds: float = 5.0) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.runner = runner
        self._aps = BackgroundScheduler(timezone="UTC")
        self._lock = threading.Lock()
        for job in runner.jobs.values():
            # Poll more often than the interval; the lease decides whether this process runs it.
            every = max(1.0, min(tick_seconds, job.interval_seconds / 2))
            self._aps.add_job(
                runner.run_once,
                "interval",
                seconds=every,
                args=[job.name],
                id=job.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )

    def start(self) -> None:
        with self._lock:
            if not self._aps.running:
                self._aps.start()
                log.info("scheduler started with %d jobs as %s", len(self.runner.jobs), self.runner.owner)

    def shutdown(self) -> None:
        with self._lock:
            if self._aps.running:
                self._aps.shutdown(wait=True)
