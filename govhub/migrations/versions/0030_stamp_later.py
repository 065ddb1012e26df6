"""seal: detached seal signatures made while the TSA was unreachable wait on their use and are stamped later

Revision ID: 0030_stamp_later
Revises: 0028_ltv
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030_stamp_later"
down_revision: str | Sequence[str] | None = "0028_ltv"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("seal_uses") as batch:
        batch.add_column(sa.Column("timestamp_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("signature_der", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("timestamp_token", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("stamped_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("timestamp_attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("timestamp_error", sa.Text(), nullable=True))
    op.create_index("ix_seal_uses_timestamp_state", "seal_uses", ["timestamp_state"])


def downgrade() -> None:
    op.drop_index("ix_seal_uses_timestamp_state", table_name="seal_uses")
    with op.batch_alter_table("seal_uses") as batch:
        for column in (
            "timestamp_error",
            "timestamp_attempts",
            "stamped_at",
            "timestamp_token",
            "signature_der",
            "timestamp_state",
        ):
            batch.drop_column(column)
