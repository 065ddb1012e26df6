"""Supervision of the exchange: the overdue sweep, deadlines recomputed for a new calendar, webhooks,
the departments' report and the state gauges.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange.models import RequestState, Webhook
from exchange.outbox import record_supervision_event
from exchange.schemas import DepartmentReport, Report
from exchange.states import PLATFORM, end_of_day
from ops import audit, metrics
from ops.auth import Principal
from ops.db import utcnow
from ops.errors import Invalid
from ops.ratings import service as ratings
from ops.workdays.service import SHANGHAI, calendar


def sweep_overdue(db: Session, *, now: datetime | None = None) -> int:
    """Mark every open step past its deadline overdue, record the breach and notify (a few SQL statements)."""
    now = now or utcnow()
    count = repo.mark_overdue(db, now)
    for breach in repo.breaches_recorded_at(db, now) if count else []:  # 双推送: to the supervising departments
        record_supervision_event(
            db,
            kind="request.overdue",
            department_ids=[breach.department_id] if breach.department_id else [],
            payload={
                "request_id": breach.request_id,
                "step": breach.step,
                "department_id": breach.department_id,
                "due_at": breach.due_at.isoformat(),
            },
        )
    if count:
        audit.record(
            db,
            actor=audit.SYSTEM,
            action="sharing_request.overdue_sweep",
            object_type="sharing_request",
            object_id="*",
            detail={"overdue": count},
        )
        metrics.SHARING_REQUEST_EVENTS.labels(event="overdue").inc(count)
    return count


def recompute_deadlines(db: Session, year: int) -> int:
    """After a year's calendar is loaded: recompute every open deadline that is provisional or reaches it."""
    cal = calendar(db)
    first = date(year, 1, 1)
    now = utcnow()
    steps = repo.open_steps_reaching(db, first)
    changed = 0
    for step in steps:
        deadline = cal.add_working_days(step.started_at, step.working_days)
        if (deadline.due_at, deadline.provisional) != (step.due_at, step.provisional):
            step.due_at, step.due_last_day, step.provisional = deadline.due_at, deadline.last_day, deadline.provisional
            if step.overdue and deadline.due_at > now:
                step.overdue = False
            changed += 1
    db.flush()
    return changed


def set_webhook(db: Session, *, who: Principal, url: str, secret: str) -> Webhook:
    """Set where the caller's department receives its notifications (signed with `secret`)."""
    department = who.require_department()
    hook = db.get(Webhook, department)
    if hook is None:
        hook = Webhook(department_id=department, url=url, secret=secret)
        db.add(hook)
    else:
        hook.url, hook.secret = url, secret
    db.flush()
    audit.record(db, actor=who, action="webhook.set", object_type="webhook", object_id=department, detail={"url": url})
    return hook


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value of a webhook delivery: HMAC-SHA256 over "<timestamp>.<body>"."""
    import hmac

    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def report(db: Session, *, start: date, end: date) -> Report:
    """Each department's on-time rate, average handling time (working days), ratings (好差评) and, beside
    them, its rectification and on-time reply rates for poor ratings, for [start, end]."""
    if end < start:
        raise Invalid("end must not be before start", errors=[{"field": "end", "message": "before start"}])
    lo, hi = end_of_day(start) - timedelta(days=1), end_of_day(end)
    cal = calendar(db)
    stats: dict[str, dict[str, Any]] = {}

    def entry(key: str) -> dict[str, Any]:
        return stats.setdefault(key, {"done": 0, "on_time": 0, "late_open": 0, "days": [], "ratings": {}})

    for step in repo.steps_in_period(db, lo, hi):
        e = entry(step.department_id or PLATFORM)
        if step.completed_at is None:
            e["late_open"] += 1 if step.due_at < utcnow() else 0
            continue
        e["done"] += 1
        e["on_time"] += 1 if step.completed_at <= step.due_at else 0
        e["days"].append(
            cal.working_days_between(step.started_at.astimezone(SHANGHAI).date(), step.completed_at.astimezone(SHANGHAI).date())
        )
    # 好差评 of every service the department gave (certificates too, not only requests), from the one rating
    # store: the scores as good / average / poor, and how the department answered the poor ones.
    rated = ratings.department_rates(db, start=start, end=end)
    for department, rates in rated.items():
        entry(department)["ratings"] = rates.words
    names = {PLATFORM: "平台管理部门"} | repo.department_names(db, {k for k in stats if k != PLATFORM})
    departments = []
    for key, e in sorted(stats.items()):
        judged = e["done"] + e["late_open"]
        departments.append(
            DepartmentReport(
                department_id=key,
                department_name=names.get(key, key),
                steps_completed=e["done"],
                steps_on_time=e["on_time"],
                steps_overdue_open=e["late_open"],
                on_time_rate=round(e["on_time"] / judged, 4) if judged else None,
                average_working_days=round(sum(e["days"]) / len(e["days"]), 2) if e["days"] else None,
                ratings=e["ratings"],
                average_score=rated[key].average_score if key in rated else None,
                rectifications_opened=rated[key].opened if key in rated else 0,
                rectification_rate=rated[key].rectification_rate if key in rated else None,
                reply_on_time_rate=rated[key].reply_on_time_rate if key in rated else None,
            )
        )
    return Report(start=start, end=end, departments=departments)


def publish_gauges(db: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Set the exchange's state gauges (requests by state, overdue by department, on-time rate, active grants)."""
    now = now or utcnow()
    by_state = {state.value: 0 for state in RequestState} | repo.requests_by_state(db)
    for state, count in by_state.items():
        metrics.SHARING_REQUESTS_BY_STATE.labels(state=state).set(count)
    overdue = {k or PLATFORM: v for k, v in repo.overdue_steps_by_department(db).items()}
    metrics.OVERDUE_BY_DEPARTMENT.clear()
    for department, count in overdue.items():
        metrics.OVERDUE_BY_DEPARTMENT.labels(department=department).set(count)
    done, on_time = repo.steps_completed_on_time_since(db, now - timedelta(days=30))
    rate = (on_time / done) if done else 1.0
    metrics.ON_TIME_RATE.set(rate)
    active = repo.active_grant_count(db)
    metrics.GRANTS_ACTIVE.set(active)
    return {"by_state": by_state, "overdue": overdue, "on_time_rate": rate, "grants_active": active}
