"""数据回流: the division table (GB/T 2260, loaded with the list shipped in ops/divisions), an entry's
division item, each dataset row's division code (indexed), and a grant's division scope

Revision ID: 0012_divisions
Revises: 0006_exchange
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ops.divisions.service import packaged_divisions

revision: str = "0012_divisions"
down_revision: str | Sequence[str] | None = "0006_exchange"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    divisions = op.create_table(
        "divisions",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_code", sa.String(length=6), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_divisions")),
    )
    with op.batch_alter_table("divisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_divisions_parent_code"), ["parent_code"], unique=False)
    op.bulk_insert(
        divisions,
        [{"code": d.code, "name": d.name, "level": d.level.value, "parent_code": d.parent_code} for d in packaged_divisions()],
    )
    with op.batch_alter_table("catalog_entry_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("division_item", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("region_scoped", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("catalog_datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("division_item", sa.String(length=100), nullable=True))
    with op.batch_alter_table("catalog_dataset_rows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region_code", sa.String(length=6), nullable=True))
        batch_op.create_index("ix_catalog_dataset_rows_region", ["dataset_id", "region_code", "row_number"], unique=False)
    with op.batch_alter_table("sharing_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region_scope", sa.String(length=6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sharing_grants", schema=None) as batch_op:
        batch_op.drop_column("region_scope")
    with op.batch_alter_table("catalog_dataset_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_dataset_rows_region")
        batch_op.drop_column("region_code")
    with op.batch_alter_table("catalog_datasets", schema=None) as batch_op:
        batch_op.drop_column("division_item")
    with op.batch_alter_table("catalog_entry_versions", schema=None) as batch_op:
        batch_op.drop_column("region_scoped")
    with op.batch_alter_table("divisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_divisions_parent_code"))
    op.drop_table("divisions")
