"""seal: the seal authority, seals, their status history and every use

Revision ID: 0003_seal
Revises: 0001_platform
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_seal"
down_revision: str | Sequence[str] | None = "0001_platform"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seal_authority_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("private_key", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_authority_keys")),
    )
    with op.batch_alter_table("seal_authority_keys", schema=None) as batch_op:
        batch_op.create_index("ix_seal_authority_keys_role_active", ["role", "retired_at"], unique=False)

    op.create_table(
        "seals",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("department_code", sa.String(length=18), nullable=False),
        sa.Column("department_name", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("seal_type", sa.String(length=32), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_key", sa.JSON(), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("certificate_serial", sa.String(length=64), nullable=False),
        sa.Column("picture_type", sa.String(length=8), nullable=False),
        sa.Column("picture", sa.LargeBinary(), nullable=False),
        sa.Column("picture_width_mm", sa.Float(), nullable=False),
        sa.Column("picture_height_mm", sa.Float(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("structure", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"], name=op.f("fk_seals_department_id_departments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seals")),
        sa.UniqueConstraint("certificate_serial", name=op.f("uq_seals_certificate_serial")),
        sa.UniqueConstraint("code", name=op.f("uq_seals_code")),
        sa.UniqueConstraint("kid", name=op.f("uq_seals_kid")),
    )
    with op.batch_alter_table("seals", schema=None) as batch_op:
        batch_op.create_index("ix_seals_department_status", ["department_id", "status"], unique=False)

    op.create_table(
        "seal_events",
        sa.Column("seal_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["seal_id"], ["seals.id"], name=op.f("fk_seal_events_seal_id_seals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_events")),
    )
    with op.batch_alter_table("seal_events", schema=None) as batch_op:
        batch_op.create_index("ix_seal_events_seal_at", ["seal_id", "at"], unique=False)

    op.create_table(
        "seal_uses",
        sa.Column("seal_id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("document_hash", sa.String(length=128), nullable=False),
        sa.Column("hash_alg", sa.String(length=16), nullable=False),
        sa.Column("signature_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["seal_id"], ["seals.id"], name=op.f("fk_seal_uses_seal_id_seals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_uses")),
    )
    with op.batch_alter_table("seal_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seal_uses_department_id"), ["department_id"], unique=False)
        batch_op.create_index("ix_seal_uses_document_hash", ["document_hash"], unique=False)
        batch_op.create_index("ix_seal_uses_seal_at", ["seal_id", "at"], unique=False)
        batch_op.create_index("ix_seal_uses_signature_hash", ["signature_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("seal_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_seal_uses_signature_hash")
        batch_op.drop_index("ix_seal_uses_seal_at")
        batch_op.drop_index("ix_seal_uses_document_hash")
        batch_op.drop_index(batch_op.f("ix_seal_uses_department_id"))

    op.drop_table("seal_uses")
    with op.batch_alter_table("seal_events", schema=None) as batch_op:
        batch_op.drop_index("ix_seal_events_seal_at")

    op.drop_table("seal_events")
    with op.batch_alter_table("seals", schema=None) as batch_op:
        batch_op.drop_index("ix_seals_department_status")

    op.drop_table("seals")
    with op.batch_alter_table("seal_authority_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_seal_authority_keys_role_active")

    op.drop_table("seal_authority_keys")
