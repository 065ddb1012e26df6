"""Small helpers the parts of the catalogue share: the caller's own entry, and enum query parameters."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.models import CatalogEntry
from catalog_registry.schemas import enum_value
from ops.auth import Principal
from ops.errors import Forbidden, Invalid, NotFound


def _own(db: Session, who: Principal, entry_id: str) -> CatalogEntry:
    entry = repository.own_entry(db, who, entry_id)
    if entry is None:
        if repository.get_entry(db, who, entry_id) is not None:
            raise Forbidden("only the provider department may change its catalogue entry")
        raise NotFound(f"catalogue entry {entry_id} not found")
    return entry


def _enum_param(name: str, enum: Any, value: str) -> str:
    try:
        return str(enum_value(enum, value).value)
    except ValueError as exc:
        raise Invalid(f"{name}: {exc}", errors=[{"field": name, "message": str(exc)}]) from None
