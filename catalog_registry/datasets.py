"""Datasets of an entry: a CSV or JSON Lines file checked against the entry's information items, loaded in
batches and keyed by its control parameters for lookups."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.common import _own
from catalog_registry.models import Dataset, DatasetState, EntryState, EntryVersion
from catalog_registry.regions import DivisionCheck, division_code
from catalog_registry.schemas import DatasetRead
from catalog_registry.sharing import _refuse_classified, _text, classified_items, row_key
from catalog_registry.versions import record_change_set
from ops import audit
from ops.auth import Principal
from ops.errors import Conflict, Invalid
from ops.metrics import CATALOGUE_EVENTS
from ops.storage import ObjectStore

ROW_BATCH = 2000
MAX_REPORTED_ERRORS = 50


class _ChunkReader(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks (no copy of the whole object)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._view:
            try:
                self._view = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._view))
        buffer[:n] = self._view[:n]
        self._view = self._view[n:]
        return n


def text_lines(chunks: Iterable[bytes]) -> io.TextIOWrapper:
    """A UTF-8 text stream (BOM dropped) over byte chunks, read lazily."""
    return _text_stream(iter(chunks))


def _text_stream(chunks: Iterator[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BufferedReader(_ChunkReader(chunks), buffer_size=256 * 1024), encoding="utf-8-sig", newline="")


_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE = {"true", "1", "是", "yes", "y"}
_FALSE = {"false", "0", "否", "no", "n"}


def _convert(item: dict[str, Any], raw: Any) -> tuple[Any, str | None]:
    """A cell's value in the item's type, or an error message."""
    if raw is None:
        return None, None
    if not isinstance(raw, str):
        if isinstance(raw, (dict, list)):
            return None, "must be a single value"
        raw_text = _text(raw)
    else:
        raw_text = raw.strip()
        if raw_text == "":
            return None, None
    kind = item["data_type"]
    length = item.get("length")
    if length and len(raw_text) > length:
        return None, f"longer than {length} characters"
    try:
        if kind == "integer":
            if isinstance(raw, bool) or not _INTEGER.match(raw_text):
                return None, f"{raw_text!r} is not an integer"
            return int(raw_text), None
        if kind == "decimal":
            float(raw_text)
            return raw if isinstance(raw, (int, float)) else raw_text, None
        if kind == "date":
            date.fromisoformat(raw_text)
        elif kind == "datetime":
            datetime.fromisoformat(raw_text)
        elif kind == "boolean":
            if raw_text.lower() in _TRUE:
                return True, None
            if raw_text.lower() in _FALSE:
                return False, None
            return None, f"{raw_text!r} is not a yes/no value"
    except ValueError:
        return None, f"{raw_text!r} is not a valid {kind}"
    return raw_text if isinstance(raw, str) else raw, None


def _key_items(version: EntryVersion) -> list[str]:
    return [p["item"] for p in version.control_parameters if p.get("required")]


@dataclass
class _Loader:
    db: Session
    dataset_id: str
    items: dict[str, dict[str, Any]]
    key_items: list[str]
    division_item: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    batch: list[tuple[str, int, str | None, str | None, str]] = field(default_factory=list)
    count: int = 0
    divisions: DivisionCheck | None = None

    def error(self, line: int, column: str, message: str) -> None:
        self.errors.append({"field": f"line {line}: {column}", "line": line, "column": column, "message": message})

    def add(self, line: int, record: dict[str, Any]) -> None:
        data: dict[str, Any] = {}
        for name, item in self.items.items():
            value, problem = _convert(item, record.get(name))
            if problem:
                self.error(line, name, problem)
            data[name] = value
        for name in self.key_items:
            if data.get(name) in (None, ""):
                self.error(line, name, "a control parameter's value is required in every row")
        region: str | None = None
        if self.division_item is not None and self.divisions is not None:
            region = division_code(data.get(self.division_item))
            problem = self.divisions.problem(region)
            if problem:
                self.error(line, self.division_item, problem)
        if self.errors:
            return
        self.count += 1
        key = row_key(self.key_items, data)
        self.batch.append((self.dataset_id, self.count, key, region, json.dumps(data, ensure_ascii=False)))
        if len(self.batch) >= ROW_BATCH:
            self.flush()

    def flush(self) -> None:
        repository.insert_rows(self.db, self.batch)
        self.batch = []

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_REPORTED_ERRORS


def _columns_problem(columns: list[str], items: list[str]) -> Invalid | None:
    missing = [i for i in items if i not in columns]
    unexpected = [c for c in columns if c not in items]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if not (missing or unexpected or duplicated):
        return None
    errors = [{"field": "columns", "message": f"missing item column {m}"} for m in missing]
    errors += [{"field": "columns", "message": f"column {u} is not an information item"} for u in unexpected]
    errors += [{"field": "columns", "message": f"column {d} appears twice"} for d in duplicated]
    parts = []
    if missing:
        parts.append("missing: " + ", ".join(missing))
    if unexpected:
        parts.append("not items: " + ", ".join(unexpected))
    if duplicated:
        parts.append("repeated: " + ", ".join(duplicated))
    return Invalid(
        "the dataset's columns do not match the entry's information items (" + "; ".join(parts) + ")",
        errors=errors,
        extra={"missing": missing, "unexpected": unexpected, "duplicated": duplicated},
    )


def _load_csv(loader: _Loader, text: io.TextIOWrapper, item_names: list[str]) -> list[str]:
    reader = csv.reader(text)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise Invalid(
            "the dataset is empty: a header line naming the items is required", errors=[{"field": "file", "message": "empty"}]
        ) from None
    problem = _columns_problem(header, item_names)
    if problem:
        raise problem
    for line, row in enumerate(reader, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            loader.error(line, "*", f"has {len(row)} fields, the header has {len(header)}")
        else:
            loader.add(line, dict(zip(header, row, strict=True)))
        if loader.full:
            break
    return header


def _load_jsonl(loader: _Loader, text: io.TextIOWrapper, item_names: list[str]) -> list[str]:
    for line, raw in enumerate(text, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            loader.error(line, "*", f"not valid JSON: {exc.msg}")
            record = None
        if record is not None and not isinstance(record, dict):
            loader.error(line, "*", "each line must be a JSON object")
        elif isinstance(record, dict):
            keys = list(record)
            if set(keys) != set(item_names):
                problem = _columns_problem(keys, item_names)
                assert problem is not None
                if line == 1:
                    raise problem
                loader.error(line, "*", problem.detail)
            else:
                loader.add(line, record)
        if loader.full:
            break
    return item_names


def media_type_of(content_type: str | None, filename: str | None) -> str:
    """text/csv or application/x-ndjson, from the declared type or the file name."""
    declared = (content_type or "").split(";")[0].strip().lower()
    name = (filename or "").lower()
    if declared in ("text/csv", "application/csv") or name.endswith(".csv"):
        return "text/csv"
    if declared in ("application/x-ndjson", "application/jsonl", "application/jsonlines") or name.endswith((".jsonl", ".ndjson")):
        return "application/x-ndjson"
    raise Invalid(
        "upload a CSV (.csv, text/csv) or JSON Lines (.jsonl, application/x-ndjson) file",
        errors=[{"field": "file", "message": "unsupported format"}],
    )


def upload_dataset(
    db: Session,
    *,
    who: Principal,
    storage: ObjectStore,
    entry_id: str,
    chunks: Iterable[bytes],
    media_type: str,
    max_bytes: int | None = None,
) -> Dataset:
    """Store a new dataset version of an entry and load its rows (streamed, in batches); the previous one is
    replaced, its rows kept, and the new version's change set against it recorded."""
    entry = _own(db, who, entry_id)
    if entry.state == EntryState.RETIRED:
        raise Conflict(f"catalogue entry {entry.code} is retired")
    version = repository.latest_version(db, entry.id)
    assert version is not None
    if not version.serves_dataset:
        raise Conflict("the entry is not served from datasets (serves_dataset is false in its latest version)")
    current = repository.version_by_id(db, entry.current_version_id) if entry.current_version_id else None
    secret = list(dict.fromkeys(classified_items([*version.items, *(current.items if current else [])])))
    if secret:
        raise _refuse_classified(entry.code, secret, "classified data never enters the sharing platform, so no dataset is loaded")
    stored = storage.put(chunks, max_bytes=max_bytes)
    dataset = Dataset(
        entry_id=entry.id,
        number=repository.next_dataset_number(db, entry.id),
        state=DatasetState.LOADED,
        media_type=media_type,
        object_key=stored.key,
        size=stored.size,
        columns=[],
        key_items=_key_items(version),
        division_item=version.division_item,
        uploaded_by=who.subject,
    )
    db.add(dataset)
    db.flush()
    items = {i["name"]: i for i in version.items}
    loader = _Loader(db, dataset.id, items, list(dataset.key_items), version.division_item)
    loader.divisions = DivisionCheck(db) if version.division_item else None
    text = _text_stream(iter(storage.open(stored.key)))
    try:
        load = _load_csv if media_type == "text/csv" else _load_jsonl
        columns = load(loader, text, list(items))
    except UnicodeDecodeError:
        raise Invalid(
            "the file is not UTF-8 text; save it as CSV UTF-8", errors=[{"field": "file", "message": "not UTF-8"}]
        ) from None
    except csv.Error as exc:
        raise Invalid(f"the CSV cannot be read: {exc}", errors=[{"field": "file", "message": str(exc)}]) from None
    if loader.errors:
        more = " (first errors only)" if loader.full else ""
        raise Invalid(
            f"{len(loader.errors)} problem(s) in the dataset{more}; nothing was loaded. First: "
            f"{loader.errors[0]['field']}: {loader.errors[0]['message']}",
            errors=loader.errors,
        )
    loader.flush()
    dataset.columns = columns
    dataset.row_count = loader.count
    if entry.current_dataset_id:
        previous = repository.dataset_by_id(db, entry.current_dataset_id)
        if previous is not None:
            previous.state = DatasetState.REPLACED  # its rows stay: a grant may read any version it covers
            db.flush()
            record_change_set(db, previous=previous, dataset=dataset)
    entry.current_dataset_id = dataset.id
    db.flush()
    audit.record(
        db,
        actor=who,
        action="catalog.dataset.upload",
        object_type="catalog_entry",
        object_id=entry.id,
        detail={
            "dataset_id": dataset.id,
            "number": dataset.number,
            "rows": dataset.row_count,
            "sha256": stored.key,
            "changes": {"added": dataset.rows_added, "changed": dataset.rows_changed, "removed": dataset.rows_removed},
        },
    )
    CATALOGUE_EVENTS.labels(event="dataset_loaded").inc()
    return dataset


def _rekey(db: Session, dataset_id: str, key_items: list[str], division_item: str | None = None) -> None:
    """Recompute the lookup keys of a dataset when the published control parameters changed, and its rows'
    division codes when the published division item changed (a value that is no division the platform knows
    is kept as no code: such a row lies within no division scope)."""
    dataset = repository.dataset_by_id(db, dataset_id)
    if dataset is None:
        return
    new_keys = list(dataset.key_items) != key_items
    new_division = dataset.division_item != division_item
    if not (new_keys or new_division):
        return
    check = DivisionCheck(db)
    after = 0
    while True:
        rows = repository.rows_page(db, dataset_id, after=after, limit=ROW_BATCH)
        if not rows:
            break
        if new_keys:
            keys = [{"b_row": r.row_number, "b_key": row_key(key_items, r.data)} for r in rows]
            repository.set_lookup_keys(db, dataset_id, keys)
        if new_division:
            codes = [
                {"b_row": r.row_number, "b_code": _known_code(check, r.data.get(division_item)) if division_item else None}
                for r in rows
            ]
            repository.set_region_codes(db, dataset_id, codes)
        after = rows[-1].row_number
    dataset.key_items = key_items
    dataset.division_item = division_item
    db.flush()


def _known_code(check: DivisionCheck, value: Any) -> str | None:
    code = division_code(value)
    return None if check.problem(code) else code


def list_datasets(db: Session, *, who: Principal, entry_id: str) -> list[DatasetRead]:
    """The dataset versions of an entry (provider and platform only)."""
    entry = _own(db, who, entry_id)
    return [DatasetRead.model_validate(d) for d in repository.datasets_of(db, entry.id)]
