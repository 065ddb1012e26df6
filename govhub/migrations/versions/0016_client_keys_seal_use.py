"""identity and seals: clients' registered keys (private_key_jwt) and spent assertions, former secrets in
their overlap after a rotation; who may use and approve a seal (用印授权), use requests (用印审批)

Revision ID: 0016_client_keys_seal_use
Revises: 0003_seal
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0016_client_keys_seal_use"
down_revision: str | Sequence[str] | None = "0003_seal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_client_keys",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("kid", sa.String(length=128), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["api_clients.client_id"], name=op.f("fk_api_client_keys_client_id_api_clients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_client_keys")),
        sa.UniqueConstraint("client_id", "kid", name="uq_api_client_keys_client_kid"),
    )
    with op.batch_alter_table("api_client_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_client_keys_client_id"), ["client_id"], unique=False)

    op.create_table(
        "api_client_retiring_secrets",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.client_id"], name=op.f("fk_api_client_retiring_secrets_client_id_api_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_client_retiring_secrets")),
    )
    with op.batch_alter_table("api_client_retiring_secrets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_client_retiring_secrets_client_id"), ["client_id"], unique=False)

    op.create_table(
        "api_client_used_assertions",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_api_client_used_assertions")),
    )
    with op.batch_alter_table("api_client_used_assertions", schema=None) as batch_op:
        batch_op.create_index("ix_api_client_used_assertions_expires_at", ["expires_at"], unique=False)

    # Added in place: a batch copy of `seals` on SQLite would break the keys of the rows that refer to it.
    op.add_column("seals", sa.Column("requires_approval", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("seals", sa.Column("approval_valid_hours", sa.Integer(), server_default="24", nullable=False))
    op.add_column("seal_uses", sa.Column("request_id", sa.String(length=36), nullable=True))

    op.create_table(
        "seal_authorisations",
        sa.Column("seal_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("may_use", sa.Boolean(), nullable=False),
        sa.Column("may_approve", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("granted_by", sa.String(length=128), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_by", sa.String(length=128), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["seal_id"], ["seals.id"], name=op.f("fk_seal_authorisations_seal_id_seals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_authorisations")),
    )
    with op.batch_alter_table("seal_authorisations", schema=None) as batch_op:
        batch_op.create_index("ix_seal_authorisations_seal_subject", ["seal_id", "subject"], unique=False)

    op.create_table(
        "seal_use_requests",
        sa.Column("seal_id", sa.String(length=36), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("document_name", sa.String(length=300), nullable=False),
        sa.Column("document_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("use_id", sa.String(length=36), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["seal_id"], ["seals.id"], name=op.f("fk_seal_use_requests_seal_id_seals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seal_use_requests")),
    )
    with op.batch_alter_table("seal_use_requests", schema=None) as batch_op:
        batch_op.create_index("ix_seal_use_requests_seal_created", ["seal_id", "created_at"], unique=False)

    # Before this revision the certificate hub sealed certificates' PDF copies with any active seal of the
    # issuing department. It keeps doing so with the seals that exist now (each department may withdraw it);
    # a seal made from now on is used by whoever its department authorises, the hub included.
    seals = sa.table("seals", sa.column("id", sa.String), sa.column("status", sa.String))
    existing = op.get_bind().execute(sa.select(seals.c.id).where(seals.c.status != "revoked")).scalars().all()
    if existing:
        now = datetime.now(UTC)
        authorisations = sa.table(
            "seal_authorisations",
            *(sa.column(name) for name in ("id", "seal_id", "subject", "subject_kind", "may_use", "may_approve", "note")),
            sa.column("granted_by"),
            sa.column("granted_at", sa.DateTime(timezone=True)),
        )
        op.bulk_insert(
            authorisations,
            [
                {
                    "id": str(uuid.uuid4()),
                    "seal_id": seal_id,
                    "subject": "certhub",
                    "subject_kind": "system",
                    "may_use": True,
                    "may_approve": False,
                    "note": "电子证照副本用印（升级时保留）",
                    "granted_by": "migration 0016",
                    "granted_at": now,
                }
                for seal_id in existing
            ],
        )


def downgrade() -> None:
    op.drop_table("seal_use_requests")
    op.drop_table("seal_authorisations")
    # Dropped in place (SQLite 3.35 and later can), for the same reason.
    op.execute("ALTER TABLE seal_uses DROP COLUMN request_id")
    op.execute("ALTER TABLE seals DROP COLUMN approval_valid_hours")
    op.execute("ALTER TABLE seals DROP COLUMN requires_approval")
    op.drop_table("api_client_used_assertions")
    op.drop_table("api_client_retiring_secrets")
    op.drop_table("api_client_keys")
