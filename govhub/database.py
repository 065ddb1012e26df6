"""Schema migrations and first-start preparation, safe when several processes start together."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from certhub import service as certhub_service
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import make_sessionmaker
from ops.identity import service as identity
from ops.identity.service import NewClient
from ops.identity.tokens import ensure_signing_key
from ops.private import private_dir
from seal import service as seal_service

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x60F4B  # arbitrary, fixed: the advisory lock all hub processes agree on


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextmanager
def startup_lock(engine: Engine, settings: Settings) -> Iterator[Connection]:
    """Hold a cluster-wide lock: a PostgreSQL advisory lock, or a file lock for SQLite."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
            connection.commit()
            try:
                yield connection
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
                connection.commit()
        else:
            private_dir(settings.data_dir)
            with (settings.data_dir / ".startup.lock").open("w") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield connection
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine, settings: Settings) -> None:
    """Apply every pending migration (all heads) under the startup lock."""
    with startup_lock(engine, settings):
        config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")


def ensure_keys(db: Session, vault: KeyVault, settings: Settings | None = None) -> None:
    """The keys the hub signs with: its token-signing key, its certificate signer, its seal authority and
    time-stamp authority. Made before the hub serves, not on first use: their first use may be a read (the
    JWKS, a status list, a verifier fetching GET /seal/ca, a sealed copy stamped while it is read), and a
    read does not write."""
    ensure_signing_key(db, vault)
    certhub_service.hub_signer(db, vault=vault)
    if settings is not None:
        seal_service.ensure_authority(db, vault, public_url=settings.public_url)
        seal_service.ensure_tsa(db, vault, public_url=settings.public_url)
    else:
        seal_service.ensure_authority(db, vault)
        seal_service.ensure_tsa(db, vault)


def prepare(engine: Engine, settings: Settings) -> NewClient | None:
    """Migrate, make sure the hub's keys exist, create the first admin client if none."""
    private_dir(settings.data_dir)
    upgrade(engine, settings)
    vault = KeyVault.from_settings(settings)
    with startup_lock(engine, settings):
        factory = make_sessionmaker(engine)
        with factory.begin() as db:
            ensure_keys(db, vault, settings)
            return identity.bootstrap_admin(db, settings)
