"""Supply and demand (供需对接): a department posts the data it needs; a provider answers with an entry, or declines."""

from __future__ import annotations

from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.common import _enum_param
from catalog_registry.models import Demand, DemandState, EntryState
from catalog_registry.schemas import DemandAnswer, DemandCreate
from ops import audit
from ops.auth import Principal
from ops.db import check_if_match, utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound
from ops.metrics import CATALOGUE_EVENTS


def post_demand(db: Session, *, who: Principal, data: DemandCreate) -> Demand:
    """A consumer department posts a data demand, optionally naming the department it believes holds it."""
    own = who.require_department()
    if data.target_department_id is not None:
        if repository.department(db, data.target_department_id) is None:
            raise Invalid(
                f"department {data.target_department_id} does not exist",
                errors=[{"field": "target_department_id", "message": "unknown department"}],
            )
        if data.target_department_id == own:
            raise Invalid(
                "a department does not post a demand to itself",
                errors=[{"field": "target_department_id", "message": "own department"}],
            )
    demand = Demand(
        consumer_department_id=own,
        target_department_id=data.target_department_id,
        title=data.title.strip(),
        description=data.description,
        purpose=data.purpose.strip(),
        items_wanted=[i.strip() for i in data.items_wanted if i.strip()],
        state=DemandState.OPEN,
    )
    db.add(demand)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="catalog.demand.post",
        object_type="catalog_demand",
        object_id=demand.id,
        purpose=demand.purpose,
        detail={"target_department_id": demand.target_department_id},
    )
    CATALOGUE_EVENTS.labels(event="demand_posted").inc()
    return demand


def get_demand(db: Session, *, who: Principal, demand_id: str) -> Demand:
    """A demand the caller may see, or NotFound."""
    demand = repository.get_demand(db, who, demand_id)
    if demand is None:
        raise NotFound(f"demand {demand_id} not found")
    return demand


def _open_demand(db: Session, who: Principal, demand_id: str, if_match: str | None) -> Demand:
    demand = get_demand(db, who=who, demand_id=demand_id)
    check_if_match(if_match, demand.version)
    if demand.state != DemandState.OPEN:
        raise Conflict(f"the demand is already {demand.state}")
    return demand


def answer_demand(db: Session, *, who: Principal, demand_id: str, data: DemandAnswer, if_match: str | None = None) -> Demand:
    """The named provider (or any provider, if none was named) answers with one of its entries."""
    own = who.require_department()
    demand = _open_demand(db, who, demand_id, if_match)
    if demand.target_department_id not in (None, own):
        raise Forbidden("the demand is addressed to another department")
    if demand.consumer_department_id == own:
        raise Forbidden("a department does not answer its own demand")
    entry = repository.own_entry(db, who, data.entry_id)
    if entry is None:
        raise Invalid(
            f"catalogue entry {data.entry_id} is not one of your department's entries",
            errors=[{"field": "entry_id", "message": "not your entry"}],
        )
    if entry.state == EntryState.RETIRED:
        raise Invalid("a retired entry cannot answer a demand", errors=[{"field": "entry_id", "message": "retired"}])
    demand.state = DemandState.ANSWERED
    demand.answered_by_department_id = own
    demand.entry_id = entry.id
    demand.answer_note = data.note
    demand.answered_at = utcnow()
    db.flush()
    audit.record(
        db,
        actor=who,
        action="catalog.demand.answer",
        object_type="catalog_demand",
        object_id=demand.id,
        detail={"entry_id": entry.id, "entry_state": entry.state},
    )
    CATALOGUE_EVENTS.labels(event="demand_answered").inc()
    return demand


def decline_demand(db: Session, *, who: Principal, demand_id: str, reason: str, if_match: str | None = None) -> Demand:
    """The named department (or the platform) declines a demand, with the reason."""
    demand = _open_demand(db, who, demand_id, if_match)
    if not who.is_platform_admin and (demand.target_department_id is None or demand.target_department_id != who.department_id):
        raise Forbidden("only the department the demand names, or the platform, may decline it")
    demand.state = DemandState.DECLINED
    demand.decline_reason = reason.strip()
    demand.answered_by_department_id = who.department_id
    demand.answered_at = utcnow()
    db.flush()
    audit.record(
        db, actor=who, action="catalog.demand.decline", object_type="catalog_demand", object_id=demand.id, purpose=reason
    )
    CATALOGUE_EVENTS.labels(event="demand_declined").inc()
    return demand


def withdraw_demand(db: Session, *, who: Principal, demand_id: str, if_match: str | None = None) -> Demand:
    """The consumer withdraws its open demand."""
    demand = _open_demand(db, who, demand_id, if_match)
    if demand.consumer_department_id != who.department_id:
        raise Forbidden("only the department that posted the demand may withdraw it")
    demand.state = DemandState.WITHDRAWN
    db.flush()
    audit.record(db, actor=who, action="catalog.demand.withdraw", object_type="catalog_demand", object_id=demand.id)
    return demand


def list_demands(
    db: Session,
    *,
    who: Principal,
    box: str | None = None,
    department_id: str | None = None,
    state: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Demand], str | None]:
    """Demands per department: `posted` by it, `incoming` to it (named, or open to any), or both."""
    if box not in (None, "posted", "incoming"):
        raise Invalid("box is posted or incoming", errors=[{"field": "box", "message": "unknown"}])
    if state is not None:
        _enum_param("state", DemandState, state)
    if not who.is_platform_admin:
        department_id = who.department_id
    return repository.list_demands(db, who, role=box, department_id=department_id, state=state, cursor=cursor, limit=limit)
