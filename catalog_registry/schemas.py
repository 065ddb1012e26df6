"""Request and response models of the catalogue."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from catalog_registry.models import (
    Classification,
    DataType,
    OpenAttribute,
    Sensitivity,
    SharingMethod,
    SharingType,
    UpdateCycle,
)

E = TypeVar("E", bound=StrEnum)

# The Chinese labels departments use in their spreadsheets, beside the API's English values.
LABELS: dict[type[StrEnum], dict[str, str]] = {
    Classification: {
        "基础": "base",
        "基础类": "base",
        "主题": "theme",
        "主题类": "theme",
        "部门": "department",
        "部门类": "department",
    },
    SharingType: {
        "无条件共享": "unconditional",
        "无条件": "unconditional",
        "有条件共享": "conditional",
        "有条件": "conditional",
        "不予共享": "not_shared",
    },
    SharingMethod: {"接口": "api", "API": "api", "文件": "file", "数据库": "database"},
    OpenAttribute: {"无条件开放": "open", "开放": "open", "有条件开放": "conditional", "不予开放": "not_open"},
    UpdateCycle: {
        "实时": "realtime",
        "每天": "daily",
        "每日": "daily",
        "每周": "weekly",
        "每月": "monthly",
        "每季度": "quarterly",
        "每半年": "semiannual",
        "每年": "annual",
    },
    Sensitivity: {"公开": "public", "内部": "internal", "敏感": "sensitive", "涉密": "secret"},
    DataType: {
        "字符型": "string",
        "字符串": "string",
        "整数": "integer",
        "整型": "integer",
        "数值型": "decimal",
        "小数": "decimal",
        "日期型": "date",
        "日期": "date",
        "日期时间型": "datetime",
        "日期时间": "datetime",
        "布尔型": "boolean",
    },
}


def enum_value(enum: type[E], value: Any) -> E:
    """The enum member for an English value or a Chinese label; ValueError listing the allowed values."""
    if isinstance(value, enum):
        return value
    text = str(value).strip()
    text = LABELS.get(enum, {}).get(text, text)
    try:
        return enum(text.lower())
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        labels = ", ".join(LABELS.get(enum, {}))
        raise ValueError(f"{value!r} is not one of: {allowed}" + (f" (or {labels})" if labels else "")) from None


def _enum(enum: type[E]) -> Any:
    return BeforeValidator(lambda v: enum_value(enum, v))


ItemName = Annotated[str, Field(min_length=1, max_length=100)]


class Item(BaseModel):
    """An information item (信息项) of an entry."""

    name: ItemName = Field(description="Item name, e.g. 身份证号")
    data_type: Annotated[DataType, _enum(DataType)] = Field(description="string / integer / decimal / date / datetime / boolean")
    length: int | None = Field(default=None, ge=1, le=100000, description="Maximum length, if any")
    sensitivity: Annotated[Sensitivity, _enum(Sensitivity)] = Field(
        default=Sensitivity.INTERNAL, description="public / internal / sensitive / secret (公开/内部/敏感/涉密)"
    )
    personal: bool = Field(default=False, description="Personal information (个人信息)")

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("item name is empty")
        return value


class ControlParameterIn(BaseModel):
    """A control parameter (管控参数): what a consumer must supply to query."""

    item: str = Field(min_length=1, max_length=100, description="Name of the item it filters on")
    required: bool = True
    max_rows: int | None = Field(default=None, ge=1, le=100000, description="The most rows one query may return")


class ApiDistribution(BaseModel):
    """The provider's own API serving the resource."""

    url: str = Field(max_length=2000, description="http:// or https:// endpoint")
    method: Literal["GET", "POST"] = "GET"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    parameter_schema: dict[str, Any] = Field(default_factory=dict, description="JSON Schema of the query parameters")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.strip()

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


_LOCAL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


class EntryFields(BaseModel):
    """The metadata of an entry (every field of a version)."""

    name: str = Field(min_length=2, max_length=200, description="Resource name, e.g. 户籍人口基本信息")
    classification: Annotated[Classification, _enum(Classification)] = Field(description="base / theme / department")
    abstract: str = Field(min_length=2, max_length=4000)
    format: str = Field(default="数据库表", min_length=1, max_length=50, description="Resource format, e.g. 数据库表, 电子文件")
    items: list[Item] = Field(description="Information items (信息项); at least one")
    sharing_type: Annotated[SharingType, _enum(SharingType)] = Field(description="unconditional / conditional / not_shared")
    conditions: str | None = Field(default=None, max_length=4000, description="Sharing conditions (required if conditional)")
    legal_basis: str | None = Field(default=None, max_length=4000, description="Legal basis (required if not shared)")
    sharing_method: Annotated[SharingMethod, _enum(SharingMethod)] = Field(default=SharingMethod.API)
    control_parameters: list[ControlParameterIn] = Field(default_factory=list)
    open_attribute: Annotated[OpenAttribute, _enum(OpenAttribute)] = Field(default=OpenAttribute.NOT_OPEN)
    update_cycle: Annotated[UpdateCycle, _enum(UpdateCycle)] = Field(description="realtime / daily / weekly / ...")
    related_codes: list[str] = Field(default_factory=list, description="Codes of related resources")
    is_certificate: bool = Field(default=False, description="The resource is an electronic certificate (电子证照)")
    allows_export: bool = Field(default=False, description="Consumers may page through the whole dataset")
    serves_dataset: bool = Field(default=False, description="Served from datasets the provider uploads")
    api: ApiDistribution | None = Field(default=None, description="Served from the provider's own API")
    division_item: str | None = Field(
        default=None,
        max_length=100,
        description="The item holding each row's administrative division (GB/T 2260 code, e.g. 330106); "
        "every dataset row must carry a division the platform knows",
    )
    region_scoped: bool = Field(
        default=False,
        description="数据回流: a grant to a department of a lower-level government than the provider's is "
        "scoped to the consumer's own division and those below it (requires division_item)",
    )

    @field_validator("division_item")
    @classmethod
    def _division_item(cls, value: str | None) -> str | None:
        return (value or "").strip() or None


# Data types an item holding a GB/T 2260 code may have (a code is six digits).
DIVISION_ITEM_TYPES = (DataType.STRING, DataType.INTEGER)


def division_item_problems(fields: EntryFields) -> list[tuple[str, str]]:
    """The rules of an entry's division item (数据回流), as (field, message) pairs."""
    problems: list[tuple[str, str]] = []
    if fields.region_scoped and not fields.division_item:
        problems.append(
            (
                "division_item",
                "a region-scoped (数据回流) entry must name its division item: the information item that holds "
                "each row's administrative division code (GB/T 2260)",
            )
        )
    if fields.division_item:
        item = next((i for i in fields.items if i.name == fields.division_item), None)
        if item is None:
            problems.append(("division_item", f"division item {fields.division_item!r} names no information item"))
        elif item.data_type not in DIVISION_ITEM_TYPES:
            problems.append(
                (
                    "division_item",
                    f"division item {item.name!r} is a {item.data_type.value} item; a GB/T 2260 code is a string "
                    "(or integer) item of six digits",
                )
            )
        elif item.length is not None and item.length < 6:
            problems.append(
                ("division_item", f"division item {item.name!r} holds at most {item.length} characters; a code has 6")
            )
    return problems


def entry_problems(fields: EntryFields) -> list[tuple[str, str]]:
    """The cross-field rules of an entry, as (field, message) pairs."""
    problems: list[tuple[str, str]] = []
    if not fields.items:
        problems.append(("items", "an entry needs at least one information item"))
    names = [i.name for i in fields.items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(("items", f"duplicate item names: {', '.join(duplicates)}"))
    if fields.sharing_type == SharingType.CONDITIONAL and not (fields.conditions or "").strip():
        problems.append(("conditions", "a conditional (有条件共享) entry must state its sharing conditions"))
    if fields.sharing_type == SharingType.NOT_SHARED and not (fields.legal_basis or "").strip():
        problems.append(("legal_basis", "a not-shared (不予共享) entry must state its legal basis"))
    seen: set[str] = set()
    for param in fields.control_parameters:
        if param.item not in names:
            problems.append(("control_parameters", f"control parameter {param.item!r} names no information item"))
        if param.item in seen:
            problems.append(("control_parameters", f"control parameter {param.item!r} is given twice"))
        seen.add(param.item)
    problems.extend(division_item_problems(fields))
    return problems


class EntryCreate(EntryFields):
    code: str = Field(description="The provider's own code of the resource; the hub prefixes the provider's code")
    provider_department_id: str | None = Field(
        default=None, description="Provider department (platform administrators only; others register their own)"
    )

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        value = value.strip()
        if not _LOCAL_CODE.match(value) and not re.match(r"^[0-9A-Z]{18}-[A-Za-z0-9][A-Za-z0-9._-]{0,39}$", value):
            raise ValueError("letters, digits, '.', '_' or '-', at most 40 characters")
        return value


class EntryUpdate(EntryFields):
    """A full replacement of an editable version's metadata."""


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    number: int
    state: str
    name: str
    classification: str
    abstract: str
    format: str
    items: list[dict[str, Any]]
    sharing_type: str
    conditions: str | None
    legal_basis: str | None
    sharing_method: str
    control_parameters: list[dict[str, Any]]
    open_attribute: str
    update_cycle: str
    related_codes: list[str]
    is_certificate: bool
    allows_export: bool
    serves_dataset: bool
    api: dict[str, Any] | None
    division_item: str | None
    region_scoped: bool
    created_by: str
    created_at: datetime
    submitted_at: datetime | None
    reviewed_at: datetime | None
    return_reason: str | None
    published_at: datetime | None
    version: int = Field(description="Row version for If-Match")


class EntryRead(BaseModel):
    id: str
    code: str
    provider_department_id: str
    provider_name: str
    state: str
    current_version_id: str | None
    has_dataset: bool
    retired_at: datetime | None
    retired_reason: str | None
    created_at: datetime
    version: VersionRead = Field(description="The version shown: the published one, or the provider's latest")


class ReviewDecision(BaseModel):
    decision: Literal["publish", "return"]
    reason: str | None = Field(default=None, max_length=1000, description="Required when returning")


class RetireRequest(BaseModel):
    reason: str = Field(min_length=2, max_length=500)


class DatasetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    entry_id: str
    number: int
    state: str
    media_type: str
    object_key: str
    size: int
    row_count: int
    columns: list[str]
    key_items: list[str]
    division_item: str | None
    created_at: datetime
    rows_added: int = Field(default=0, description="rows added since the version it replaced (by key)")
    rows_changed: int = Field(default=0, description="rows changed since the version it replaced (by key)")
    rows_removed: int = Field(default=0, description="rows removed since the version it replaced (by key)")


class SearchHit(BaseModel):
    id: str
    code: str
    name: str
    abstract: str
    provider_department_id: str
    provider_name: str
    sharing_type: str
    classification: str
    update_cycle: str
    is_certificate: bool
    version_id: str
    published_at: datetime | None
    name_match: bool


class DemandCreate(BaseModel):
    title: str = Field(min_length=2, max_length=200, description="What data is wanted")
    description: str = Field(default="", max_length=4000)
    purpose: str = Field(min_length=2, max_length=1000, description="Why (用途 / 应用场景)")
    items_wanted: list[str] = Field(default_factory=list, max_length=200)
    target_department_id: str | None = Field(default=None, description="The department believed to hold it")


class DemandAnswer(BaseModel):
    entry_id: str = Field(description="An entry of the answering department (existing, or new and still in draft)")
    note: str | None = Field(default=None, max_length=1000)


class DemandDecline(BaseModel):
    reason: str = Field(min_length=2, max_length=1000)


class DemandRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    consumer_department_id: str
    target_department_id: str | None
    title: str
    description: str
    purpose: str
    items_wanted: list[str]
    state: str
    answered_by_department_id: str | None
    entry_id: str | None
    answer_note: str | None
    decline_reason: str | None
    answered_at: datetime | None
    created_at: datetime
    version: int


class ResponsibilityEntry(BaseModel):
    id: str
    code: str
    name: str
    sharing_type: str
    conditions: str | None
    legal_basis: str | None
    update_cycle: str
    is_certificate: bool
    published_at: datetime | None


class ResponsibilityList(BaseModel):
    """共享责任清单 of one department."""

    department_id: str
    department_name: str
    department_code: str
    totals: dict[str, int]
    entries: list[ResponsibilityEntry]


class ImportResult(BaseModel):
    created: int
    entry_ids: list[str]
