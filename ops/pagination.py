"""Cursor (keyset) pagination shared by every list endpoint."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from ops.errors import Invalid

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next page. Every list the API
    returns is a `Page`; a short list bounded by nature (the certificate types, the trusted hubs) comes
    whole, in one page whose `next_cursor` is null."""

    items: list[T]
    next_cursor: str | None = None

    def __class_getitem__(cls, item: Any) -> Any:
        """`Page[GrantRead]` is a class named `GrantReadPage`, and so is its OpenAPI schema (not
        `Page_GrantRead_`, nor `ops__pagination__Page_AccessRead___1` when two item classes share a name)."""
        parametrized: Any = super().__class_getitem__(item)
        if cls is not Page or not isinstance(item, type):  # Page[T] in generic code stays generic
            return parametrized
        named = _NAMED.get(item)
        if named is None:
            named = _NAMED[item] = type(f"{item.__name__}Page", (parametrized,), {"__module__": __name__, "__doc__": cls.__doc__})
        return named


_NAMED: dict[type[Any], type[Any]] = {}


PageLimit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many items")]


def whole_page(items: list[T]) -> Page[T]:
    """A short list, bounded by nature, as the one page of itself."""
    return Page[T](items=items)


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """Decode a cursor made by `encode_cursor`; Invalid if it was not."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("cursor is not one this hub returned", errors=[{"field": "cursor", "message": "malformed"}]) from exc
    if not isinstance(values, list) or len(values) != arity:
        raise Invalid("cursor is not one this hub returned", errors=[{"field": "cursor", "message": "malformed"}])
    return values


def keyset(
    query: Select[Any],
    *,
    created: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[str],
    cursor: str | None,
    limit: int,
) -> Select[Any]:
    """Order by (created, id) descending and continue after `cursor`."""
    if limit < 1 or limit > MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", errors=[{"field": "limit", "message": "out of range"}])
    if cursor:
        at_raw, last_id = decode_cursor(cursor, 2)
        try:
            at = datetime.fromisoformat(at_raw)
        except (TypeError, ValueError) as exc:
            raise Invalid("cursor is not one this hub returned") from exc
        query = query.where(or_(created < at, and_(created == at, ident < last_id)))
    return query.order_by(created.desc(), ident.desc()).limit(limit + 1)


def page_of(rows: list[Any], limit: int, *, created: str = "created_at", ident: str = "id") -> tuple[list[Any], str | None]:
    """Split the `limit + 1` rows of a keyset query into a page and the next cursor."""
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([getattr(last, created), getattr(last, ident)])


def fetch_page(
    db: Session,
    query: Select[Any],
    *,
    created: InstrumentedAttribute[datetime],
    ident: InstrumentedAttribute[str],
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """One page of `query`, newest first, and the cursor of the next (`keyset` then `page_of`)."""
    rows = list(db.scalars(keyset(query, created=created, ident=ident, cursor=cursor, limit=limit)))
    return page_of(rows, limit)
