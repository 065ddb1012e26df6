"""electronic archives: each package's chain of time stamps (its length, the last stamp's authority certificate
expiry and digest algorithm, when its renewal is due, the last renewal error)

Revision ID: 0031_archive_renewal
Revises: 0029_archive_stamps
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031_archive_renewal"
down_revision: str | Sequence[str] | None = "0029_archive_stamps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("archive_packages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stamp_chain_length", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("stamp_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("stamp_digest_algorithm", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("stamp_renewal_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("stamp_renewal_error", sa.String(length=300), nullable=True))
    op.create_index("ix_archive_packages_stamp_renewal_due_at", "archive_packages", ["stamp_renewal_due_at"])


def downgrade() -> None:
    op.drop_index("ix_archive_packages_stamp_renewal_due_at", table_name="archive_packages")
    with op.batch_alter_table("archive_packages", schema=None) as batch_op:
        batch_op.drop_column("stamp_renewal_error")
        batch_op.drop_column("stamp_renewal_due_at")
        batch_op.drop_column("stamp_digest_algorithm")
        batch_op.drop_column("stamp_expires_at")
        batch_op.drop_column("stamp_chain_length")
