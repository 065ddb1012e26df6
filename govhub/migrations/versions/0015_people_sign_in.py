"""people who sign in through the identity provider; pending OpenID Connect sign-ins; acr/amr of sessions

Revision ID: 0015_people_sign_in
Revises: 0008_console
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_people_sign_in"
down_revision: str | Sequence[str] | None = "0008_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("id_number", sa.String(length=18), nullable=True),
        sa.Column("department_id", sa.String(length=36), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("assigned_by", sa.String(length=64), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"], name=op.f("fk_people_department_id_departments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_department_id"), ["department_id"], unique=False)
        batch_op.create_index("uq_people_issuer_subject", ["issuer", "subject"], unique=True)

    op.create_table(
        "console_pending_sign_ins",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("next_url", sa.String(length=500), nullable=False),
        sa.Column("step_up", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_console_pending_sign_ins")),
    )
    with op.batch_alter_table("console_pending_sign_ins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_pending_sign_ins_created_at"), ["created_at"], unique=False)

    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acr", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("amr", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_column("amr")
        batch_op.drop_column("acr")
    with op.batch_alter_table("console_pending_sign_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_console_pending_sign_ins_created_at"))
    op.drop_table("console_pending_sign_ins")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index("uq_people_issuer_subject")
        batch_op.drop_index(batch_op.f("ix_people_department_id"))
    op.drop_table("people")
