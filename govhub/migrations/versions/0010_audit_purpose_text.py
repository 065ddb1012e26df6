"""audit: a record keeps the whole purpose its action was given (a demand's or a decision's reason may be
1000 characters; the column held 500, and PostgreSQL refused the longer ones with a 500)

Revision ID: 0010_audit_purpose_text
Revises: 0004_ops
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_audit_purpose_text"
down_revision: str | Sequence[str] | None = "0004_ops"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite does not enforce a VARCHAR's length: only PostgreSQL's column changes (no rewrite: text and
    # varchar share their storage).
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("audit_records", "purpose", type_=sa.Text(), existing_type=sa.String(length=500), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "audit_records",
            "purpose",
            type_=sa.String(length=500),
            existing_type=sa.Text(),
            existing_nullable=True,
            postgresql_using="left(purpose, 500)",
        )
