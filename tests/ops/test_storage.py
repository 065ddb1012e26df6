"""Both object-store backends: the local directory and a real S3-protocol server."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.errors import NotFound, PayloadTooLarge, Unavailable
from ops.hubprocess import free_port
from ops.storage import IntegrityFailure, LocalStore, ObjectStore, S3Store, get_bytes


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's standalone S3 server, started here on a free loopback port."""
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_server")
    s3 = S3Store(
        endpoint=endpoint,
        access_key="testing",
        secret_key="testing",
        bucket=f"govhub-{tmp_path.name.lower().replace('_', '-')[:40]}",
        secure=False,
    )
    s3.ensure_bucket()
    return s3


def _chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield bytes((sent + i) % 251 for i in range(n))
        sent += n


def test_an_upload_is_stored_under_its_sha256_and_reads_back(store: ObjectStore) -> None:
    data = "居民户口簿 数据集\n".encode() * 1000
    stored = store.put(iter([data]))
    assert stored.key == hashlib.sha256(data).hexdigest() and stored.size == len(data)
    assert store.exists(stored.key) and store.size(stored.key) == len(data)
    assert get_bytes(store, stored.key) == data
    # The same content twice is one object.
    assert store.put(iter([data[:10], data[10:]])).key == stored.key


def test_a_large_upload_streams_in_chunks(store: ObjectStore) -> None:
    total = 12 * 1024 * 1024
    stored = store.put(_chunks(total))
    assert stored.size == total
    received = sum(len(chunk) for chunk in store.open(stored.key))
    assert received == total


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        store.put(_chunks(3 * 1024 * 1024), max_bytes=1024 * 1024)
    if isinstance(store, LocalStore):
        assert not any((store.root / ".tmp").iterdir())


def test_a_missing_object_is_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFound):
        get_bytes(store, "0" * 64)
    with pytest.raises(NotFound):
        get_bytes(store, "../../etc/passwd")


def test_an_object_altered_in_storage_fails_its_integrity_check(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    stored = store.put(iter([b"original certificate"]))
    path = store.root / stored.key[:2] / stored.key[2:4] / stored.key
    path.write_bytes(b"forged certificate!!")
    with pytest.raises(IntegrityFailure):
        get_bytes(store, stored.key)


def test_an_unreachable_s3_server_is_reported_as_unavailable() -> None:
    s3 = S3Store(endpoint=f"127.0.0.1:{free_port()}", access_key="a", secret_key="b", bucket="govhub-x", secure=False)
    with pytest.raises(Unavailable):
        s3.ping()
    with pytest.raises(Unavailable):
        s3.put(iter([b"data"]))


def test_a_named_object_is_written_once_and_listed_under_its_prefix(store: ObjectStore) -> None:
    store.put_named("audit-log/checkpoints/00000000000000000002-b.json", b'{"size": 2}')
    store.put_named("audit-log/checkpoints/00000000000000000001-a.json", b'{"size": 1}')
    store.put_named("audit-log/other/x.json", b"{}")
    store.put_named("audit-log/checkpoints/00000000000000000001-a.json", b'{"size": "changed"}')  # never overwritten
    assert store.list_named("audit-log/checkpoints") == [
        "audit-log/checkpoints/00000000000000000001-a.json",
        "audit-log/checkpoints/00000000000000000002-b.json",
    ]
    assert store.get_named("audit-log/checkpoints/00000000000000000001-a.json") == b'{"size": 1}'
    assert store.list_named("nothing/here") == []
    for bad in ("../escape", "/absolute", "a/../b", "a//b"):
        with pytest.raises(NotFound):
            store.get_named(bad)
    with pytest.raises(NotFound):
        store.get_named("audit-log/checkpoints/missing.json")


def test_the_local_object_directory_is_created_readable_by_the_hubs_user_only(tmp_path: Path) -> None:
    root = tmp_path / "data" / "objects"
    LocalStore(root).put([b"a sealed PDF"])
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
