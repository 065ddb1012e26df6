"""The head revisions of the hub's migrations, which the tests compare with (the hub never asks)."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from govhub.database import alembic_config


def head_revisions() -> set[str]:
    """The rows `alembic_version` holds once every migration ran: the heads, less a head another revision
    `depends_on` (applying that revision records it as applied, so alembic keeps no row of its own for it)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    depended_on: set[str] = set()
    for revision in script.walk_revisions():
        deps = revision.dependencies or ()
        depended_on.update((deps,) if isinstance(deps, str) else deps)
    return set(script.get_heads()) - depended_on
