"""electronic archives: the archive packages the hub has written (电子档案归档)

Revision ID: 0020_archive_packages
Revises: 0001_platform
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_archive_packages"
down_revision: str | Sequence[str] | None = "0001_platform"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "archive_packages",
        sa.Column("record_class", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=True),
        sa.Column("object_key", sa.String(length=64), nullable=False),
        sa.Column("sm3", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_packages")),
    )
    with op.batch_alter_table("archive_packages", schema=None) as batch_op:
        batch_op.create_index("ix_archive_packages_record", ["record_class", "record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("archive_packages", schema=None) as batch_op:
        batch_op.drop_index("ix_archive_packages_record")
    op.drop_table("archive_packages")
