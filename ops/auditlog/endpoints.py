"""HTTP API of the audit log: checkpoints, keys, proofs, and the records a caller may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ops import timestamping
from ops.auditlog import repository, service
from ops.auditlog.schemas import (
    AuditRecordRead,
    CheckpointRead,
    ConsistencyProofRead,
    InclusionProofRead,
    LogKeyRead,
    VerifyReportRead,
)
from ops.auth import AnyCaller, PlatformAdmin
from ops.db import DbSession, HubRoute
from ops.errors import Invalid
from ops.pagination import MAX_LIMIT, Page, decode_cursor, encode_cursor, whole_page

router = APIRouter(prefix="/audit", tags=["audit"], route_class=HubRoute)


@router.get("/records", response_model=Page[AuditRecordRead], summary="Audit records that concern the caller")
def list_records(
    db: DbSession,
    who: AnyCaller,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=64)] = None,
    object_id: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[AuditRecordRead]:
    """Newest first: all for a platform admin, the department's own, or a holder's own (by subject)."""
    after_id = None
    if cursor:
        [after_id] = decode_cursor(cursor, 1)
        if not isinstance(after_id, int):
            raise Invalid("cursor is not one this hub returned", errors=[{"field": "cursor", "message": "malformed"}])
    rows = repository.list_records(
        db, who, after_id=after_id, limit=limit, action=action, object_type=object_type, object_id=object_id
    )
    items = [AuditRecordRead.model_validate(r) for r in rows[:limit]]
    return Page[AuditRecordRead](items=items, next_cursor=encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None)


@router.get("/log/checkpoint", response_model=CheckpointRead, summary="The latest signed checkpoint")
def latest_checkpoint(db: DbSession, _who: AnyCaller) -> object:
    return service.latest_checkpoint(db)


@router.post("/log/checkpoint", response_model=CheckpointRead, status_code=201, summary="Sign a checkpoint now")
def sign_checkpoint(request: Request, db: DbSession, _who: PlatformAdmin) -> object:
    """Sequence pending records and sign a checkpoint now (also published to object storage), then time-stamp it;
    when the TSA does not answer it is returned "awaiting" a time stamp, which the audit-log job adds later."""
    signed = service.checkpoint_now(
        db, vault=request.app.state.vault, store=request.app.state.storage, force=True, grace_seconds=0
    )
    service.stamp_awaiting(db, stamper=timestamping.current_stamper())
    return signed


@router.get("/log/keys", response_model=Page[LogKeyRead], summary="Public keys that sign checkpoints")
def keys(db: DbSession, _who: AnyCaller) -> Page[LogKeyRead]:
    """Every key that ever signed a checkpoint (one page)."""
    return whole_page([LogKeyRead.model_validate(k) for k in repository.all_keys(db)])


@router.get("/log/inclusion/{audit_id}", response_model=InclusionProofRead, summary="Inclusion proof of a record")
def inclusion_proof(
    audit_id: int,
    db: DbSession,
    who: AnyCaller,
    tree_size: Annotated[int | None, Query(ge=1, description="a signed checkpoint's size (default: the latest)")] = None,
) -> InclusionProofRead:
    """Providers see their department's records, holders records about themselves, admins any."""
    found = service.inclusion(db, who=who, audit_id=audit_id, tree_size=tree_size)
    return InclusionProofRead(
        audit_id=audit_id,
        leaf_index=found.leaf_index,
        tree_size=found.checkpoint.tree_size,
        leaf_data=service.canonical_record(found.record).decode(),
        leaf_hash=found.leaf_hash.hex(),
        proof=[p.hex() for p in found.proof],
        checkpoint=CheckpointRead.model_validate(found.checkpoint),
    )


@router.get("/log/consistency", response_model=ConsistencyProofRead, summary="Consistency proof between two sizes")
def consistency_proof(
    db: DbSession, _who: AnyCaller, first: Annotated[int, Query()], second: Annotated[int, Query()]
) -> ConsistencyProofRead:
    proof = service.consistency(db, first=first, second=second)
    return ConsistencyProofRead(first=first, second=second, proof=[p.hex() for p in proof])


@router.get(
    "/log/verify", response_model=VerifyReportRead, summary="Rebuild the tree and check every record", name="verify_audit_log"
)
def verify(request: Request, db: DbSession, _who: PlatformAdmin) -> VerifyReportRead:
    """Every record against its leaf, and the tree against every signed checkpoint (database and object storage)."""
    return VerifyReportRead(**service.verify(db, store=request.app.state.storage).as_dict())
