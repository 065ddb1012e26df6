"""certhub: service items (政务服务事项), versioned, and the materials each version requires

Revision ID: 0013_certhub_services
Revises: 0009_certhub_feedback
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_certhub_services"
down_revision: str | Sequence[str] | None = "0009_certhub_feedback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cert_services",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("holder_kind", sa.String(length=16), nullable=False),
        sa.Column("form_fields", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"], name=op.f("fk_cert_services_department_id_departments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cert_services")),
        sa.UniqueConstraint("code", "number", name="uq_cert_services_code_number"),
    )
    with op.batch_alter_table("cert_services", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cert_services_code"), ["code"], unique=False)
        batch_op.create_index(batch_op.f("ix_cert_services_department_id"), ["department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cert_services_state"), ["state"], unique=False)

    op.create_table(
        "cert_service_materials",
        sa.Column("service_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("type_code", sa.String(length=21), nullable=True),
        sa.Column("resource_id", sa.String(length=36), nullable=True),
        sa.Column("resource_name", sa.String(length=200), nullable=True),
        sa.Column("item", sa.String(length=100), nullable=True),
        sa.Column("key_item", sa.String(length=100), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["cert_services.id"], name=op.f("fk_cert_service_materials_service_id_cert_services")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cert_service_materials")),
        sa.UniqueConstraint("service_id", "key", name="uq_cert_service_materials_key"),
    )
    with op.batch_alter_table("cert_service_materials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cert_service_materials_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_cert_service_materials_service_id"), ["service_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cert_service_materials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cert_service_materials_service_id"))
        batch_op.drop_index(batch_op.f("ix_cert_service_materials_kind"))
    op.drop_table("cert_service_materials")
    with op.batch_alter_table("cert_services", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cert_services_state"))
        batch_op.drop_index(batch_op.f("ix_cert_services_department_id"))
        batch_op.drop_index(batch_op.f("ix_cert_services_code"))
    op.drop_table("cert_services")
