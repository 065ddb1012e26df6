"""Scenarios of the scheduler: several hub processes on one database, and each run happens once."""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from govhub.database import upgrade
from ops.config import Settings
from ops.db import make_engine, make_sessionmaker
from ops.scheduler import Job, LeaseRunner, Scheduler
from ops.tasks import check_next_year_calendar


@pytest.fixture()
def cluster_url(tmp_path: Path, settings: Settings) -> Iterator[str]:
    """A database of its own (committed for real), as N hub processes would share."""
    base = os.environ.get("GOVHUB_TEST_DATABASE_URL")
    if base:
        from ops.hubprocess import drop_postgres, fresh_postgres

        url, name = fresh_postgres(base)
    else:
        url, name = f"sqlite:///{tmp_path}/cluster-{uuid.uuid4().hex}.db", ""
    engine = make_engine(url)
    upgrade(engine, settings)
    engine.dispose()
    yield url
    if name and base:
        drop_postgres(base, name)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Ledger:
    """What the job did, from whichever process ran it."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.lock = threading.Lock()

    def job(self, name: str = "exchange.deadline_sweep", interval: int = 60, fail: bool = False) -> Job:
        def run(_db: Session) -> None:
            with self.lock:
                self.runs.append(threading.current_thread().name)
            time.sleep(0.01)
            if fail:
                raise RuntimeError("the sweep failed")

        return Job(name=name, interval_seconds=interval, run=run)


def _processes(url: str, jobs: list[Job], n: int, clock: Clock | None = None) -> list[LeaseRunner]:
    runners = []
    for i in range(n):
        factory = make_sessionmaker(make_engine(url))
        runners.append(LeaseRunner(factory, jobs, owner=f"hub-{i}", **({"clock": clock} if clock else {})))
    return runners


def _all_at_once(runners: list[LeaseRunner], name: str) -> list[bool]:
    barrier = threading.Barrier(len(runners))
    results: list[bool] = [False] * len(runners)

    def go(i: int) -> None:
        barrier.wait()
        results[i] = runners[i].run_once(name)

    threads = [threading.Thread(target=go, args=(i,), name=f"hub-{i}") for i in range(len(runners))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_four_processes_asking_at_the_same_moment_run_the_sweep_once_per_interval(cluster_url: str) -> None:
    ledger, clock = Ledger(), Clock()
    job = ledger.job(interval=60)
    runners = _processes(cluster_url, [job], 4, clock)
    for slot in range(6):
        results = _all_at_once(runners, job.name)
        assert sum(results) == 1, f"slot {slot}: {results}"
        assert sum(_all_at_once(runners, job.name)) == 0  # asked again within the interval: nobody runs it
        clock.now += timedelta(seconds=61)
    assert len(ledger.runs) == 6


def test_a_job_is_not_run_again_before_its_interval_has_passed(cluster_url: str) -> None:
    ledger, clock = Ledger(), Clock()
    job = ledger.job(interval=300)
    [a, b] = _processes(cluster_url, [job], 2, clock)
    assert a.run_once(job.name)
    clock.now += timedelta(seconds=299)
    assert not b.run_once(job.name) and not a.run_once(job.name)
    clock.now += timedelta(seconds=2)
    assert b.run_once(job.name)
    assert len(ledger.runs) == 2
    status = {row["name"]: row for row in b.status()}
    assert status[job.name]["holder"] == "hub-1" and status[job.name]["last_outcome"] == "success"


def test_a_failing_job_is_recorded_and_counted_and_does_not_block_the_next_slot(cluster_url: str) -> None:
    ledger, clock = Ledger(), Clock()
    job = ledger.job(name="certhub.status_list_publish", interval=60, fail=True)
    [a, b] = _processes(cluster_url, [job], 2, clock)
    before = REGISTRY.get_sample_value("govhub_job_runs_total", {"task": job.name, "outcome": "failure"}) or 0.0
    assert a.run_once(job.name)
    after = REGISTRY.get_sample_value("govhub_job_runs_total", {"task": job.name, "outcome": "failure"})
    assert after == before + 1
    assert REGISTRY.get_sample_value("govhub_job_duration_seconds_count", {"task": job.name})
    row = next(r for r in a.status() if r["name"] == job.name)
    assert row["last_outcome"] == "failure" and "the sweep failed" in row["last_error"]
    clock.now += timedelta(seconds=61)
    assert b.run_once(job.name)


def test_when_the_process_holding_a_job_dies_another_takes_over_after_the_lease(cluster_url: str) -> None:
    ledger, clock = Ledger(), Clock()
    job = ledger.job(interval=60)
    [dying, survivor] = _processes(cluster_url, [job], 2, clock)
    assert dying.claim(job) is not None  # claimed, then the process is killed: never released
    clock.now += timedelta(seconds=61)
    assert not survivor.run_once(job.name)  # due again, but the dead process's lease still holds
    clock.now += timedelta(seconds=LeaseRunner.lease_seconds(job))
    assert survivor.run_once(job.name)
    assert ledger.runs == ["MainThread"]


def test_two_schedulers_on_one_database_share_the_work_without_running_a_slot_twice(cluster_url: str) -> None:
    starts: list[float] = []
    lock = threading.Lock()

    def tick(_db: Session) -> None:
        with lock:
            starts.append(time.monotonic())

    job = Job(name="ops.tick", interval_seconds=1, run=tick)
    schedulers = [Scheduler(r, tick_seconds=0.2) for r in _processes(cluster_url, [job], 2)]
    for s in schedulers:
        s.start()
    time.sleep(3.2)
    for s in schedulers:
        s.shutdown()
    assert 2 <= len(starts) <= 4, starts
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g > 0.8 for g in gaps), gaps


def test_duplicate_job_names_are_refused(cluster_url: str) -> None:
    job = Ledger().job()
    with pytest.raises(ValueError, match="unique"):
        LeaseRunner(make_sessionmaker(make_engine(cluster_url)), [job, job])


def test_from_1_december_a_missing_calendar_for_next_year_is_warned_about(db: Session, caplog: pytest.LogCaptureFixture) -> None:
    loaded: dict[int, str] = {2027: "missing"}

    def status_of(_db: Session, year: int) -> str:
        return loaded.get(year, "published")

    november = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # 23:00 in Beijing, still November
    assert check_next_year_calendar(db, now=november, status_of=status_of) is None
    december = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 December in Beijing
    with caplog.at_level("WARNING", logger="govhub.calendar"):
        warning = check_next_year_calendar(db, now=december, status_of=status_of)
    assert warning is not None and "2027" in warning
    assert any("2027" in r.getMessage() for r in caplog.records)
    assert REGISTRY.get_sample_value("govhub_holiday_calendar_missing", {"year": "2027"}) == 1
    loaded[2027] = "loaded"
    assert check_next_year_calendar(db, now=december, status_of=status_of) is None
    assert REGISTRY.get_sample_value("govhub_holiday_calendar_missing", {"year": "2027"}) == 0


def test_the_warning_clears_once_an_administrator_loads_next_years_calendar(db: Session) -> None:
    from datetime import date

    from ops.cli import CLI_ADMIN
    from ops.workdays import calendar_status, load_calendar
    from ops.workdays.service import DayEntry

    december = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    if calendar_status(db, 2027) != "missing":
        pytest.skip("this chinesecalendar release already knows 2027")
    assert check_next_year_calendar(db, now=december) is not None
    load_calendar(
        db,
        who=CLI_ADMIN,
        year=2027,
        source="国办发明电〔2026〕测试",
        holidays=[DayEntry(date(2027, 1, 1), "元旦")],
        workdays=[],
    )
    db.flush()
    assert check_next_year_calendar(db, now=december) is None
