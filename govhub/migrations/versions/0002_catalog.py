"""catalogue: entries and versions, datasets and rows, search index, demands

Revision ID: 0002_catalog
Revises: 0001_platform
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_catalog"
down_revision: str | Sequence[str] | None = "0001_platform"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_dataset_rows",
        sa.Column("dataset_id", sa.String(length=36), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("lookup_key", sa.String(length=64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "row_number", name=op.f("pk_catalog_dataset_rows")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("catalog_dataset_rows", schema=None) as batch_op:
        batch_op.create_index("ix_catalog_dataset_rows_lookup", ["dataset_id", "lookup_key", "row_number"], unique=False)

    op.create_table(
        "catalog_search_docs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("name_norm", sa.String(length=200), nullable=False),
        sa.Column("text_norm", sa.Text(), nullable=False),
        sa.Column("provider_department_id", sa.String(length=36), nullable=False),
        sa.Column("sharing_type", sa.String(length=16), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("update_cycle", sa.String(length=16), nullable=False),
        sa.Column("is_certificate", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_search_docs")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_catalog_search_docs_entry_id")),
    )
    with op.batch_alter_table("catalog_search_docs", schema=None) as batch_op:
        batch_op.create_index("ix_catalog_search_docs_classification_id", ["classification", "id"], unique=False)
        batch_op.create_index("ix_catalog_search_docs_is_certificate_id", ["is_certificate", "id"], unique=False)
        batch_op.create_index("ix_catalog_search_docs_provider_department_id_id", ["provider_department_id", "id"], unique=False)
        batch_op.create_index("ix_catalog_search_docs_sharing_type_id", ["sharing_type", "id"], unique=False)
        batch_op.create_index("ix_catalog_search_docs_update_cycle_id", ["update_cycle", "id"], unique=False)

    op.create_table(
        "catalog_search_grams",
        sa.Column("gram", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("scope", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("doc_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("gram", "scope", "doc_id", name=op.f("pk_catalog_search_grams")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "catalog_entries",
        sa.Column("code", sa.String(length=80), nullable=False),
        sa.Column("provider_department_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("current_version_id", sa.String(length=36), nullable=True),
        sa.Column("current_dataset_id", sa.String(length=36), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_reason", sa.String(length=500), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_department_id"], ["departments.id"], name=op.f("fk_catalog_entries_provider_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_entries")),
        sa.UniqueConstraint("code", name=op.f("uq_catalog_entries_code")),
    )
    with op.batch_alter_table("catalog_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_entries_provider_department_id"), ["provider_department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_catalog_entries_state"), ["state"], unique=False)

    op.create_table(
        "catalog_datasets",
        sa.Column("entry_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("object_key", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        sa.Column("key_items", sa.JSON(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["catalog_entries.id"], name=op.f("fk_catalog_datasets_entry_id_catalog_entries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_datasets")),
        sa.UniqueConstraint("entry_id", "number", name=op.f("uq_catalog_datasets_entry_id")),
    )
    with op.batch_alter_table("catalog_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_datasets_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "catalog_demands",
        sa.Column("consumer_department_id", sa.String(length=36), nullable=False),
        sa.Column("target_department_id", sa.String(length=36), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=1000), nullable=False),
        sa.Column("items_wanted", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("answered_by_department_id", sa.String(length=36), nullable=True),
        sa.Column("entry_id", sa.String(length=36), nullable=True),
        sa.Column("answer_note", sa.String(length=1000), nullable=True),
        sa.Column("decline_reason", sa.String(length=1000), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_department_id"], ["departments.id"], name=op.f("fk_catalog_demands_consumer_department_id_departments")
        ),
        sa.ForeignKeyConstraint(["entry_id"], ["catalog_entries.id"], name=op.f("fk_catalog_demands_entry_id_catalog_entries")),
        sa.ForeignKeyConstraint(
            ["target_department_id"], ["departments.id"], name=op.f("fk_catalog_demands_target_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_demands")),
    )
    with op.batch_alter_table("catalog_demands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_demands_consumer_department_id"), ["consumer_department_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_catalog_demands_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_catalog_demands_target_department_id"), ["target_department_id"], unique=False)

    op.create_table(
        "catalog_entry_versions",
        sa.Column("entry_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("classification", sa.String(length=16), nullable=False),
        sa.Column("abstract", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=50), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("sharing_type", sa.String(length=16), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("sharing_method", sa.String(length=16), nullable=False),
        sa.Column("control_parameters", sa.JSON(), nullable=False),
        sa.Column("open_attribute", sa.String(length=16), nullable=False),
        sa.Column("update_cycle", sa.String(length=16), nullable=False),
        sa.Column("related_codes", sa.JSON(), nullable=False),
        sa.Column("is_certificate", sa.Boolean(), nullable=False),
        sa.Column("allows_export", sa.Boolean(), nullable=False),
        sa.Column("serves_dataset", sa.Boolean(), nullable=False),
        sa.Column("api", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=128), nullable=True),
        sa.Column("return_reason", sa.String(length=1000), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["catalog_entries.id"], name=op.f("fk_catalog_entry_versions_entry_id_catalog_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_entry_versions")),
        sa.UniqueConstraint("entry_id", "number", name=op.f("uq_catalog_entry_versions_entry_id")),
    )
    with op.batch_alter_table("catalog_entry_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_entry_versions_entry_id"), ["entry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("catalog_entry_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_entry_versions_entry_id"))

    op.drop_table("catalog_entry_versions")
    with op.batch_alter_table("catalog_demands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_demands_target_department_id"))
        batch_op.drop_index(batch_op.f("ix_catalog_demands_state"))
        batch_op.drop_index(batch_op.f("ix_catalog_demands_consumer_department_id"))

    op.drop_table("catalog_demands")
    with op.batch_alter_table("catalog_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_datasets_entry_id"))

    op.drop_table("catalog_datasets")
    with op.batch_alter_table("catalog_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_entries_state"))
        batch_op.drop_index(batch_op.f("ix_catalog_entries_provider_department_id"))

    op.drop_table("catalog_entries")
    op.drop_table("catalog_search_grams")
    with op.batch_alter_table("catalog_search_docs", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_search_docs_update_cycle_id")
        batch_op.drop_index("ix_catalog_search_docs_sharing_type_id")
        batch_op.drop_index("ix_catalog_search_docs_provider_department_id_id")
        batch_op.drop_index("ix_catalog_search_docs_is_certificate_id")
        batch_op.drop_index("ix_catalog_search_docs_classification_id")

    op.drop_table("catalog_search_docs")
    with op.batch_alter_table("catalog_dataset_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_catalog_dataset_rows_lookup")

    op.drop_table("catalog_dataset_rows")
