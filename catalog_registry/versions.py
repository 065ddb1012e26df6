"""Dataset versions: each upload is a new version of an entry's dataset; the catalogue keeps every version's
rows and, for each version after the first, its change set against the one it replaced, by lookup key:
rows added, changed (the new row) and removed (the old row).

The change set is written in the upload's transaction (it is the outbox the exchange takes change events
from: `pending_change_sets`, `take_change_set`); a version is served by number (`served_version`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.models import Dataset, DatasetState
from ops.errors import HubError, NotFound

SCAN_BATCH = 5000
CHANGE_BATCH = 2000
# The rows of each entry's newest VERSIONS_KEPT dataset versions are kept for lookups and exports by
# version; older versions' rows are dropped by the job `catalog.archive_versions` (their files stay in
# object storage, their change sets in the database).
VERSIONS_KEPT = 5
ARCHIVE_BATCH = 20_000


class VersionNotCovered(HubError):
    status, code, title = 403, "version_not_covered", "Version not covered by the grant"


@dataclass(frozen=True)
class ChangeCounts:
    added: int
    changed: int
    removed: int


@dataclass(frozen=True)
class ChangeSetView:
    """A version's change set, as the exchange takes it into its outbox."""

    resource_id: str
    dataset_id: str
    number: int
    size: int  # the last seq
    added: int
    changed: int
    removed: int


@dataclass(frozen=True)
class ChangeView:
    seq: int
    op: str
    data: dict[str, Any]


def _keyed(db: Session, dataset_id: str) -> Iterator[tuple[str, list[str]]]:
    """(lookup key, its rows as JSON text in row order), in key order, read in batches."""
    after: tuple[str, int] | None = None
    key: str | None = None
    group: list[str] = []
    while True:
        batch = repository.keyed_rows_text(db, dataset_id, after=after, limit=SCAN_BATCH)
        for k, number, text in batch:
            if k != key:
                if key is not None:
                    yield key, group
                key, group = k, []
            group.append(text)
            after = (k, number)
        if len(batch) < SCAN_BATCH:
            break
    if key is not None:
        yield key, group


class _Writer:
    def __init__(self, db: Session, dataset_id: str) -> None:
        self.db, self.dataset_id = db, dataset_id
        self.batch: list[tuple[str, int, str, str | None, str]] = []
        self.seq = 0
        self.counts: Counter[str] = Counter()

    def add(self, op: str, key: str | None, text: str) -> None:
        self.seq += 1
        self.counts[op] += 1
        self.batch.append((self.dataset_id, self.seq, op, key, text))
        if len(self.batch) >= CHANGE_BATCH:
            self.flush()

    def flush(self) -> None:
        repository.insert_changes(self.db, self.batch)
        self.batch = []


def _same(a: str, b: str) -> bool:
    return a == b or json.loads(a) == json.loads(b)


def _diff_keyed(db: Session, writer: _Writer, old_id: str, new_id: str) -> None:
    """Merge both versions in key order: a key's rows paired in row order; extra new rows added, extra old removed."""
    old, new = _keyed(db, old_id), _keyed(db, new_id)
    o, n = next(old, None), next(new, None)
    while o is not None or n is not None:
        if n is None or (o is not None and o[0] < n[0]):
            assert o is not None
            for text in o[1]:
                writer.add("removed", o[0], text)
            o = next(old, None)
        elif o is None or n[0] < o[0]:
            for text in n[1]:
                writer.add("added", n[0], text)
            n = next(new, None)
        else:
            key, before, after = n[0], o[1], n[1]
            for a, b in zip(before, after, strict=False):
                if not _same(a, b):
                    writer.add("changed", key, b)
            for b in after[len(before) :]:
                writer.add("added", key, b)
            for a in before[len(after) :]:
                writer.add("removed", key, a)
            o, n = next(old, None), next(new, None)


def _rows(db: Session, dataset_id: str) -> Iterator[tuple[str | None, str]]:
    after = 0
    while True:
        batch = repository.rows_text(db, dataset_id, after=after, limit=SCAN_BATCH)
        for number, key, text in batch:
            yield key, text
            after = number
        if len(batch) < SCAN_BATCH:
            return


def _diff_whole_rows(db: Session, writer: _Writer, old_id: str, new_id: str) -> None:
    """Without comparable keys (no control parameters, or other ones): rows compared whole, added or removed."""
    before: Counter[str] = Counter(json.dumps(json.loads(t), sort_keys=True) for _, t in _rows(db, old_id))
    for key, text in _rows(db, new_id):
        norm = json.dumps(json.loads(text), sort_keys=True)
        if before[norm] > 0:
            before[norm] -= 1
        else:
            writer.add("added", key, text)
    for norm, count in before.items():
        for _ in range(count):
            writer.add("removed", None, norm)


def record_change_set(db: Session, *, previous: Dataset, dataset: Dataset) -> ChangeCounts:
    """Write the change set of `dataset` against `previous` (in the upload's transaction)."""
    writer = _Writer(db, dataset.id)
    if dataset.key_items and list(previous.key_items) == list(dataset.key_items):
        _diff_keyed(db, writer, previous.id, dataset.id)
    else:
        _diff_whole_rows(db, writer, previous.id, dataset.id)
    writer.flush()
    counts = ChangeCounts(writer.counts["added"], writer.counts["changed"], writer.counts["removed"])
    dataset.previous_id = previous.id
    dataset.rows_added, dataset.rows_changed, dataset.rows_removed = counts.added, counts.changed, counts.removed
    dataset.changes_state = "pending"
    return counts


def pending_change_sets(db: Session, *, limit: int = 20) -> list[ChangeSetView]:
    """Versions whose change set the exchange has not taken yet, oldest first."""
    return [
        ChangeSetView(
            resource_id=d.entry_id,
            dataset_id=d.id,
            number=d.number,
            size=d.rows_added + d.rows_changed + d.rows_removed,
            added=d.rows_added,
            changed=d.rows_changed,
            removed=d.rows_removed,
        )
        for d in repository.datasets_with_pending_changes(db, limit=limit)
    ]


def take_change_set(db: Session, *, dataset_id: str) -> None:
    """Mark a version's change set taken (in the transaction that wrote the exchange's events for it)."""
    dataset = repository.dataset_by_id(db, dataset_id)
    if dataset is not None:
        dataset.changes_state = "taken"
        db.flush()


def changes(db: Session, *, dataset_id: str, after: int, upto: int, limit: int) -> list[ChangeView]:
    """A version's changes with after < seq <= upto, in order."""
    return [ChangeView(c.seq, c.op, c.data) for c in repository.changes_page(db, dataset_id, after=after, upto=upto, limit=limit)]


def served_version(
    db: Session, served: repository.ServedDataset, *, resource_id: str, number: int, since: datetime | None
) -> repository.ServedDataset:
    """The entry's dataset version `number` in place of the current one; `since`: the moment a grant was
    issued, which covers the version then served and every later one (403 `version_not_covered` otherwise)."""
    dataset = repository.dataset_by_number(db, resource_id, number)
    if dataset is None:
        raise NotFound(f"catalogue entry {served.code} has no dataset version {number}")
    if dataset.state == DatasetState.ARCHIVED:
        raise NotFound(
            f"the rows of dataset version {number} of catalogue entry {served.code} are no longer kept: the hub keeps "
            f"the newest {VERSIONS_KEPT} versions (its file stays in object storage)"
        )
    if since is not None:
        first = repository.dataset_current_at(db, resource_id, since)
        if first is not None and number < first.number:
            raise VersionNotCovered(
                f"the grant covers dataset versions {first.number} and later (the one served when it was issued); "
                f"version {number} is older",
                extra={"first_version": first.number},
            )
    return replace(served, dataset_id=dataset.id, key_items=list(dataset.key_items))


def archive_versions(db: Session, *, kept: int = VERSIONS_KEPT, batch: int = ARCHIVE_BATCH) -> int:
    """Drop the rows of dataset versions older than each entry's newest `kept` (a batch per run, so that no
    run holds the database long); a version whose rows are all gone is archived. Returns the rows dropped."""
    dropped = 0
    for dataset in repository.versions_beyond(db, kept=kept, limit=10):
        room = batch - dropped
        gone = repository.delete_rows_batch(db, dataset.id, limit=room)
        dropped += gone
        if gone == room:
            break  # maybe more rows: the next run goes on
        dataset.state = DatasetState.ARCHIVED
    db.flush()
    return dropped
