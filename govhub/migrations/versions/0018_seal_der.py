"""seal: the GB/T 38540 v4 seal in DER beside its readable view, and the CRLs the issuing CAs publish

Existing seals keep structure_der empty until `govhub seals migrate-der` (or their next use) makes it.

Revision ID: 0018_seal_der
Revises: 0003_seal
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_seal_der"
down_revision: str | Sequence[str] | None = "0003_seal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite too): recreating "seals" would trip the foreign keys that name it.
    op.add_column("seals", sa.Column("structure_der", sa.LargeBinary(), nullable=True))
    op.create_table(
        "seal_crls",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("issuer_key_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries_hash", sa.String(length=64), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_crls")),
    )
    op.create_index("ix_seal_crls_issuer_number", "seal_crls", ["issuer_key_id", "number"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_seal_crls_issuer_number", table_name="seal_crls")
    op.drop_table("seal_crls")
    # Dropped in place (SQLite 3.35 and later can): recreating "seals" would trip the foreign keys that name it.
    op.execute("ALTER TABLE seals DROP COLUMN structure_der")
