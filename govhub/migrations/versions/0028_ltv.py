"""seal: PDFs kept at PAdES B-LTA, their document time stamp chain renewed before it weakens

Revision ID: 0028_ltv
Revises: 0018_seal_der
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028_ltv"
down_revision: str | Sequence[str] | None = "0018_seal_der"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seal_lta_records",
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("seal_id", sa.String(length=36), sa.ForeignKey("seals.id"), nullable=False),
        sa.Column("use_id", sa.String(length=36), nullable=False),
        sa.Column("field_name", sa.String(length=100), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("timestamps", sa.Integer(), nullable=False),
        sa.Column("last_timestamp_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_tsa_subject", sa.String(length=500), nullable=False),
        sa.Column("last_tsa_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_digest_algorithm", sa.String(length=32), nullable=False),
        sa.Column("renew_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewals", sa.Integer(), nullable=False),
        sa.Column("last_renewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_seal_lta_records_due", "seal_lta_records", ["renew_after"])
    op.create_index("ix_seal_lta_records_department_id", "seal_lta_records", ["department_id"])


def downgrade() -> None:
    op.drop_index("ix_seal_lta_records_department_id", table_name="seal_lta_records")
    op.drop_index("ix_seal_lta_records_due", table_name="seal_lta_records")
    op.drop_table("seal_lta_records")
