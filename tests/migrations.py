"""The head revisions of the hub's migrations, which the tests compare with (the hub never asks)."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from govhub.database import alembic_config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
