"""certhub: reports of a suspected error in a certificate (反馈纠错), sent to its issuer

Revision ID: 0009_certhub_feedback
Revises: 0007_certhub
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_certhub_feedback"
down_revision: str | Sequence[str] | None = "0007_certhub"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cert_feedback",
        sa.Column("certificate_id", sa.String(length=36), nullable=False),
        sa.Column("certificate_identifier", sa.String(length=80), nullable=False),
        sa.Column("issuer_department_id", sa.String(length=36), nullable=False),
        sa.Column("filed_by", sa.String(length=128), nullable=False),
        sa.Column("filer_kind", sa.String(length=16), nullable=False),
        sa.Column("filer_department_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.String(length=1000), nullable=True),
        sa.Column("answered_by", sa.String(length=128), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_cert_feedback_certificate_id_certificates")
        ),
        sa.ForeignKeyConstraint(
            ["issuer_department_id"], ["departments.id"], name=op.f("fk_cert_feedback_issuer_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cert_feedback")),
    )
    with op.batch_alter_table("cert_feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cert_feedback_certificate_id"), ["certificate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cert_feedback_issuer_department_id"), ["issuer_department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cert_feedback_filer_department_id"), ["filer_department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cert_feedback_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cert_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cert_feedback_status"))
        batch_op.drop_index(batch_op.f("ix_cert_feedback_filer_department_id"))
        batch_op.drop_index(batch_op.f("ix_cert_feedback_issuer_department_id"))
        batch_op.drop_index(batch_op.f("ix_cert_feedback_certificate_id"))

    op.drop_table("cert_feedback")
