"""Object storage: one interface, a local directory backend and an S3 (MinIO) backend.

Objects are content-addressed: the key is the SHA-256 of the bytes. Uploads stream through
a temporary file (never whole into memory), reads are checked against the key.

A few small documents are also kept under a name, to be listed later (`put_named`, `list_named`,
`get_named`): the audit log's signed checkpoints, whose copies outside the database let
verification notice a database cut back behind the hub's back. A named object is written once and
never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from ops.config import Settings
from ops.errors import HubError, NotFound, PayloadTooLarge, Unavailable
from ops.private import private_dir

CHUNK = 1024 * 1024
_MISSING = ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound")
# Names of named objects: path segments of letters, digits, '.', '_' and '-' (no '..', no leading '/').
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
NAMED_PREFIX = "named/"
T = TypeVar("T")


class IntegrityFailure(HubError):
    status, code, title = 500, "object_integrity", "Stored object is corrupt"


@dataclass(frozen=True)
class StoredObject:
    key: str  # sha256 hex of the content
    size: int


class ObjectStore(Protocol):
    """What every storage backend offers."""

    def put(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredObject: ...
    def open(self, key: str) -> Iterator[bytes]: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> None: ...
    def put_named(self, name: str, data: bytes) -> None: ...
    def list_named(self, prefix: str) -> list[str]: ...
    def get_named(self, name: str) -> bytes: ...


def _check_name(name: str) -> str:
    if not _NAME.match(name) or len(name) > 512:
        raise NotFound(f"object {name[:80]!r} not found")
    return name


def _check_key(key: str) -> str:
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise NotFound(f"object {key[:80]!r} not found")
    return key


def spool(chunks: Iterable[bytes], *, max_bytes: int | None, directory: Path | None = None) -> tuple[Path, StoredObject]:
    """Write chunks to a temporary file while hashing; refuse once `max_bytes` is passed."""
    digest = hashlib.sha256()
    size = 0
    fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise PayloadTooLarge(f"the object is larger than the limit of {max_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, StoredObject(digest.hexdigest(), size)


def read_file_chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def _verified(chunks: Iterable[bytes], key: str) -> Iterator[bytes]:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != key:
        raise IntegrityFailure(f"object {key} does not match its hash; it was altered in storage")


def get_bytes(store: ObjectStore, key: str) -> bytes:
    """Read a small object fully (checked); use `open` to stream large ones."""
    return b"".join(store.open(key))


class LocalStore:
    """Objects as files under a directory: objects/ab/cd/<sha256>."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / ".tmp"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / key

    def _ready(self) -> None:
        """The store's directory (private) and its directory of files being written."""
        private_dir(self.root)
        self._tmp.mkdir(exist_ok=True)

    def put(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredObject:
        self._ready()
        tmp, stored = spool(chunks, max_bytes=max_bytes, directory=self._tmp)
        target = self._path(stored.key)
        try:
            if target.exists():
                tmp.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise Unavailable(f"object storage cannot be written: {exc.strerror}") from exc
        return stored

    def open(self, key: str) -> Iterator[bytes]:
        path = self._path(_check_key(key))
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"object {key} not found") from exc

        def generate() -> Iterator[bytes]:
            with handle:
                yield from _verified(read_file_chunks(handle), key)

        return generate()

    def exists(self, key: str) -> bool:
        return self._path(_check_key(key)).exists()

    def size(self, key: str) -> int:
        try:
            return self._path(_check_key(key)).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"object {key} not found") from exc

    def delete(self, key: str) -> None:
        self._path(_check_key(key)).unlink(missing_ok=True)

    def ping(self) -> None:
        try:
            private_dir(self.root)
            probe = self.root / ".ping"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise Unavailable(f"object storage directory is not writable: {exc.strerror}") from exc

    def _named_path(self, name: str) -> Path:
        return self.root / NAMED_PREFIX / _check_name(name)

    def put_named(self, name: str, data: bytes) -> None:
        target = self._named_path(name)
        try:
            if target.exists():
                return  # written once, never overwritten
            self._ready()
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="named-", dir=self._tmp)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            raise Unavailable(f"object storage cannot be written: {exc.strerror}") from exc

    def list_named(self, prefix: str) -> list[str]:
        base = self.root / NAMED_PREFIX
        folder = base / _check_name(prefix.rstrip("/"))
        if not folder.is_dir():
            return []
        return sorted(str(path.relative_to(base)) for path in folder.rglob("*") if path.is_file())

    def get_named(self, name: str) -> bytes:
        try:
            return self._named_path(name).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"object {name} not found") from exc


class S3Store:
    """Objects in an S3-protocol bucket (MinIO in production), through the minio client."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str = "us-east-1",
        secure: bool = True,
        prefix: str = "objects/",
    ) -> None:
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3, read=30),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
            maxsize=20,
        )
        self.client = Minio(
            endpoint, access_key=access_key, secret_key=secret_key, region=region, secure=secure, http_client=http
        )
        self.bucket = bucket
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self.prefix}{key[:2]}/{key}"

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a client call; map S3 errors and network failures to the hub's errors."""
        from minio.error import S3Error

        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise NotFound(f"object not found ({what})") from exc
            raise Unavailable(f"object storage refused {what}: {exc.code}") from exc
        except HubError:
            raise
        except Exception as exc:  # urllib3 and socket errors: the server is unreachable
            raise Unavailable(f"object storage is unreachable ({what}): {type(exc).__name__}") from exc

    def ensure_bucket(self) -> None:
        if not self._call("bucket check", self.client.bucket_exists, self.bucket):
            self._call("bucket creation", self.client.make_bucket, self.bucket)

    def put(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> StoredObject:
        tmp, stored = spool(chunks, max_bytes=max_bytes)
        try:
            if not self.exists(stored.key):
                self._call(
                    "upload",
                    self.client.fput_object,
                    self.bucket,
                    self._name(stored.key),
                    str(tmp),
                    content_type="application/octet-stream",
                    metadata={"sha256": stored.key},
                )
        finally:
            tmp.unlink(missing_ok=True)
        return stored

    def open(self, key: str) -> Iterator[bytes]:
        name = self._name(_check_key(key))
        response = self._call("download", self.client.get_object, self.bucket, name)

        def generate() -> Iterator[bytes]:
            try:
                yield from _verified(response.stream(CHUNK), key)
            finally:
                response.close()
                response.release_conn()

        return generate()

    def exists(self, key: str) -> bool:
        try:
            self._call("lookup", self.client.stat_object, self.bucket, self._name(_check_key(key)))
        except NotFound:
            return False
        return True

    def size(self, key: str) -> int:
        stat = self._call("stat", self.client.stat_object, self.bucket, self._name(_check_key(key)))
        return int(stat.size or 0)

    def delete(self, key: str) -> None:
        self._call("delete", self.client.remove_object, self.bucket, self._name(_check_key(key)))

    def ping(self) -> None:
        if not self._call("bucket check", self.client.bucket_exists, self.bucket):
            raise Unavailable(f"bucket {self.bucket} does not exist")

    def _named(self, name: str) -> str:
        return NAMED_PREFIX + _check_name(name)

    def put_named(self, name: str, data: bytes) -> None:
        import io

        target = self._named(name)
        try:
            self._call("lookup", self.client.stat_object, self.bucket, target)
            return  # written once, never overwritten
        except NotFound:
            pass
        self._call(
            "upload", self.client.put_object, self.bucket, target, io.BytesIO(data), len(data), content_type="application/json"
        )

    def list_named(self, prefix: str) -> list[str]:
        start = self._named(prefix.rstrip("/")) + "/"
        found = self._call("listing", lambda: list(self.client.list_objects(self.bucket, prefix=start, recursive=True)))
        return sorted(str(o.object_name).removeprefix(NAMED_PREFIX) for o in found if o.object_name)

    def get_named(self, name: str) -> bytes:
        response = self._call("download", self.client.get_object, self.bucket, self._named(name))
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()


def make_store(settings: Settings) -> ObjectStore:
    """The store the settings ask for."""
    if settings.storage_backend == "s3":
        return S3Store(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            secure=settings.s3_secure,
        )
    return LocalStore(settings.effective_storage_dir)


def copy_to(store: ObjectStore, key: str, out: BinaryIO) -> None:
    """Stream an object into a file-like object."""
    for chunk in store.open(key):
        out.write(chunk)


__all__ = [
    "IntegrityFailure",
    "LocalStore",
    "ObjectStore",
    "S3Store",
    "StoredObject",
    "copy_to",
    "get_bytes",
    "make_store",
]
