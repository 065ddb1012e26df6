"""electronic archives: retention, legal holds, disposal lists and their tombstones; the sealed output of a
seal use kept in object storage (for the archive package of a sealed document)

Revision ID: 0027_archive_records
Revises: 0020_archive_packages
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_archive_records"
down_revision: str | Sequence[str] | None = "0020_archive_packages"
branch_labels: str | Sequence[str] | None = None
# seal_uses gets a column: the seal tables must exist first.
depends_on: str | Sequence[str] | None = ("0016_client_keys_seal_use",)


def upgrade() -> None:
    with op.batch_alter_table("archive_packages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retention_from", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("seal_uses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("object_key", sa.String(length=64), nullable=True))

    op.create_table(
        "archive_holds",
        sa.Column("record_class", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("placed_by", sa.String(length=128), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(length=128), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.String(length=500), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_holds")),
    )
    with op.batch_alter_table("archive_holds", schema=None) as batch_op:
        batch_op.create_index("ix_archive_holds_record", ["record_class", "record_id"], unique=False)

    op.create_table(
        "archive_disposal_lists",
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("approved_by", sa.String(length=128), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_disposal_lists")),
    )

    op.create_table(
        "archive_tombstones",
        sa.Column("record_class", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.Column("package_id", sa.String(length=36), nullable=False),
        sa.Column("package_sha256", sa.String(length=64), nullable=False),
        sa.Column("package_sm3", sa.String(length=64), nullable=False),
        sa.Column("package_size", sa.Integer(), nullable=False),
        sa.Column("retention_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retention_years", sa.Integer(), nullable=False),
        sa.Column("disposal_list_id", sa.String(length=36), nullable=False),
        sa.Column("proposed_by", sa.String(length=128), nullable=False),
        sa.Column("approved_by", sa.String(length=128), nullable=False),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_tombstones")),
    )
    with op.batch_alter_table("archive_tombstones", schema=None) as batch_op:
        batch_op.create_index("ix_archive_tombstones_record", ["record_class", "record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("archive_tombstones", schema=None) as batch_op:
        batch_op.drop_index("ix_archive_tombstones_record")
    op.drop_table("archive_tombstones")
    op.drop_table("archive_disposal_lists")
    with op.batch_alter_table("archive_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_archive_holds_record")
    op.drop_table("archive_holds")
    with op.batch_alter_table("seal_uses", schema=None) as batch_op:
        batch_op.drop_column("object_key")
    with op.batch_alter_table("archive_packages", schema=None) as batch_op:
        batch_op.drop_column("disposed_at")
        batch_op.drop_column("retention_from")
