"""certhub: short codes (亮证码), public 验真 tokens and public fields; the unified 好差评 with rectification

Revision ID: 0014_window_codes
Revises: 0009_certhub_feedback, 0006_exchange
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_window_codes"
down_revision: str | Sequence[str] | None = ("0009_certhub_feedback", "0006_exchange")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SCORES = {"good": 5, "average": 3, "poor": 1}


def upgrade() -> None:
    op.create_table(
        "cert_short_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("certificate_identifier", sa.String(length=80), nullable=False),
        sa.Column("holder_code", sa.String(length=18), nullable=False),
        sa.Column("audience", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("redeemed_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_cert_short_codes")),
    )
    with op.batch_alter_table("cert_short_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cert_short_codes_certificate_identifier"), ["certificate_identifier"], unique=False)
        batch_op.create_index(batch_op.f("ix_cert_short_codes_expires_at"), ["expires_at"], unique=False)

    with op.batch_alter_table("cert_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_fields", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_token_hash", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_certificates_public_token_hash"), ["public_token_hash"])

    op.create_table(
        "service_ratings",
        sa.Column("event_kind", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("rater_kind", sa.String(length=16), nullable=False),
        sa.Column("rater_ref", sa.String(length=64), nullable=False),
        sa.Column("rated_by", sa.String(length=128), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_ratings")),
        sa.UniqueConstraint("event_kind", "event_id", name=op.f("uq_service_ratings_event_kind")),
    )
    with op.batch_alter_table("service_ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_ratings_department_id"), ["department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_ratings_rater_ref"), ["rater_ref"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_ratings_rated_at"), ["rated_at"], unique=False)
    op.create_table(
        "rating_rectifications",
        sa.Column("rating_id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_provisional", sa.Boolean(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("replied_by", sa.String(length=128), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rating_id"], ["service_ratings.id"], name=op.f("fk_rating_rectifications_rating_id_service_ratings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rating_rectifications")),
        sa.UniqueConstraint("rating_id", name=op.f("uq_rating_rectifications_rating_id")),
    )
    with op.batch_alter_table("rating_rectifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rating_rectifications_department_id"), ["department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rating_rectifications_status"), ["status"], unique=False)

    # The exchange's ratings of decided requests join the one store of 好差评 (good 5, average 3, poor 1).
    bind = op.get_bind()
    old = bind.execute(
        sa.text(
            "SELECT r.request_id, r.provider_department_id, r.rating, r.comment, r.rated_by, r.rated_at,"
            " q.consumer_department_id FROM sharing_ratings r JOIN sharing_requests q ON q.id = r.request_id"
        )
    ).all()
    if old:
        # Untyped columns: each value goes back as the database gave it (SQLite's stored text, PostgreSQL's timestamp).
        names = ("id", "event_kind", "event_id", "department_id", "rater_kind", "rater_ref", "rated_by", "score", "comment")
        ratings = sa.table("service_ratings", *(sa.column(n) for n in (*names, "channel", "rated_at")))
        op.bulk_insert(
            ratings,
            [
                {
                    "id": str(uuid.uuid4()),
                    "event_kind": "sharing_request.decision",
                    "event_id": row.request_id,
                    "department_id": row.provider_department_id,
                    "rater_kind": "department",
                    "rater_ref": row.consumer_department_id,
                    "rated_by": row.rated_by,
                    "score": SCORES.get(row.rating, 3),
                    "comment": row.comment,
                    "channel": "api",
                    "rated_at": row.rated_at,
                }
                for row in old
            ],
        )
    with op.batch_alter_table("sharing_ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sharing_ratings_provider_department_id"))
    op.drop_table("sharing_ratings")


def downgrade() -> None:
    op.create_table(
        "sharing_ratings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("provider_department_id", sa.String(length=36), nullable=False),
        sa.Column("rating", sa.String(length=10), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("rated_by", sa.String(length=128), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["sharing_requests.id"], name=op.f("fk_sharing_ratings_request_id_sharing_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_ratings")),
        sa.UniqueConstraint("request_id", name=op.f("uq_sharing_ratings_request_id")),
    )
    with op.batch_alter_table("sharing_ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sharing_ratings_provider_department_id"), ["provider_department_id"], unique=False)
    op.execute(
        "INSERT INTO sharing_ratings (request_id, provider_department_id, rating, comment, rated_by, rated_at)"
        " SELECT event_id, department_id, CASE WHEN score >= 4 THEN 'good' WHEN score = 3 THEN 'average' ELSE 'poor' END,"
        " comment, rated_by, rated_at FROM service_ratings WHERE event_kind = 'sharing_request.decision'"
    )
    with op.batch_alter_table("rating_rectifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rating_rectifications_status"))
        batch_op.drop_index(batch_op.f("ix_rating_rectifications_department_id"))
    op.drop_table("rating_rectifications")
    with op.batch_alter_table("service_ratings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_ratings_rated_at"))
        batch_op.drop_index(batch_op.f("ix_service_ratings_rater_ref"))
        batch_op.drop_index(batch_op.f("ix_service_ratings_department_id"))
    op.drop_table("service_ratings")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_certificates_public_token_hash"), type_="unique")
        batch_op.drop_column("public_token_hash")
    with op.batch_alter_table("cert_types", schema=None) as batch_op:
        batch_op.drop_column("public_fields")
    with op.batch_alter_table("cert_short_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cert_short_codes_expires_at"))
        batch_op.drop_index(batch_op.f("ix_cert_short_codes_certificate_identifier"))
    op.drop_table("cert_short_codes")
