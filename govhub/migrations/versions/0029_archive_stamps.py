"""electronic archives: each package's RFC 3161 time stamp (stamped, awaiting, or none for packages written before)

Revision ID: 0029_archive_stamps
Revises: 0027_archive_records
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029_archive_stamps"
down_revision: str | Sequence[str] | None = "0027_archive_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("archive_packages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timestamp_state", sa.String(length=16), server_default="none", nullable=False))
        batch_op.add_column(sa.Column("timestamped_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("timestamp_error", sa.String(length=300), nullable=True))
    op.create_index("ix_archive_packages_timestamp_state", "archive_packages", ["timestamp_state"])


def downgrade() -> None:
    op.drop_index("ix_archive_packages_timestamp_state", table_name="archive_packages")
    with op.batch_alter_table("archive_packages", schema=None) as batch_op:
        batch_op.drop_column("timestamp_error")
        batch_op.drop_column("timestamped_at")
        batch_op.drop_column("timestamp_state")
