"""flow: dataset versions keep their rows and their change sets; subscriptions to grants and to supervision
events, the exchange's outbox and its deliveries

Revision ID: 0011_flow
Revises: 0006_exchange
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_flow"
down_revision: str | Sequence[str] | None = "0006_exchange"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("catalog_datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("rows_added", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("rows_changed", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("rows_removed", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("changes_state", sa.String(length=16), nullable=False, server_default="none"))
        batch_op.create_index(batch_op.f("ix_catalog_datasets_changes_state"), ["changes_state"], unique=False)

    op.create_table(
        "catalog_dataset_changes",
        sa.Column("dataset_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(length=8), nullable=False),
        sa.Column("lookup_key", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "seq", name=op.f("pk_catalog_dataset_changes")),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "exchange_subscriptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("grant_id", sa.String(length=36), nullable=True),
        sa.Column("department_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("signing_secret", sa.JSON(), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("start_after", BIGID, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_subscriptions")),
    )
    with op.batch_alter_table("exchange_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exchange_subscriptions_department_id"), ["department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_exchange_subscriptions_grant_id"), ["grant_id"], unique=False)

    op.create_table(
        "exchange_outbox",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("grant_id", sa.String(length=36), nullable=True),
        sa.Column("department_id", sa.String(length=36), nullable=True),
        sa.Column("resource_id", sa.String(length=36), nullable=True),
        sa.Column("dataset_id", sa.String(length=36), nullable=True),
        sa.Column("dataset_number", sa.Integer(), nullable=True),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_exchange_outbox_event_id")),
        sa.UniqueConstraint("grant_id", "dataset_id", "first_seq", name=op.f("uq_exchange_outbox_grant_id")),
    )
    with op.batch_alter_table("exchange_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_exchange_outbox_grant_id", ["grant_id", "id"], unique=False)
        batch_op.create_index("ix_exchange_outbox_unpublished", ["published_at", "id"], unique=False)

    op.create_table(
        "exchange_deliveries",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("event_pk", BIGID, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_deliveries")),
        sa.UniqueConstraint("subscription_id", "event_pk", name=op.f("uq_exchange_deliveries_subscription_id")),
    )
    with op.batch_alter_table("exchange_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_exchange_deliveries_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_exchange_deliveries_subscription_id"), ["subscription_id"], unique=False)


def downgrade() -> None:
    op.drop_table("exchange_deliveries")
    op.drop_table("exchange_outbox")
    op.drop_table("exchange_subscriptions")
    op.drop_table("catalog_dataset_changes")
    with op.batch_alter_table("catalog_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_datasets_changes_state"))
        batch_op.drop_column("changes_state")
        batch_op.drop_column("rows_removed")
        batch_op.drop_column("rows_changed")
        batch_op.drop_column("rows_added")
        batch_op.drop_column("previous_id")
