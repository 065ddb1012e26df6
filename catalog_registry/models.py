"""Tables of the catalogue: entries and their versions, datasets and rows, the search index, demands."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, IdMixin, TimestampMixin, VersionedMixin, utcnow


class Classification(StrEnum):
    """资源分类: 基础 / 主题 / 部门 (GB/T 21063)."""

    BASE = "base"
    THEME = "theme"
    DEPARTMENT = "department"


class SharingType(StrEnum):
    """共享属性: 无条件共享 / 有条件共享 / 不予共享."""

    UNCONDITIONAL = "unconditional"
    CONDITIONAL = "conditional"
    NOT_SHARED = "not_shared"


class SharingMethod(StrEnum):
    """共享方式: 接口 / 文件 / 数据库."""

    API = "api"
    FILE = "file"
    DATABASE = "database"


class OpenAttribute(StrEnum):
    """开放属性: 无条件开放 / 有条件开放 / 不予开放."""

    OPEN = "open"
    CONDITIONAL = "conditional"
    NOT_OPEN = "not_open"


class UpdateCycle(StrEnum):
    """更新周期."""

    REALTIME = "realtime"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    SEMIANNUAL = "semiannual"
    ANNUAL = "annual"


class Sensitivity(StrEnum):
    """Sensitivity grade of an information item (分级)."""

    PUBLIC = "public"
    INTERNAL = "internal"
    SENSITIVE = "sensitive"
    SECRET = "secret"  # noqa: S105 (a grade, not a password)


class DataType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


class EntryState(StrEnum):
    """State of a catalogue entry as a whole."""

    DRAFT = "draft"  # never published yet
    PUBLISHED = "published"
    RETIRED = "retired"


class VersionState(StrEnum):
    """State of one version of an entry."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    PUBLISHED = "published"  # the current published version
    SUPERSEDED = "superseded"  # published once, replaced by a newer version
    WITHDRAWN = "withdrawn"  # an open draft discarded when the entry was retired


class DatasetState(StrEnum):
    LOADED = "loaded"
    REPLACED = "replaced"
    ARCHIVED = "archived"  # replaced long ago: its rows dropped, its file kept in object storage


class DemandState(StrEnum):
    """供需对接: a consumer's data demand."""

    OPEN = "open"
    ANSWERED = "answered"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class CatalogEntry(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A data resource of the catalogue (政务数据资源目录条目): its stable identity across versions."""

    __tablename__ = "catalog_entries"

    code: Mapped[str] = mapped_column(String(80), unique=True)
    provider_department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    state: Mapped[EntryState] = mapped_column(String(16), default=EntryState.DRAFT, index=True)
    current_version_id: Mapped[str | None] = mapped_column(String(36))  # the published version
    current_dataset_id: Mapped[str | None] = mapped_column(String(36))  # the dataset version served
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
    retired_reason: Mapped[str | None] = mapped_column(String(500))


class EntryVersion(IdMixin, TimestampMixin, VersionedMixin, Base):
    """One version of an entry's metadata. A published version is never changed again."""

    __tablename__ = "catalog_entry_versions"
    __table_args__ = (UniqueConstraint("entry_id", "number"),)

    entry_id: Mapped[str] = mapped_column(ForeignKey("catalog_entries.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[VersionState] = mapped_column(String(16), default=VersionState.DRAFT)
    name: Mapped[str] = mapped_column(String(200))
    classification: Mapped[str] = mapped_column(String(16))
    abstract: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(50))
    items: Mapped[list[Any]] = mapped_column(JSON)
    sharing_type: Mapped[str] = mapped_column(String(16))
    conditions: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str | None] = mapped_column(Text)
    sharing_method: Mapped[str] = mapped_column(String(16))
    control_parameters: Mapped[list[Any]] = mapped_column(JSON)
    open_attribute: Mapped[str] = mapped_column(String(16))
    update_cycle: Mapped[str] = mapped_column(String(16))
    related_codes: Mapped[list[Any]] = mapped_column(JSON)
    is_certificate: Mapped[bool] = mapped_column(default=False)
    allows_export: Mapped[bool] = mapped_column(default=False)
    serves_dataset: Mapped[bool] = mapped_column(default=False)
    api: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # 数据回流: the item holding each row's administrative division (GB/T 2260), and whether grants to
    # departments of lower-level governments are scoped to their own division by it.
    division_item: Mapped[str | None] = mapped_column(String(100), default=None)
    region_scoped: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(128))
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(default=None)
    reviewed_by: Mapped[str | None] = mapped_column(String(128))
    return_reason: Mapped[str | None] = mapped_column(String(1000))
    published_at: Mapped[datetime | None] = mapped_column(default=None)


class Dataset(IdMixin, Base):
    """One uploaded version of an entry's data (CSV or JSON Lines), kept in object storage."""

    __tablename__ = "catalog_datasets"
    __table_args__ = (UniqueConstraint("entry_id", "number"),)

    entry_id: Mapped[str] = mapped_column(ForeignKey("catalog_entries.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[DatasetState] = mapped_column(String(16), default=DatasetState.LOADED)
    media_type: Mapped[str] = mapped_column(String(32))
    object_key: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    columns: Mapped[list[Any]] = mapped_column(JSON)
    key_items: Mapped[list[Any]] = mapped_column(JSON)  # the items whose values make up lookup_key
    division_item: Mapped[str | None] = mapped_column(String(100), default=None)  # the item region_code holds
    uploaded_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The version this one replaced, and its change set against it (rows added, changed, removed by key).
    previous_id: Mapped[str | None] = mapped_column(String(36))
    rows_added: Mapped[int] = mapped_column(Integer, default=0)
    rows_changed: Mapped[int] = mapped_column(Integer, default=0)
    rows_removed: Mapped[int] = mapped_column(Integer, default=0)
    # "none": no change set (the first version); "pending": not yet taken by the exchange's outbox; "taken".
    changes_state: Mapped[str] = mapped_column(String(16), default="none", index=True)


class DatasetChange(Base):
    """One row of a version's change set: added or changed (the new row) or removed (the old row)."""

    __tablename__ = "catalog_dataset_changes"
    __table_args__ = ({"sqlite_with_rowid": False},)

    dataset_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    op: Mapped[str] = mapped_column(String(8))  # added / changed / removed
    lookup_key: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class DatasetRow(Base):
    """A row of a dataset version; `lookup_key` indexes the control-parameter values, `region_code` the
    administrative division the row concerns (its division item's value), for grants scoped to a division."""

    __tablename__ = "catalog_dataset_rows"
    __table_args__ = (
        Index("ix_catalog_dataset_rows_lookup", "dataset_id", "lookup_key", "row_number"),
        Index("ix_catalog_dataset_rows_region", "dataset_id", "region_code", "row_number"),
        {"sqlite_with_rowid": False},
    )

    dataset_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    row_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    lookup_key: Mapped[str | None] = mapped_column(String(64))
    region_code: Mapped[str | None] = mapped_column(String(6), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class SearchDoc(Base):
    """The searchable text of an entry's current published version (one row per entry)."""

    __tablename__ = "catalog_search_docs"
    # Each filter with the id: "this filter, newest first" is one index walk on both databases.
    __table_args__ = tuple(
        Index(f"ix_catalog_search_docs_{column}_id", column, "id")
        for column in ("provider_department_id", "sharing_type", "classification", "update_cycle", "is_certificate")
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(36), unique=True)
    version_id: Mapped[str] = mapped_column(String(36))
    name_norm: Mapped[str] = mapped_column(String(200))
    text_norm: Mapped[str] = mapped_column(Text)
    provider_department_id: Mapped[str] = mapped_column(String(36))
    sharing_type: Mapped[str] = mapped_column(String(16))
    classification: Mapped[str] = mapped_column(String(16))
    update_cycle: Mapped[str] = mapped_column(String(16))
    is_certificate: Mapped[bool] = mapped_column()


class SearchGram(Base):
    """Inverted index of character bigrams, one row per (bigram, doc): scope 1 when the bigram occurs in
    the doc's name, 0 when it occurs only elsewhere (abstract, items, provider, code)."""

    __tablename__ = "catalog_search_grams"
    __table_args__ = ({"sqlite_with_rowid": False},)

    gram: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    scope: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    doc_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class Demand(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A consumer's data demand (数据需求) that providers answer (供需对接)."""

    __tablename__ = "catalog_demands"

    consumer_department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    target_department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(1000))
    items_wanted: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[DemandState] = mapped_column(String(16), default=DemandState.OPEN, index=True)
    answered_by_department_id: Mapped[str | None] = mapped_column(String(36))
    entry_id: Mapped[str | None] = mapped_column(ForeignKey("catalog_entries.id"))
    answer_note: Mapped[str | None] = mapped_column(String(1000))
    decline_reason: Mapped[str | None] = mapped_column(String(1000))
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
