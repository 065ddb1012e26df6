"""Bulk issuance (归集): many rows from a JSON Lines or CSV file, checked one by one, signed and written in chunks."""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from certhub import repository
from certhub.issuance import (
    Checked,
    IssueContext,
    check_replay,
    check_request,
    first_version,
    issue,
    issue_trail,
    request_hash,
    signed_values,
)
from certhub.models import (
    CertificateType,
)
from certhub.schemas import (
    BulkReport,
    BulkRowError,
    IssueRequest,
)
from ops import audit
from ops.auth import Principal
from ops.db import new_id, utcnow
from ops.errors import HubError
from ops.metrics import CERTIFICATE_EVENTS

BULK_CHUNK = 500  # rows checked, then signed and written together


@dataclass(frozen=True)
class _Pending:
    """A bulk row that passed every check, waiting for its chunk to be signed and written."""

    number: int
    data: IssueRequest
    checked: Checked
    signer: Any
    key: str | None
    digest: str


@dataclass(frozen=True)
class _Signed:
    """A chunk of rows signed and ready to be written: each pending row, its certificate row and its audit record."""

    pending: list[_Pending]
    rows: list[dict[str, Any]]
    trails: list[dict[str, Any]]
    keys: frozenset[str]  # the rows' idempotency keys

    @property
    def positions(self) -> list[int]:
        return [row["status_index"] for row in self.rows]


# (the rows written, the rows the database refused) of one chunk
_Written = tuple[list[tuple[_Pending, dict[str, Any]]], list[BulkRowError]]


def _writes_beside(db: Session) -> bool:
    """Whether a chunk is written by a thread of its own while the next is signed: on PostgreSQL, where the hub
    waits for the server's work on each row. On SQLite a statement is work done in this process (the same core
    time, with the interpreter lock traded between two threads besides)."""
    return db.get_bind().dialect.name == "postgresql"


class _BulkRun:
    """One bulk issuance: rows are checked as they come, and those that pass are signed and written a chunk
    at a time (one multi-row INSERT for the certificates, one for their audit records).

    On PostgreSQL a chunk is written by a writer thread while the next is checked and signed: the chunk's
    serials and status positions are reserved first, then the chunk before it goes to the writer, then this
    one is signed. The session is used by one thread at a time: the run waits for the writer (`_wait`) before
    anything it does with the database, so the writes are those of the rows one after the other, in the
    caller's transaction, each chunk in its savepoint as before.
    """

    def __init__(self, db: Session, *, who: Principal, ctx: IssueContext, progress: Callable[[int, int], None] | None) -> None:
        self.db, self.who, self.ctx, self.progress = db, who, ctx, progress
        self.department_id = who.require_department()
        self.total = 0
        self.issued: dict[int, str] = {}  # row number → identifier (new, or replayed)
        self.replayed: set[int] = set()  # rows whose idempotency key returned an earlier certificate
        self.errors: list[BulkRowError] = []
        self.pending: list[_Pending] = []
        self.pending_keys: set[str] = set()
        # Idempotency keys stored before this run or during it: key → (request hash, identifier).
        self.keys: dict[str, tuple[str | None, str]] = {}
        self.signed: _Signed | None = None  # signed, not handed to the writer yet
        self.writing: Future[_Written] | None = None  # the chunk the writer is writing
        self.writing_keys: frozenset[str] = frozenset()
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-writer") if _writes_beside(db) else None

    def add(self, window: list[tuple[int, dict[str, Any] | str]]) -> None:
        """Check a window of rows, then sign and write the valid ones."""
        parsed: list[tuple[int, IssueRequest, str | None]] = []
        for number, row in window:
            self.total += 1
            if isinstance(row, str):
                self.errors.append(BulkRowError(row=number, message=row))
                continue
            key = row.pop("idempotency_key", None)
            from_csv = bool(row.pop("_csv", False))
            try:
                data = IssueRequest.model_validate(row)
            except ValidationError as exc:
                errs = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
                message = "; ".join(f"{e['field']}: {e['message']}" for e in errs[:5])
                self.errors.append(BulkRowError(row=number, message=message, errors=errs))
                continue
            if from_csv:
                self._wait()  # the type may be read from the database
                data.face = _typed_csv_face(self.ctx.type_by_code(self.db, data.type_code.strip().upper()), data.face)
            parsed.append((number, data, str(key) if key else None))
        self._wait()  # the checks read the database (the idempotency keys, the type, the department, the signer)
        wanted = {key for _, _, key in parsed if key and key not in self.keys}
        if wanted:
            self.keys.update(repository.idempotency_keys(self.db, self.department_id, wanted))
        for number, data, key in parsed:
            try:
                self._check(number, data, key)
            except HubError as exc:
                self.errors.append(BulkRowError(row=number, message=exc.detail, errors=exc.errors))
        self.flush()
        if self.progress:
            self.progress(self.total, len(self.issued))

    def _check(self, number: int, data: IssueRequest, key: str | None) -> None:
        digest = request_hash(data)
        if key is not None and (key in self.pending_keys or key in self.writing_keys or self._signed_key(key)):
            self.settle()  # the earlier row with this key is stored first, as if the rows came one by one
        if key is not None and key in self.keys:
            stored_hash, identifier = self.keys[key]
            check_replay(stored_hash, digest)
            self.issued[number] = identifier
            self.replayed.add(number)
            return
        if data.render_pdf:
            # The sealed PDF and the seal's use record are written with the certificate: a row of its own.
            self.settle()
            with self.db.begin_nested():
                certificate, _ = issue(self.db, who=self.who, ctx=self.ctx, data=data, idempotency_key=key)
            self._stored(number, key, digest, certificate.identifier)
            return
        checked = check_request(self.db, who=self.who, ctx=self.ctx, data=data)
        signer = self.ctx.signer(self.db, checked.department.id)
        self.pending.append(_Pending(number, data, checked, signer, key, digest))
        if key is not None:
            self.pending_keys.add(key)

    def _signed_key(self, key: str) -> bool:
        return self.signed is not None and key in self.signed.keys

    def flush(self) -> None:
        """Sign the pending rows, and write them (with a writer thread: hand the chunk signed before to the writer,
        then sign these; they are written on the next flush or `settle`)."""
        pending, self.pending = self.pending, []
        self.pending_keys.clear()
        if not pending:
            return
        self._wait()
        serials = self._serials(pending)
        indices = repository.status_indices(self.db, len(pending), taken=self.signed.positions if self.signed else ())
        if self.signed is not None:
            self._hand_over()
        public_url = self.ctx.settings.public_url
        rows: list[dict[str, Any]] = []
        trails: list[dict[str, Any]] = []
        for offset, (item, serial) in enumerate(zip(pending, serials, strict=True)):
            draft = first_version(item.checked, item.data, serial=serial, idempotency_key=item.key, digest=item.digest)
            values = signed_values(draft, signer=item.signer, public_url=public_url, index=indices[offset], issued_at=utcnow())
            values.update(id=new_id(), version=1)
            rows.append(values)
            trails.append(
                audit.entry(
                    **issue_trail(
                        self.who, identifier=values["identifier"], holder_code=draft.holder_code, type_code=draft.type_code
                    )
                )
            )
        self.signed = _Signed(pending, rows, trails, frozenset(item.key for item in pending if item.key is not None))
        if self.writer is None:
            self._hand_over()
            self._wait()

    def settle(self) -> None:
        """Every row checked so far signed and written, its outcome recorded; the writer idle."""
        self.flush()
        self._wait()
        if self.signed is not None:
            self._hand_over()
            self._wait()

    def _hand_over(self) -> None:
        """The signed chunk to the writer (or written here, without one); the writer must be idle."""
        assert self.writing is None and self.signed is not None
        chunk, self.signed = self.signed, None
        self.writing_keys = chunk.keys
        if self.writer is None:
            done: Future[_Written] = Future()
            done.set_result(self._write_chunk(chunk))
            self.writing = done
        else:
            # in the caller's context (its write intent, its request id), as if written by the caller's thread
            self.writing = self.writer.submit(contextvars.copy_context().run, self._write_chunk, chunk)

    def _wait(self) -> None:
        """Wait for the chunk being written and record its outcome: the session is this thread's again. An error
        other than a row the database refused is raised here."""
        if self.writing is None:
            return
        writing, self.writing = self.writing, None
        self.writing_keys = frozenset()
        written, refused = writing.result()
        self.errors.extend(refused)
        for item, row in written:
            self._stored(item.number, item.key, item.digest, row["identifier"])
        CERTIFICATE_EVENTS.labels(event="issued").inc(len(written))

    def _write_chunk(self, chunk: _Signed) -> _Written:
        """Write a signed chunk; a row the database refuses is reported, the others are kept (in the writer thread:
        only the session, which the run leaves alone meanwhile)."""
        try:
            with self.db.begin_nested():
                self._write(chunk.rows, chunk.trails)
            return list(zip(chunk.pending, chunk.rows, strict=True)), []
        except (IntegrityError, DataError):
            written: list[tuple[_Pending, dict[str, Any]]] = []
            refused: list[BulkRowError] = []
            for item, row, trail in zip(chunk.pending, chunk.rows, chunk.trails, strict=True):
                try:
                    with self.db.begin_nested():
                        self._write([row], [trail])
                except (IntegrityError, DataError) as exc:
                    refused.append(_refused_by_database(item.number, exc))
                else:
                    written.append((item, row))
            return written, refused

    def close(self) -> None:
        """Stop the writer, once what it writes is done (whatever the outcome: the caller then commits or rolls back)."""
        if self.writing is not None:
            self.writing.exception()  # waits; an error was raised already or is the caller's to roll back
            self.writing = None
        if self.writer is not None:
            self.writer.shutdown(wait=True)

    def _serials(self, pending: list[_Pending]) -> list[str]:
        """One block of serials per (type, issuer) series, reserved with one UPDATE each."""
        counts: dict[str, int] = {}
        for item in pending:
            counts[item.checked.serial_counter] = counts.get(item.checked.serial_counter, 0) + 1
        following = {name: repository.allocate(self.db, name, counts[name]) for name in sorted(counts)}
        serials = []
        for item in pending:
            serials.append(f"{following[item.checked.serial_counter]:010d}")
            following[item.checked.serial_counter] += 1
        return serials

    def _write(self, rows: list[dict[str, Any]], trails: list[dict[str, Any]]) -> None:
        repository.insert_certificates(self.db, rows)
        audit.append(self.db, trails)

    def _stored(self, number: int, key: str | None, digest: str, identifier: str) -> None:
        self.issued[number] = identifier
        if key is not None:
            self.keys[key] = (digest, identifier)

    def report(self) -> BulkReport:
        identifiers = [self.issued[n] for n in sorted(self.issued)]
        errors = sorted(self.errors, key=lambda e: e.row)
        return BulkReport(
            total=self.total,
            issued=len(identifiers) - len(self.replayed),
            replayed=len(self.replayed),
            failed=len(errors),
            identifiers=identifiers,
            errors=errors,
        )


def _refused_by_database(number: int, exc: IntegrityError | DataError) -> BulkRowError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    return BulkRowError(
        row=number, message=f"the database refused the certificate: {reason}", errors=[{"field": "row", "message": reason}]
    )


def bulk_issue(
    db: Session,
    *,
    who: Principal,
    ctx: IssueContext,
    rows: Iterable[tuple[int, dict[str, Any] | str]],
    progress: Callable[[int, int], None] | None = None,
) -> BulkReport:
    """Issue every valid row; invalid rows are reported with their number and field, none half-issued.

    `rows` yields (row number, parsed row or a message why the row could not be read). Rows are checked
    one by one with the rules of `issue`; the valid ones are signed and written a chunk at a time, so a row
    refused by a check never reaches the database, and a row the database refuses is reported alone.
    """
    run = _BulkRun(db, who=who, ctx=replace(ctx, bulk=True), progress=progress)
    try:
        source = iter(rows)
        while window := list(islice(source, BULK_CHUNK)):
            run.add(window)
        run.settle()
    finally:
        run.close()
    report = run.report()
    audit.record(
        db,
        actor=who,
        action="certificate.bulk_issue",
        object_type="bulk",
        object_id=f"{report.issued}/{report.total}",
        detail={"replayed": report.replayed, "failed": report.failed},
    )
    return report


def _typed_csv_face(ctype: CertificateType | None, face: dict[str, Any]) -> dict[str, Any]:
    """CSV cells are text: turn those the type's schema wants as numbers or booleans into them."""
    if ctype is None:
        return face
    properties = ctype.face_schema.get("properties", {})
    typed = dict(face)
    for name, value in face.items():
        wanted = properties.get(name, {}).get("type")
        if not isinstance(value, str):
            continue
        try:
            if wanted == "integer":
                typed[name] = int(value)
            elif wanted == "number":
                typed[name] = float(value)
            elif wanted == "boolean" and value.lower() in ("true", "false", "是", "否"):
                typed[name] = value.lower() in ("true", "是")
        except ValueError:
            pass  # left as text: the schema check names the field
    return typed


def parse_rows(
    lines: Iterator[str], *, fmt: str, type_code: str | None = None, render_pdf: bool = False
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Rows of a JSON Lines or CSV file as issue requests.

    CSV columns: holder_code, holder_kind, holder_name, number, valid_from, valid_until, idempotency_key,
    and one column per face field (`face.<name>` or the bare name); `type_code` may be a column or given.
    """
    import csv

    if fmt == "jsonl":
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON: {exc.msg} at column {exc.colno}"
                continue
            if not isinstance(row, dict):
                yield number, "each line must be a JSON object"
                continue
            if type_code and "type_code" not in row:
                row["type_code"] = type_code
            row.setdefault("render_pdf", render_pdf)
            yield number, row
        return
    reader = csv.DictReader(lines)
    plain = {"holder_code", "holder_kind", "holder_name", "number", "valid_from", "valid_until", "idempotency_key", "type_code"}
    for number, record in enumerate(reader, start=2):
        if None in record:
            yield number, "the row has more cells than the header"
            continue
        face = {k.removeprefix("face."): v for k, v in record.items() if k not in plain and v not in (None, "")}
        parsed: dict[str, Any] = {
            "type_code": record.get("type_code") or type_code or "",
            "holder": {
                "code": record.get("holder_code") or "",
                "kind": record.get("holder_kind") or "person",
                "name": record.get("holder_name") or "",
            },
            "face": face,
            "render_pdf": render_pdf,
            "_csv": True,
        }
        for optional in ("number", "valid_from", "valid_until", "idempotency_key"):
            if record.get(optional):
                parsed[optional] = record[optional]
        yield number, parsed
