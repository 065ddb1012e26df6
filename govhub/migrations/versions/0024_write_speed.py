"""certificates: status-list positions reserved in blocks by each hub process

Revision ID: 0024_write_speed
Revises: 0007_certhub
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024_write_speed"
down_revision: str | Sequence[str] | None = "0007_certhub"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cert_status_reservations",
        sa.Column("status_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("status_index", name=op.f("pk_cert_status_reservations")),
    )
    with op.batch_alter_table("cert_status_reservations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cert_status_reservations_reserved_at"), ["reserved_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cert_status_reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cert_status_reservations_reserved_at"))
    op.drop_table("cert_status_reservations")
