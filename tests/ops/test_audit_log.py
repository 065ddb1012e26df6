"""Scenarios of the tamper-evident audit log: proofs anyone can check, and tampering that verify finds."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from ops import audit
from ops.auditlog import service, tree
from ops.auditlog.models import LogEntry
from ops.storage import LocalStore
from tests.conftest import Hub
from tests.factories import citizen_id

# -- an independent verifier, written from RFC 9162 §2.1.3.2 / §2.1.4.2 and nothing in ops/ --------


def _h(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def rfc9162_inclusion_ok(index: int, size: int, leaf_data: bytes, path: list[bytes], root: bytes) -> bool:
    fn, sn, r = index, size - 1, _h(b"\x00", leaf_data)
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _h(b"\x01", p, r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _h(b"\x01", r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def rfc9162_consistency_ok(m: int, n: int, old: bytes, new: bytes, path: list[bytes]) -> bool:
    if m == n:
        return old == new and not path
    if m & (m - 1) == 0:
        path = [old, *path]
    fn, sn = m - 1, n - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = _h(b"\x01", c, fr), _h(b"\x01", c, sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _h(b"\x01", sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old and sr == new


def signature_ok(checkpoint: dict[str, str], keys: list[dict[str, str]]) -> bool:
    key = next(k for k in keys if k["key_id"] == checkpoint["key_id"])
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    public.verify(base64.b64decode(checkpoint["signature"]), checkpoint["body"].encode())  # raises if wrong
    lines = checkpoint["body"].splitlines()
    return int(lines[1]) == int(checkpoint["tree_size"]) and base64.b64decode(lines[2]).hex() == checkpoint["root_hash"]


# -- helpers -----------------------------------------------------------------------------------------


def _access(db: Session, n: int, *, subject: str | None = None, department_id: str | None = None) -> list[int]:
    """Append `n` data-access audit records (as a department system would)."""
    actor = audit.SystemActor(subject="dept-system", primary_role="department_system", department_id=department_id)
    ids = []
    for i in range(n):
        entry = audit.record(
            db,
            actor=actor,
            action="data.query",
            object_type="grant",
            object_id=f"grant-{i}",
            purpose="办理社保转移",
            subject=subject,
            detail={"rows": i, "fields": ["姓名", "参保状态"]},
        )
        ids.append(entry.id)
    db.commit()
    return ids


def _seal_log(client: TestClient, hub: Hub) -> dict[str, str]:
    response = client.post("/audit/log/checkpoint", headers=hub.admin.headers)
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


APPEND_ONLY = ("audit_records", "audit_log_entries", "audit_log_nodes", "audit_log_checkpoints", "audit_log_timestamps")


@pytest.fixture()
def unlocked(db: Session) -> Iterator[Session]:
    """The test's session with the append-only triggers lifted, as an attacker with database access would."""
    if db.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            db.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    else:
        for table in APPEND_ONLY:
            for verb in ("update", "delete"):
                db.execute(text(f"DROP TRIGGER {table}_no_{verb}"))
    yield db


def cut_tail(db: Session | sqlite3.Connection, keep: int) -> None:
    """Delete every leaf from `keep` on, with its record, the subtrees over it and the checkpoints signing it (and
    their time stamps)."""
    run = db.execute
    ids = [row[0] for row in run(text('SELECT audit_id FROM audit_log_entries WHERE "index" >= :k'), {"k": keep})]
    for audit_id in ids:
        run(text("DELETE FROM audit_records WHERE id = :id"), {"id": audit_id})
    run(text('DELETE FROM audit_log_entries WHERE "index" >= :k'), {"k": keep})
    for level, position in list(run(text("SELECT level, position FROM audit_log_nodes"))):
        if (position + 1) << level > keep:
            run(text("DELETE FROM audit_log_nodes WHERE level = :l AND position = :p"), {"l": level, "p": position})
    cut = "SELECT id FROM audit_log_checkpoints WHERE tree_size > :k"
    run(text(f"DELETE FROM audit_log_timestamps WHERE checkpoint_id IN ({cut})"), {"k": keep})
    run(text("DELETE FROM audit_log_checkpoints WHERE tree_size > :k"), {"k": keep})


# -- scenarios ---------------------------------------------------------------------------------------


def test_a_holder_proves_with_a_few_lines_of_code_that_an_access_to_their_data_is_in_the_signed_log(
    client: TestClient, hub: Hub, db: Session
) -> None:
    person = citizen_id()
    _access(db, 5)
    [mine] = _access(db, 1, subject=person)
    _access(db, 6)
    checkpoint = _seal_log(client, hub)
    holder = hub.holder(person)

    proof = client.get(f"/audit/log/inclusion/{mine}", headers=holder.headers)
    assert proof.status_code == 200, proof.text
    body = proof.json()
    keys = client.get("/audit/log/keys", headers=holder.headers).json()["items"]
    assert signature_ok(body["checkpoint"], keys)
    assert body["tree_size"] == checkpoint["tree_size"]
    assert rfc9162_inclusion_ok(
        body["leaf_index"],
        body["tree_size"],
        body["leaf_data"].encode(),
        [bytes.fromhex(p) for p in body["proof"]],
        bytes.fromhex(body["checkpoint"]["root_hash"]),
    )
    record = json.loads(body["leaf_data"])
    assert record["id"] == mine and record["purpose"] == "办理社保转移"
    # the proof is for exactly this leaf: another record's data does not verify on the same path
    assert not rfc9162_inclusion_ok(
        body["leaf_index"],
        body["tree_size"],
        body["leaf_data"].replace("办理社保转移", "其他用途").encode(),
        [bytes.fromhex(p) for p in body["proof"]],
        bytes.fromhex(body["checkpoint"]["root_hash"]),
    )


def test_every_leaf_of_logs_of_many_sizes_has_a_valid_proof(client: TestClient, hub: Hub, db: Session) -> None:
    ids = _access(db, 1)
    for _ in range(4):
        _seal_log(client, hub)
        ids += _access(db, len(ids) + 1)  # sizes that are and are not powers of two
    final = _seal_log(client, hub)
    size = final["tree_size"]
    root = bytes.fromhex(final["root_hash"])
    entries = {e.audit_id: e.index for e in db.scalars(select(LogEntry))}
    for audit_id in ids:
        body = client.get(f"/audit/log/inclusion/{audit_id}", headers=hub.admin.headers).json()
        assert body["leaf_index"] == entries[audit_id]
        assert rfc9162_inclusion_ok(
            body["leaf_index"], size, body["leaf_data"].encode(), [bytes.fromhex(p) for p in body["proof"]], root
        )


def test_consistency_between_two_checkpoints_verifies_and_a_rewritten_history_does_not(
    client: TestClient, hub: Hub, db: Session
) -> None:
    _access(db, 3)
    first = _seal_log(client, hub)
    _access(db, 10)
    second = _seal_log(client, hub)
    m, n = first["tree_size"], second["tree_size"]
    response = client.get(f"/audit/log/consistency?first={m}&second={n}", headers=hub.admin.headers)
    assert response.status_code == 200, response.text
    path = [bytes.fromhex(p) for p in response.json()["proof"]]
    old, new = bytes.fromhex(first["root_hash"]), bytes.fromhex(second["root_hash"])
    assert rfc9162_consistency_ok(m, n, old, new, path)
    forged_old = hashlib.sha256(b"another history").digest()
    assert not rfc9162_consistency_ok(m, n, forged_old, new, path)


def test_departments_see_proofs_of_their_own_records_only_and_holders_of_records_about_them(
    client: TestClient, hub: Hub, db: Session
) -> None:
    police, health = hub.department("公安局"), hub.department("卫健委")
    police_system, health_system = hub.system(police), hub.system(health)
    person, stranger = citizen_id(), citizen_id(region="310101")
    [police_access] = _access(db, 1, department_id=police.id, subject=person)
    _seal_log(client, hub)

    assert client.get(f"/audit/log/inclusion/{police_access}", headers=police_system.headers).status_code == 200
    other = client.get(f"/audit/log/inclusion/{police_access}", headers=health_system.headers)
    assert other.status_code == 404 and str(police_access) in other.json()["detail"]
    assert client.get(f"/audit/log/inclusion/{police_access}", headers=hub.holder(person).headers).status_code == 200
    assert client.get(f"/audit/log/inclusion/{police_access}", headers=hub.holder(stranger).headers).status_code == 404
    window = hub.actor(police, "window", name="政务服务窗口")
    assert client.get(f"/audit/log/inclusion/{police_access}", headers=window.headers).status_code == 404
    # a holder lists the accesses that concern them, to pick the one to prove
    listed = client.get("/audit/records", headers=hub.holder(person).headers).json()
    assert [r["id"] for r in listed["items"]] == [police_access]
    assert client.get("/audit/records", headers=hub.holder(stranger).headers).json()["items"] == []
    own = client.get("/audit/records?action=data.query", headers=police_system.headers).json()["items"]
    assert [r["id"] for r in own] == [police_access]
    assert client.get(f"/audit/log/inclusion/{police_access}").status_code == 401


def test_a_provider_sees_and_proves_who_queried_its_data(client: TestClient, hub: Hub, db: Session) -> None:
    provider, requester, bystander = hub.department("人社厅"), hub.department("公积金中心"), hub.department("文旅厅")
    actor = audit.SystemActor(subject="gjj-system", primary_role="department_system", department_id=requester.id)
    access = audit.record(
        db,
        actor=actor,
        action="data.query",
        object_type="grant",
        object_id="grant-42",
        purpose="公积金提取核验",
        detail={"provider_department_id": provider.id, "rows": 1},
    )
    db.commit()
    _seal_log(client, hub)
    for department, expected in ((provider, 200), (requester, 200), (bystander, 404)):
        response = client.get(f"/audit/log/inclusion/{access.id}", headers=hub.system(department).headers)
        assert response.status_code == expected, (department.name, response.text)
    listed = client.get("/audit/records?action=data.query", headers=hub.system(provider).headers).json()["items"]
    assert [r["id"] for r in listed] == [access.id]


def test_a_record_not_yet_in_a_checkpoint_gets_a_clear_conflict_and_bad_sizes_are_refused(
    client: TestClient, hub: Hub, db: Session
) -> None:
    assert client.get("/audit/log/checkpoint", headers=hub.admin.headers).status_code in (200, 404)
    _access(db, 2)
    cp = _seal_log(client, hub)
    [late] = _access(db, 1)
    pending = client.get(f"/audit/log/inclusion/{late}", headers=hub.admin.headers)
    assert pending.status_code == 409 and "not in the log yet" in pending.json()["detail"]
    assert pending.headers["retry-after"] == "5"
    service.sequence(db, grace_seconds=0)
    db.commit()
    after = client.get(f"/audit/log/inclusion/{late}", headers=hub.admin.headers)
    assert after.status_code == 409 and "next checkpoint" in after.json()["detail"]

    size = cp["tree_size"]
    for query, field in [
        ("first=0&second=1", "first"),
        ("first=2&second=1", "second"),
        (f"first=1&second={size + 99}", "second"),
    ]:
        refused = client.get(f"/audit/log/consistency?{query}", headers=hub.admin.headers)
        assert refused.status_code == 422, query
        assert refused.json()["errors"][0]["field"] == field
    assert client.get("/audit/log/consistency?first=a&second=2", headers=hub.admin.headers).status_code == 422
    assert client.get("/audit/log/inclusion/999999999", headers=hub.admin.headers).status_code == 404
    assert client.get(f"/audit/log/inclusion/{late}?tree_size=0", headers=hub.admin.headers).status_code == 422
    no_such = client.get(f"/audit/log/inclusion/{late}?tree_size={size + 50}", headers=hub.admin.headers)
    assert no_such.status_code == 404 and "no signed checkpoint" in no_such.json()["detail"]
    system = hub.system()
    assert client.post("/audit/log/checkpoint", headers=system.headers).status_code == 403


def test_proofs_from_stored_subtrees_match_the_rfc_definition_for_every_size_and_leaf() -> None:
    from ops.auditlog import merkle
    from tests.ops import merkle_textbook as textbook

    for size in range(1, 70):
        leaves = [merkle.leaf_hash(f"leaf {i}".encode()) for i in range(size)]
        nodes = {(0, i): h for i, h in enumerate(leaves)}
        level = 1
        while (1 << level) <= size:
            for p in range(size >> level):
                nodes[(level, p)] = merkle.node_hash(nodes[(level - 1, 2 * p)], nodes[(level - 1, 2 * p + 1)])
            level += 1
        assert merkle.range_hash(0, size, nodes) == textbook.root(leaves)
        for index in range(size):
            path = [merkle.range_hash(a, b, nodes) for a, b in merkle.inclusion_ranges(index, 0, size)]
            assert path == textbook.inclusion_proof(index, leaves)
            assert rfc9162_inclusion_ok(index, size, f"leaf {index}".encode(), path, textbook.root(leaves))
            other = f"leaf {(index - 1) % size}".encode()  # the leaf before, or the last one
            assert not rfc9162_inclusion_ok(index, size, other, path, textbook.root(leaves)) or size == 1
        for old in range(1, size + 1):
            proof = [merkle.range_hash(a, b, nodes) for a, b in merkle.consistency_ranges(old, 0, size)]
            assert proof == textbook.consistency_proof(old, leaves)
            assert rfc9162_consistency_ok(old, size, textbook.root(leaves[:old]), textbook.root(leaves), proof)


def test_an_admin_pages_through_the_audit_trail_and_a_forged_cursor_is_refused(client: TestClient, hub: Hub, db: Session) -> None:
    ids = _access(db, 5)
    seen: list[int] = []
    cursor = None
    while True:
        query = "/audit/records?object_type=grant&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query, headers=hub.admin.headers).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    for bad in ("not-a-cursor", "WyJ4Il0"):  # garbage, and a well-formed cursor holding a string
        refused = client.get(f"/audit/records?cursor={bad}", headers=hub.admin.headers)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "cursor"
    assert client.get("/audit/records?limit=0", headers=hub.admin.headers).status_code == 422
    assert client.get("/audit/records?limit=201", headers=hub.admin.headers).status_code == 422


def test_records_younger_than_the_grace_period_wait_their_turn(db: Session) -> None:
    _access(db, 3)
    assert service.sequence(db, grace_seconds=3600) == 0
    assert service.sequence(db, grace_seconds=0) >= 3
    assert service.sequence(db, grace_seconds=0) == 0  # nothing is ever appended twice


def test_verify_passes_on_an_untouched_log(client: TestClient, hub: Hub, db: Session) -> None:
    _access(db, 7)
    _seal_log(client, hub)
    report = service.verify(db)
    assert report.ok, report.problems
    assert report.entries >= 7 and report.checkpoints >= 1


def test_altering_any_stored_field_of_a_record_is_detected(client: TestClient, hub: Hub, unlocked: Session) -> None:
    db = unlocked
    ids = _access(db, 4)
    _seal_log(client, hub)
    db.execute(text("UPDATE audit_records SET purpose = '另有用途' WHERE id = :id"), {"id": ids[1]})
    db.execute(text("UPDATE audit_records SET outcome = 'denied' WHERE id = :id"), {"id": ids[2]})
    db.expire_all()
    report = service.verify(db, grace_seconds=3600)
    altered = {p["audit_id"] for p in report.problems if p["kind"] == "altered"}
    assert altered == {ids[1], ids[2]}
    assert any(p["kind"] == "root_mismatch" for p in report.problems)


def test_a_removed_record_and_a_forged_leaf_hash_are_detected(client: TestClient, hub: Hub, unlocked: Session) -> None:
    db = unlocked
    ids = _access(db, 4)
    _seal_log(client, hub)
    db.execute(text("DELETE FROM audit_records WHERE id = :id"), {"id": ids[0]})
    # rewrite a record and its stored leaf hash together: the signed checkpoint still exposes it
    db.execute(text("UPDATE audit_records SET object_id = 'grant-x' WHERE id = :id"), {"id": ids[3]})
    forged = db.scalars(select(LogEntry).where(LogEntry.audit_id == ids[3])).one()
    record = db.get(audit.AuditRecord, ids[3])
    assert record is not None
    db.refresh(record)
    db.execute(
        text("UPDATE audit_log_entries SET leaf_hash = :h WHERE audit_id = :id"),
        {"h": service.record_leaf_hash(record).hex(), "id": ids[3]},
    )
    db.expire_all()
    report = service.verify(db, grace_seconds=3600)
    kinds = {(p["kind"], p.get("audit_id")) for p in report.problems}
    assert ("removed", ids[0]) in kinds
    assert ("altered", ids[3]) not in kinds  # the forger made the leaf match...
    assert any(
        p["kind"] == "root_mismatch" and p["tree_size"] >= forged.index + 1 for p in report.problems
    )  # ...but not the root


def test_reordered_leaves_are_detected(client: TestClient, hub: Hub, unlocked: Session) -> None:
    db = unlocked
    a, b = _access(db, 2)
    _seal_log(client, hub)
    ia = db.scalars(select(LogEntry.index).where(LogEntry.audit_id == a)).one()
    ib = db.scalars(select(LogEntry.index).where(LogEntry.audit_id == b)).one()
    db.execute(text('UPDATE audit_log_entries SET audit_id = -1 WHERE "index" = :i'), {"i": ia})
    db.execute(text('UPDATE audit_log_entries SET audit_id = :a WHERE "index" = :i'), {"a": a, "i": ib})
    db.execute(text('UPDATE audit_log_entries SET audit_id = :b WHERE "index" = :i'), {"b": b, "i": ia})
    db.expire_all()
    report = service.verify(db, grace_seconds=3600)
    assert {p["audit_id"] for p in report.problems if p["kind"] == "reordered"} == {a, b}


def test_a_record_slipped_in_without_being_logged_is_reported(client: TestClient, hub: Hub, db: Session) -> None:
    _access(db, 2)
    _seal_log(client, hub)
    db.execute(
        text(
            "INSERT INTO audit_records (at, actor, role, action, object_type, object_id, outcome, detail) "
            "VALUES (:at, 'x', 'department_system', 'data.query', 'grant', 'g', 'success', '{}')"
        ),
        {"at": "2026-01-05 00:00:00"},
    )
    report = service.verify(db, grace_seconds=60)
    assert [p["kind"] for p in report.problems] == ["not_in_log"]


def test_a_checkpoint_survives_a_log_key_rotation_and_rewrap(client: TestClient, hub: Hub, db: Session) -> None:
    vault = client.app.state.vault  # type: ignore[attr-defined]
    _access(db, 2)
    before = _seal_log(client, hub)
    service.rotate_log_key(db, vault=vault)
    db.commit()
    _access(db, 1)
    after = _seal_log(client, hub)
    assert before["key_id"] != after["key_id"]
    keys = client.get("/audit/log/keys", headers=hub.admin.headers).json()["items"]
    assert signature_ok(before, keys) and signature_ok(after, keys)
    assert service.verify(db).ok


def test_with_object_storage_unreachable_a_checkpoint_is_refused_with_503_and_nothing_is_half_written(
    client: TestClient, hub: Hub, db: Session
) -> None:
    from ops.auditlog.models import LogCheckpoint
    from ops.storage import S3Store

    _access(db, 2)
    before = db.scalar(select(func.count()).select_from(LogCheckpoint))
    client.app.state.storage = S3Store(  # type: ignore[attr-defined]
        endpoint="127.0.0.1:9", access_key="a", secret_key="b", bucket="govhub-x", secure=False
    )
    response = client.post("/audit/log/checkpoint", headers=hub.admin.headers)
    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["code"] == "unavailable" and "object storage is unreachable" in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(LogCheckpoint)) == before


def test_audit_verify_reports_a_cut_off_tail(client: TestClient, hub: Hub, storage: LocalStore, unlocked: Session) -> None:
    db = unlocked
    _access(db, 10)
    kept = _seal_log(client, hub)["tree_size"]
    _access(db, 6)
    _seal_log(client, hub)
    _access(db, 3)
    newest = _seal_log(client, hub)["tree_size"]
    assert service.verify(db, store=storage, grace_seconds=3600).ok

    cut_tail(db, kept)  # the last records, their log entries, the tree nodes and the checkpoints
    db.expire_all()
    assert service.verify(db, grace_seconds=3600).ok  # the database alone is consistent...
    report = service.verify(db, store=storage, grace_seconds=3600)  # ...its signed copies outside are not
    assert not report.ok
    assert [p["kind"] for p in report.problems] == ["truncated"]
    [cut] = report.problems
    assert cut["published_size"] == newest and cut["database_size"] == kept
    assert f"covers {newest} entries, but the database holds {kept}" in cut["detail"]
    assert f"{newest - kept} entries from leaf {kept} on are missing" in cut["detail"]
    assert report.published_checkpoints >= 3

    answer = client.get("/audit/log/verify", headers=hub.admin.headers)
    assert answer.status_code == 200 and answer.json()["ok"] is False
    assert answer.json()["problems"][0]["kind"] == "truncated"


def test_a_deleted_record_is_named(client: TestClient, hub: Hub, storage: LocalStore, unlocked: Session) -> None:
    db = unlocked
    ids = _access(db, 40)
    _seal_log(client, hub)
    _access(db, 5)
    _seal_log(client, hub)
    victim = ids[17]
    index = db.scalars(select(LogEntry.index).where(LogEntry.audit_id == victim)).one()
    db.execute(text("DELETE FROM audit_records WHERE id = :id"), {"id": victim})
    db.execute(text("DELETE FROM audit_log_entries WHERE audit_id = :id"), {"id": victim})
    db.expire_all()

    report = service.verify(db, store=storage, grace_seconds=3600)
    # one problem, naming the record; the checkpoints still check every other leaf (the stored
    # subtree hash over the missing one bridges it), so nothing else is reported
    assert report.problems == [
        {
            "kind": "removed",
            "leaf_index": index,
            "audit_id": victim,
            "detail": report.problems[0]["detail"],
        }
    ]
    detail = report.problems[0]["detail"]
    assert f"audit record {victim} was removed together with its log entry (leaf {index}, written between" in detail

    # a record altered after the removed one is still found through the signed roots
    forged = ids[30]
    db.execute(text("UPDATE audit_records SET purpose = '另有用途' WHERE id = :id"), {"id": forged})
    record = db.get(audit.AuditRecord, forged)
    assert record is not None
    db.refresh(record)
    db.execute(
        text("UPDATE audit_log_entries SET leaf_hash = :h WHERE audit_id = :id"),
        {"h": service.record_leaf_hash(record).hex(), "id": forged},
    )
    db.expire_all()
    kinds = [p["kind"] for p in service.verify(db, store=storage, grace_seconds=3600).problems]
    assert kinds[0] == "removed" and "root_mismatch" in kinds and "gap" not in kinds


def test_removed_leaves_without_their_subtree_hashes_are_reported_once(
    client: TestClient, hub: Hub, storage: LocalStore, unlocked: Session
) -> None:
    db = unlocked
    ids = _access(db, 12)
    _seal_log(client, hub)
    for _ in range(3):
        _access(db, 2)
        _seal_log(client, hub)
    gone = ids[4:7]
    first = db.scalars(select(LogEntry.index).where(LogEntry.audit_id == gone[0])).one()
    for audit_id in gone:
        db.execute(text("DELETE FROM audit_records WHERE id = :id"), {"id": audit_id})
        db.execute(text("DELETE FROM audit_log_entries WHERE audit_id = :id"), {"id": audit_id})
    db.execute(text("DELETE FROM audit_log_nodes"))
    db.expire_all()
    report = service.verify(db, store=storage, grace_seconds=3600)
    [removed, unverifiable] = report.problems
    assert removed["kind"] == "removed" and removed["leaves"] == 3 and removed["audit_ids"] == gone
    assert f"leaves {first} to {first + 2}" in removed["detail"]
    assert unverifiable["kind"] == "unverifiable" and unverifiable["checkpoints"] >= 4


def test_log_entries_renumbered_to_open_a_hole_are_a_gap_not_a_removal(
    client: TestClient, hub: Hub, storage: LocalStore, unlocked: Session
) -> None:
    db = unlocked
    ids = _access(db, 8)
    _seal_log(client, hub)
    hole = db.scalars(select(LogEntry.index).where(LogEntry.audit_id == ids[3])).one()
    last = db.scalar(select(func.max(LogEntry.index)))
    assert last is not None
    for index in range(last, hole - 1, -1):
        db.execute(text('UPDATE audit_log_entries SET "index" = :new WHERE "index" = :old'), {"new": index + 1, "old": index})
    db.expire_all()
    problems = service.verify(db, store=storage, grace_seconds=3600).problems
    gaps = [p for p in problems if p["kind"] == "gap"]
    assert len(gaps) == 1 and gaps[0]["leaf_index"] == hole and "renumbered" in gaps[0]["detail"]
    assert "removed" not in {p["kind"] for p in problems}


def test_a_forged_or_rewritten_checkpoint_in_object_storage_is_reported(
    client: TestClient, hub: Hub, storage: LocalStore, unlocked: Session
) -> None:
    db = unlocked
    ids = _access(db, 6)
    _seal_log(client, hub)
    # a history rewritten in the database, its checkpoints deleted and signed again by the hub
    db.execute(text("UPDATE audit_records SET purpose = '另有用途' WHERE id = :id"), {"id": ids[2]})
    record = db.get(audit.AuditRecord, ids[2])
    assert record is not None
    db.refresh(record)
    db.execute(
        text("UPDATE audit_log_entries SET leaf_hash = :h WHERE audit_id = :id"),
        {"h": service.record_leaf_hash(record).hex(), "id": ids[2]},
    )
    db.execute(text("DELETE FROM audit_log_nodes"))
    db.execute(text("DELETE FROM audit_log_timestamps"))
    db.execute(text("DELETE FROM audit_log_checkpoints"))
    entries = db.execute(text('SELECT "index", leaf_hash FROM audit_log_entries ORDER BY "index"')).all()
    known = {(0, int(i)): bytes.fromhex(h) for i, h in entries}
    tree._complete_nodes(db, 0, len(entries), known)
    db.expire_all()
    assert service.verify(db, grace_seconds=3600).ok  # the database alone is consistent again
    _seal_log(client, hub)
    problems = service.verify(db, store=storage, grace_seconds=3600).problems
    assert [p["kind"] for p in problems] == ["root_mismatch"] and "object storage" in problems[0]["detail"]

    storage.put_named(f"{service.PUBLISHED_PREFIX}/00000000000000000001-x.json", b'{"body": "forged"}')
    problems = service.verify(db, store=storage, grace_seconds=3600).problems
    assert "bad_published_checkpoint" in {p["kind"] for p in problems}


def test_a_checkpoint_published_outside_a_rolled_back_transaction_still_matches_the_log(
    client: TestClient, hub: Hub, storage: LocalStore, session_factory: sessionmaker[Session]
) -> None:
    vault = client.app.state.vault  # type: ignore[attr-defined]
    with session_factory() as db:
        _access(db, 3)
        signed = service.checkpoint_now(db, vault=vault, store=storage, force=True, grace_seconds=0)
        assert signed is not None
        db.rollback()  # the checkpoint row is lost; the leaves it signs were committed before its copy was written
    with session_factory() as db:
        report = service.verify(db, store=storage, grace_seconds=3600)
        assert report.ok, report.problems
        assert report.published_checkpoints == 1
