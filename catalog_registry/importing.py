"""Import of catalogue entries from the departments' spreadsheet template (CSV): every row is checked first,
then the entries are created in batches."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.datasets import _FALSE, _TRUE
from catalog_registry.entries import _version_values, entry_rules, full_code
from catalog_registry.models import CatalogEntry, EntryState, EntryVersion, VersionState
from catalog_registry.schemas import EntryCreate
from catalog_registry.search import index_many
from ops import audit
from ops.auth import Principal
from ops.db import new_id, utcnow
from ops.errors import Forbidden, Invalid
from ops.metrics import CATALOGUE_EVENTS

# Column of the template (as departments keep it) → field of an entry. English field names work too.
IMPORT_COLUMNS: dict[str, str] = {
    "资源代码": "code",
    "资源名称": "name",
    "资源分类": "classification",
    "资源摘要": "abstract",
    "资源格式": "format",
    "信息项": "items",
    "共享类型": "sharing_type",
    "共享条件": "conditions",
    "不予共享依据": "legal_basis",
    "共享方式": "sharing_method",
    "管控参数": "control_parameters",
    "开放属性": "open_attribute",
    "更新周期": "update_cycle",
    "关联资源": "related_codes",
    "是否电子证照": "is_certificate",
    "允许导出": "allows_export",
    "数据集提供": "serves_dataset",
    "接口地址": "api_url",
    "接口方法": "api_method",
    "接口超时秒": "api_timeout_seconds",
    "提供部门代码": "provider_code",
}
REQUIRED_IMPORT_FIELDS = ("code", "name", "classification", "abstract", "items", "sharing_type", "update_cycle")
_LIST_SPLIT = re.compile(r"[;；\n]")
IMPORT_BATCH = 500


@dataclass
class ImportReport:
    created: int
    entry_ids: list[str]


def _yes(value: str, column: str, problems: list[tuple[str, str]]) -> bool:
    text = value.strip().lower()
    if text in ("", *_FALSE):
        return False
    if text in _TRUE:
        return True
    problems.append((column, f"{value!r} is not 是 or 否"))
    return False


def _parse_items(cell: str, column: str, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """信息项: `名称|类型|长度|分级|是否个人信息` separated by semicolons."""
    items = []
    for n, part in enumerate(p.strip() for p in _LIST_SPLIT.split(cell)):
        if not part:
            continue
        fields = [f.strip() for f in part.split("|")]
        if len(fields) > 5:
            problems.append((column, f"item {n + 1} ({part}) has more than 5 parts: 名称|类型|长度|分级|是否个人信息"))
            continue
        fields += [""] * (5 - len(fields))
        name, data_type, length, sensitivity, personal = fields
        item: dict[str, Any] = {"name": name, "data_type": data_type or "string"}
        if length:
            if not length.isdigit():
                problems.append((column, f"item {name}: length {length!r} is not a number"))
                continue
            item["length"] = int(length)
        if sensitivity:
            item["sensitivity"] = sensitivity
        item["personal"] = _yes(personal, column, problems)
        items.append(item)
    return items


def _parse_params(cell: str, column: str, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """管控参数: `信息项|必填或选填|每次最多行数` separated by semicolons."""
    params = []
    for part in (p.strip() for p in _LIST_SPLIT.split(cell)):
        if not part:
            continue
        fields = [f.strip() for f in part.split("|")] + ["", ""]
        name, required, max_rows = fields[0], fields[1], fields[2]
        if required not in ("", "必填", "选填", "required", "optional"):
            problems.append((column, f"{name}: {required!r} is not 必填 or 选填"))
            continue
        param: dict[str, Any] = {"item": name, "required": required in ("", "必填", "required")}
        if max_rows:
            if not max_rows.isdigit():
                problems.append((column, f"{name}: maximum rows {max_rows!r} is not a number"))
                continue
            param["max_rows"] = int(max_rows)
        params.append(param)
    return params


def _row_body(row: dict[str, str], columns: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """An entry body from one template row, and the problems met (column, message)."""
    problems: list[tuple[str, str]] = []
    value = {field: (row.get(header) or "").strip() for header, field in columns.items()}
    label = {field: header for header, field in columns.items()}
    for name in REQUIRED_IMPORT_FIELDS:
        if not value.get(name):
            problems.append((label.get(name, name), "required"))
    body: dict[str, Any] = {
        k: v
        for k, v in value.items()
        if v
        and k
        not in (
            "items",
            "control_parameters",
            "related_codes",
            "is_certificate",
            "allows_export",
            "serves_dataset",
            "api_url",
            "api_method",
            "api_timeout_seconds",
            "provider_code",
        )
    }
    body["items"] = _parse_items(value.get("items", ""), label.get("items", "items"), problems)
    body["control_parameters"] = _parse_params(
        value.get("control_parameters", ""), label.get("control_parameters", "control_parameters"), problems
    )
    body["related_codes"] = [c.strip() for c in _LIST_SPLIT.split(value.get("related_codes", "")) if c.strip()]
    for flag in ("is_certificate", "allows_export", "serves_dataset"):
        body[flag] = _yes(value.get(flag, ""), label.get(flag, flag), problems)
    if value.get("api_url"):
        api: dict[str, Any] = {"url": value["api_url"], "method": value.get("api_method") or "GET"}
        if value.get("api_timeout_seconds"):
            api["timeout_seconds"] = value["api_timeout_seconds"]
        body["api"] = api
    return body, problems


def _field_column(loc: tuple[Any, ...], label: dict[str, str]) -> str:
    root = str(loc[0]) if loc else "row"
    if root == "api" and len(loc) > 1:
        return label.get(f"api_{loc[1]}", f"api.{loc[1]}")
    return label.get(root, root)


def _template_columns(header: list[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    fields = set(IMPORT_COLUMNS.values())
    columns: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for name in header:
        name = name.strip()
        if name in IMPORT_COLUMNS:
            columns[name] = IMPORT_COLUMNS[name]
        elif name in fields:
            columns[name] = name
        elif name:
            problems.append((name, "not a column of the catalogue template"))
    present = set(columns.values())
    reverse = {v: k for k, v in IMPORT_COLUMNS.items()}
    for field_name in REQUIRED_IMPORT_FIELDS:
        if field_name not in present:
            problems.append((reverse[field_name], "required column is missing"))
    return columns, problems


@dataclass
class _Validated:
    row: int
    provider_id: str
    data: EntryCreate


def _validate_rows(
    db: Session,
    who: Principal,
    rows: Iterable[dict[str, str]],
    columns: dict[str, str],
    on_row: Callable[[_Validated], None],
    progress: Callable[[int], None] | None,
) -> list[dict[str, Any]]:
    """Check every row; hand each valid one to `on_row`; return the problems as {row, field, message}."""
    label = {field: header for header, field in columns.items()}
    errors: list[dict[str, Any]] = []
    providers: dict[str, Any] = {}
    seen: dict[str, int] = {}
    pending: list[tuple[int, str]] = []
    own = None if who.is_platform_admin else repository.department(db, who.require_department())

    def check_existing() -> None:
        taken = repository.existing_codes(db, [c for _, c in pending])
        errors.extend(
            {"row": r, "field": label.get("code", "code"), "message": f"code {c} is already in the catalogue"}
            for r, c in pending
            if c in taken
        )
        pending.clear()

    for number, row in enumerate(rows, start=2):
        body, problems = _row_body(row, columns)
        provider_code = (row.get(label.get("provider_code", "")) or "").strip().upper() if "provider_code" in label else ""
        provider = own
        if who.is_platform_admin:
            if not provider_code:
                problems.append((label.get("provider_code", "提供部门代码"), "required when the platform imports"))
            else:
                if provider_code not in providers:
                    providers[provider_code] = repository.department_by_code(db, provider_code)
                provider = providers[provider_code]
                if provider is None:
                    problems.append((label["provider_code"], f"no department with code {provider_code}"))
        elif provider_code and own is not None and provider_code != own.code:
            problems.append((label["provider_code"], "a department imports only its own catalogue"))
        data: EntryCreate | None = None
        if not any(p[1] == "required" for p in problems):
            try:
                data = EntryCreate.model_validate(body)
            except ValidationError as exc:
                for err in exc.errors():
                    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
                    where = ".".join(str(p) for p in err.get("loc", ()))
                    problems.append((_field_column(tuple(err.get("loc", ())), label), f"{where}: {message}"))
            if data is not None:
                problems += [(label.get(f, f), m) for f, m in entry_rules(data)]
        if data is not None and provider is not None and not problems:
            try:
                code = full_code(provider.code, data.code)
            except Invalid as exc:
                problems.append((label.get("code", "code"), exc.detail))
            else:
                if code in seen:
                    problems.append((label.get("code", "code"), f"code {code} is repeated (first on row {seen[code]})"))
                seen[code] = number
                pending.append((number, code))
                if not problems:
                    on_row(_Validated(number, provider.id, data))
        errors.extend({"row": number, "field": f, "message": m} for f, m in problems)
        if len(pending) >= IMPORT_BATCH:
            check_existing()
        if progress:
            progress(number - 1)
    check_existing()
    errors.sort(key=lambda e: e["row"])
    return errors


def import_entries(
    db: Session,
    *,
    who: Principal,
    open_text: Callable[[], Iterable[str]],
    mode: str = "draft",
    progress: Callable[[str, int], None] | None = None,
) -> ImportReport:
    """Import entries from the CSV template: every row is checked first; any problem → nothing is imported.

    `open_text` opens the file (it is read twice: check, then import). `mode`: draft, submit, or publish
    (publish: the platform loading an already reviewed catalogue).
    """
    if mode not in ("draft", "submit", "publish"):
        raise Invalid("mode is draft, submit or publish", errors=[{"field": "mode", "message": "unknown"}])
    if mode == "publish" and not who.is_platform_admin:
        raise Forbidden("only the platform publishes entries without review")

    def rows() -> tuple[dict[str, str], Iterator[dict[str, str]]]:
        reader = csv.DictReader(iter(open_text()))
        header = list(reader.fieldnames or [])
        columns, problems = _template_columns(header)
        if problems:
            raise Invalid(
                "the file does not follow the catalogue template: " + "; ".join(f"{c}: {m}" for c, m in problems),
                errors=[{"row": 1, "field": c, "message": m} for c, m in problems],
            )
        return columns, iter(reader)

    try:
        columns, first_pass = rows()
        errors = _validate_rows(
            db, who, first_pass, columns, lambda _v: None, (lambda n: progress("checking", n)) if progress else None
        )
    except UnicodeDecodeError:
        raise Invalid(
            "the file is not UTF-8 text; save it as CSV UTF-8", errors=[{"row": 0, "field": "file", "message": "not UTF-8"}]
        ) from None
    except csv.Error as exc:
        raise Invalid(f"the CSV cannot be read: {exc}", errors=[{"row": 0, "field": "file", "message": str(exc)}]) from None
    if errors:
        shown = "; ".join(f"row {e['row']} {e['field']}: {e['message']}" for e in errors[:3])
        raise Invalid(f"{len(errors)} problem(s) in the file; nothing was imported. {shown}", errors=errors[:1000])

    created: list[str] = []
    batch: list[_Validated] = []

    def flush_batch() -> None:
        created.extend(_create_batch(db, who, batch, mode))
        batch.clear()
        if progress:
            progress("importing", len(created))

    def on_row(valid: _Validated) -> None:
        batch.append(valid)
        if len(batch) >= IMPORT_BATCH:
            flush_batch()

    columns, second_pass = rows()
    _validate_rows(db, who, second_pass, columns, on_row, None)
    flush_batch()
    audit.record(
        db,
        actor=who,
        action="catalog.import",
        object_type="catalog_import",
        object_id=f"{len(created)} entries",
        detail={"created": len(created), "mode": mode},
    )
    return ImportReport(created=len(created), entry_ids=created)


def _create_batch(db: Session, who: Principal, batch: list[_Validated], mode: str) -> list[str]:
    if not batch:
        return []
    now = utcnow()
    providers = repository.department_names(db, [v.provider_id for v in batch])
    pairs: list[tuple[CatalogEntry, EntryVersion]] = []
    for valid in batch:
        provider = providers[valid.provider_id]
        entry = CatalogEntry(id=new_id(), code=full_code(provider.code, valid.data.code), provider_department_id=provider.id)
        version = EntryVersion(id=new_id(), entry_id=entry.id, number=1, created_by=who.subject, **_version_values(valid.data))
        version.state = {"draft": VersionState.DRAFT, "submit": VersionState.SUBMITTED, "publish": VersionState.PUBLISHED}[mode]
        entry.state = EntryState.PUBLISHED if mode == "publish" else EntryState.DRAFT
        if mode != "draft":
            version.submitted_at = now
        if mode == "publish":
            version.reviewed_at, version.reviewed_by, version.published_at = now, who.subject, now
            entry.current_version_id = version.id
        pairs.append((entry, version))
    db.add_all([e for e, _ in pairs])
    db.flush()
    db.add_all([v for _, v in pairs])
    db.flush()
    if mode == "publish":
        index_many(db, [(e, v, providers[e.provider_department_id].name) for e, v in pairs])
    action = {"draft": "catalog.entry.import", "submit": "catalog.entry.import_submit", "publish": "catalog.entry.import_publish"}
    audit.append(
        db,
        [
            audit.entry(actor=who, action=action[mode], object_type="catalog_entry", object_id=e.id, detail={"code": e.code})
            for e, _ in pairs
        ],
    )
    CATALOGUE_EVENTS.labels(event="created").inc(len(pairs))
    return [e.id for e, _ in pairs]
