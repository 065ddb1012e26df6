"""Alembic environment: every model of the hub is imported so that autogenerate sees it."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from sqlalchemy import engine_from_config, pool

# Imported for their side effect: registering every table on Base.metadata.
import catalog_registry.models  # noqa: F401
import certhub.models  # noqa: F401
import exchange.models  # noqa: F401
import govhub.console.models  # noqa: F401
import ops.archive.models
import ops.audit
import ops.auditlog.models
import ops.divisions.models
import ops.identity.models
import ops.ratings.models
import ops.scheduler
import ops.workdays.models  # noqa: F401
import seal.models  # noqa: F401
from ops.db import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    connectable = engine_from_config(
        config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connectable.connect() as conn:
        _run(conn)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render the hub's UTC column type as the plain SQL type it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True, render_item=_render_item
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
