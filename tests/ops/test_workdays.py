"""Deadlines counted in working days across Chinese holidays, 调休 weekends and unpublished years."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, insert
from sqlalchemy.orm import Session, sessionmaker

from ops import workdays
from ops.audit import SYSTEM
from ops.errors import Invalid
from ops.workdays import service
from ops.workdays.models import CalendarDay, CalendarYear
from ops.workdays.service import DayEntry, load_calendar
from tests.conftest import Hub

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A local Beijing time, e.g. "2026-09-30 16:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def end_of(day: str) -> datetime:
    """24:00 Beijing time of a day, as UTC."""
    return (datetime.fromisoformat(day).replace(tzinfo=SH) + timedelta(days=1)).astimezone(UTC)


def test_three_working_days_from_the_eve_of_national_day_end_on_the_tiaoxiu_saturday(db: Session) -> None:
    # 10-01..07 are holidays; 10-08 and 10-09 are working days; Saturday 10-10 is a 调休 working day.
    deadline = workdays.add_working_days(db, at("2026-09-30 16:00"), 3)
    assert deadline.last_day == date(2026, 10, 10)
    assert deadline.due_at == end_of("2026-10-10")
    assert not deadline.provisional


def test_a_filing_on_a_holiday_starts_counting_on_the_next_working_day(db: Session) -> None:
    deadline = workdays.add_working_days(db, at("2026-10-03 10:00"), 1)
    assert deadline.last_day == date(2026, 10, 8)


def test_the_hour_of_filing_does_not_matter_but_the_beijing_date_does(db: Session) -> None:
    early = workdays.add_working_days(db, at("2026-11-02 00:05"), 3)
    late = workdays.add_working_days(db, at("2026-11-02 23:55"), 3)
    assert early == late and early.last_day == date(2026, 11, 5)
    # 17:00 UTC on Monday is already Tuesday 01:00 in Beijing: the count starts a day later.
    utc_evening = workdays.add_working_days(db, datetime(2026, 11, 2, 17, 0, tzinfo=UTC), 3)
    assert utc_evening.last_day == date(2026, 11, 6)


def test_a_friday_filing_skips_the_weekend(db: Session) -> None:
    assert workdays.add_working_days(db, at("2026-11-06 09:00"), 3).last_day == date(2026, 11, 11)


def test_ten_working_days_across_the_spring_festival_2026(db: Session) -> None:
    # 02-14 (Saturday) and 02-28 (Saturday) are 调休 working days; 02-15..23 are holidays.
    three = workdays.add_working_days(db, at("2026-02-13 11:00"), 3)
    assert three.last_day == date(2026, 2, 25)
    ten = workdays.add_working_days(db, at("2026-02-13 11:00"), 10)
    assert ten.last_day == date(2026, 3, 5)


def test_a_deadline_in_2027_is_provisional_until_the_calendar_is_loaded(db: Session) -> None:
    filed = at("2026-12-28 10:00")
    before = workdays.add_working_days(db, filed, 10)
    assert before.provisional
    assert before.last_day == date(2027, 1, 11)  # 2027-01-01 counted as an ordinary Friday
    assert workdays.calendar_status(db, 2027) == "missing"

    load_calendar(
        db,
        who=SYSTEM,
        year=2027,
        source="国务院办公厅通知（测试）",
        holidays=[DayEntry(date(2027, 1, d), "元旦") for d in (1, 2, 3)],
        workdays=[],
    )
    after = workdays.add_working_days(db, filed, 10)
    assert not after.provisional
    assert after.last_day == date(2027, 1, 12)
    assert workdays.calendar_status(db, 2027) == "loaded"


def test_a_deadline_into_a_year_not_yet_loaded_is_answered_provisionally_as_operations_md_says(
    client: TestClient, hub: Hub, govhub: Callable[..., tuple[str, str]]
) -> None:
    """docs/operations.md "Next year's holiday calendar": until next year's calendar is loaded, a deadline
    reaching into it is still computed (Monday to Friday), flagged provisional, and `calendar show` says so."""
    answer = client.get(
        "/calendar/deadline", headers=hub.system().headers, params={"start": "2026-12-28T10:00:00+08:00", "days": 10}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["provisional"] is True and answer.json()["last_day"] == "2027-01-11"
    govhub("db", "upgrade")
    out, _ = govhub("calendar", "show", "2027")
    assert out.splitlines()[0] == "2027: missing"


def test_a_deadline_wholly_inside_a_published_year_is_never_provisional(db: Session) -> None:
    assert not workdays.add_working_days(db, at("2026-12-01 10:00"), 10).provisional


def test_an_administrator_can_override_a_published_year(db: Session) -> None:
    # A hypothetical extra day off on Monday 2026-11-30.
    load_calendar(
        db, who=SYSTEM, year=2026, source="临时调整（测试）", holidays=[DayEntry(date(2026, 11, 30), "临时休假")], workdays=[]
    )
    assert workdays.add_working_days(db, at("2026-11-27 09:00"), 1).last_day == date(2026, 12, 1)


def test_loading_a_year_calls_every_listener_to_recompute_deadlines(db: Session) -> None:
    calls: list[int] = []

    def listener(_db: Session, year: int) -> int:
        calls.append(year)
        return 7

    _, changed = load_calendar(db, who=SYSTEM, year=2027, source="测试", holidays=[], workdays=[], listeners=[listener, listener])
    assert calls == [2027, 2027] and changed == 14


@pytest.mark.parametrize(
    ("holidays", "extra", "message"),
    [
        ([DayEntry(date(2028, 1, 1), "元旦")], [], "is not in 2027"),
        ([], [DayEntry(date(2027, 2, 8), "调休")], "is a weekday"),  # a Monday is already a working day
        ([DayEntry(date(2027, 2, 6), "春节")], [DayEntry(date(2027, 2, 6), "调休")], "also listed"),
    ],
)
def test_a_wrong_calendar_is_refused_with_the_day_named(
    db: Session, holidays: list[DayEntry], extra: list[DayEntry], message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        load_calendar(db, who=SYSTEM, year=2027, source="测试", holidays=holidays, workdays=extra)


def test_working_days_left_counts_today_and_turns_negative_when_overdue(db: Session) -> None:
    deadline = workdays.add_working_days(db, at("2026-11-02 09:00"), 3).due_at  # ends 11-05 24:00
    assert workdays.working_days_left(db, at("2026-11-03 10:00"), deadline) == 3
    assert workdays.working_days_left(db, at("2026-11-05 23:00"), deadline) == 1
    assert workdays.working_days_left(db, at("2026-11-09 10:00"), deadline) == -2


def test_the_calendar_api_loads_2027_and_answers_deadline_questions(client: TestClient, hub: Hub) -> None:
    body = {
        "source": "国务院办公厅关于2027年部分节假日安排的通知（测试数据）",
        "holidays": [{"date": "2027-01-01", "name": "元旦"}, {"date": "2027-02-08", "name": "春节"}],
        "workdays": [{"date": "2027-02-06", "name": "春节调休"}],
    }
    department = hub.system()
    assert client.put("/calendar/years/2027", headers=department.headers, json=body).status_code == 403
    loaded = client.put("/calendar/years/2027", headers=hub.admin.headers, json=body)
    assert loaded.status_code == 200, loaded.text
    year = client.get("/calendar/years/2027", headers=department.headers).json()
    assert year["status"] == "loaded"
    assert {d["date"]: d["kind"] for d in year["days"]} == {
        "2027-01-01": "holiday",
        "2027-02-06": "workday",
        "2027-02-08": "holiday",
    }
    answer = client.get(
        "/calendar/deadline", headers=department.headers, params={"start": "2027-02-05T18:00:00+08:00", "days": 2}
    ).json()
    assert answer["last_day"] == "2027-02-09" and answer["provisional"] is False
    published = client.get("/calendar/years/2026", headers=department.headers).json()
    assert published["status"] == "published"
    assert {"date": "2026-10-10", "kind": "workday", "name": "National Day"} in published["days"]


def test_the_calendar_api_explains_bad_input(client: TestClient, hub: Hub) -> None:
    bad = client.put(
        "/calendar/years/2027",
        headers=hub.admin.headers,
        json={"source": "测试", "holidays": [{"date": "2027-13-01", "name": "x"}]},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "holidays.0.date"
    weekday = client.put(
        "/calendar/years/2027",
        headers=hub.admin.headers,
        json={"source": "测试", "holidays": [], "workdays": [{"date": "2027-03-03", "name": "x"}]},
    )
    assert weekday.status_code == 422 and "weekday" in weekday.json()["detail"]
    naive = client.get("/calendar/deadline", headers=hub.admin.headers, params={"start": "2027-02-05T18:00:00", "days": 2})
    assert naive.status_code == 422 and "offset" in naive.json()["detail"]
    assert client.get("/calendar/years/1800", headers=hub.admin.headers).status_code == 422


def test_deadlines_read_the_calendar_once_and_see_another_process_s_load_within_the_recheck_time(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    filed = at("2026-12-28 10:00")
    assert workdays.add_working_days(db, filed, 10).provisional
    statements: list[str] = []

    def seen(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", seen)
    try:
        assert workdays.add_working_days(db, filed, 10).provisional  # the process's copy: no statement at all
        assert statements == []
        # Another process loads 2027 (元旦 on 1 to 3 January): this one sees it once the recheck time has passed.
        db.execute(insert(CalendarYear), [{"year": 2027, "source": "另一进程", "loaded_by": "system", "version": 1}])
        db.execute(
            insert(CalendarDay), [{"day": date(2027, 1, d), "year": 2027, "kind": "holiday", "name": "元旦"} for d in (1, 2, 3)]
        )
        assert workdays.add_working_days(db, filed, 10).provisional
        later = service.monotonic() + service.CALENDAR_RECHECK_SECONDS
        monkeypatch.setattr(service, "monotonic", lambda: later)
        after = workdays.add_working_days(db, filed, 10)
    finally:
        event.remove(connection, "before_cursor_execute", seen)
    assert not after.provisional and after.last_day == date(2027, 1, 12)


def test_a_year_loaded_in_this_process_counts_at_once_for_every_session(session_factory: sessionmaker[Session]) -> None:
    filed = at("2026-12-28 10:00")
    with session_factory() as reader:
        assert workdays.add_working_days(reader, filed, 10).provisional  # cached by the process
    with session_factory() as loader:
        load_calendar(loader, who=SYSTEM, year=2027, source="测试", holidays=[DayEntry(date(2027, 1, 1), "元旦")], workdays=[])
        assert not workdays.add_working_days(loader, filed, 10).provisional  # its own transaction: the new year
        loader.commit()
    with session_factory() as reader:
        assert not workdays.add_working_days(reader, filed, 10).provisional
