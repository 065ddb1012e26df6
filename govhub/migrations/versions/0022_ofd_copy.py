"""certificate copies as OFD: the object key of a certificate version's sealed OFD copy

Revision ID: 0022_ofd_copy
Revises: 0007_certhub
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_ofd_copy"
down_revision: str | Sequence[str] | None = "0007_certhub"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("ofd_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("ofd_key")
