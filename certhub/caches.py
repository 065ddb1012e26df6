"""Every in-process cache of the certificate hub, and the one way to empty them all: :func:`clear_all`.

- ``hub_signers``: the hub's unwrapped signing keys, by kid; for the life of the process (a key never changes);
- ``face_validators``: compiled face-field validators, by type; until the type's version changes;
- ``issuing_types``, ``issuing_departments``: what an issuance reads of its certificate type and its issuing
  department, by type code and department id (``certhub.issuance``); each used only while the database shows
  the version and time of change it was read at, which every issuance checks in one statement
  (``repository.issuing_stamps``), so never stale; at most ``ISSUING_MAX`` of each (then emptied);
- ``status_lists``: signed status lists, by purpose and key; ``STATUS_CACHE_SECONDS``, or until a status changes;
- ``keys``: this hub's public keys (its own and the seals'); ``KEY_CACHE_SECONDS``, or until a kid is missing;
- ``department_names``: department names for the access list, read through :func:`department_name`;
  ``DEPARTMENT_NAME_SECONDS``;
- ``remote``: other hubs' keys and status lists, fetched; ``REMOTE_KEYS_SECONDS`` / ``REMOTE_STATUS_SECONDS``,
  or until the trust list changes;
- ``public_checks``: the recent public 验真 checks of each client address (the rate limit), for a minute;
- the blocks of serials and status-list positions this process reserved (``certhub.reservations``).

Each cache belongs to one process: another process's copy expires within its lifetime. Call
:func:`clear_all` when what they remember stops being true at once (a test's fresh database, keys
replaced by hand); :func:`invalidate_status_cache` and :func:`forget_remote` drop one cache each.

Not here, on purpose: memos of pure functions, which can never hold a stale answer (``sdjwt``'s public
keys by their JWK members, its encoded headers, the certificates it read and their signatures it checked, by
their bytes and the key; ``repository``'s compiled nonce statement).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from certhub import reservations, sdjwt
from certhub.common import NeedsDatabase
from ops.identity import repository as departments

if TYPE_CHECKING:
    from certhub.cert_types import FaceValidator, TypeSnapshot
    from certhub.hubkey import HubSigner
    from certhub.issuance import DepartmentSnapshot

STATUS_CACHE_SECONDS = 2.0  # the published list reflects a change within this many seconds
KEY_CACHE_SECONDS = 30.0
DEPARTMENT_NAME_SECONDS = 60.0  # names rarely change
REMOTE_KEYS_SECONDS = 300.0  # another hub's published keys
REMOTE_STATUS_SECONDS = 60.0  # another hub's status lists


class KeyCache:
    """The public keys of this hub and of its departments' seals, refreshed on a miss or after a while."""

    def __init__(self) -> None:
        self.local: dict[str, sdjwt.ResolvedKey] = {}
        self.loaded_at = 0.0
        self.lock = threading.Lock()

    def clear(self) -> None:
        with self.lock:
            self.local = {}
            self.loaded_at = 0.0


hub_signers: dict[str, HubSigner] = {}
face_validators: dict[str, FaceValidator] = {}
ISSUING_MAX = 1024
issuing_types: dict[str, TypeSnapshot] = {}
issuing_departments: dict[str, DepartmentSnapshot] = {}
status_lock = threading.Lock()
status_lists: dict[str, tuple[float, str]] = {}
keys = KeyCache()
department_names: dict[str, tuple[float, str | None]] = {}
remote: dict[str, tuple[float, Any]] = {}  # URL → (monotonic time, body)


class RateWindow:
    """Hits per client address in the last minute (a sliding window), for a per-address rate limit."""

    WINDOW = 60.0
    MAX_CLIENTS = 50_000  # beyond this many addresses, the idle ones are forgotten first

    def __init__(self) -> None:
        self.hits: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def hit(self, client: str, *, limit: int, now: float | None = None) -> float | None:
        """Count a hit; None when within `limit` a minute, else the seconds until the next one is allowed."""
        now = time.monotonic() if now is None else now
        with self.lock:
            if len(self.hits) > self.MAX_CLIENTS:
                self.hits = {k: v for k, v in self.hits.items() if v and v[-1] > now - self.WINDOW}
            seen = self.hits.setdefault(client, deque())
            while seen and seen[0] <= now - self.WINDOW:
                seen.popleft()
            if len(seen) >= limit:
                return max(seen[0] + self.WINDOW - now, 0.0)
            seen.append(now)
            return None

    def clear(self) -> None:
        with self.lock:
            self.hits = {}


public_checks = RateWindow()


def department_name(db: Session | None, department_id: str | None) -> str | None:
    """A department's name for the access list, from ``department_names`` (names rarely change).
    Without a session only the cache answers (:class:`NeedsDatabase` on a miss)."""
    if not department_id:
        return None
    cached = department_names.get(department_id)
    if cached and time.monotonic() - cached[0] < DEPARTMENT_NAME_SECONDS:
        return cached[1]
    if db is None:
        raise NeedsDatabase
    department = departments.department_by_id(db, department_id)
    name = department.name if department else None
    department_names[department_id] = (time.monotonic(), name)
    return name


def invalidate_status_cache() -> None:
    """Drop the cached lists of this process (another process's cache expires within seconds)."""
    with status_lock:
        status_lists.clear()


def forget_remote() -> None:
    """Drop what was fetched from other hubs (after the trust list changes)."""
    remote.clear()


def clear_all() -> None:
    """Empty every cache of this process: the next use reads the database (or the other hub) again."""
    hub_signers.clear()
    face_validators.clear()
    issuing_types.clear()
    issuing_departments.clear()
    invalidate_status_cache()
    keys.clear()
    department_names.clear()
    forget_remote()
    public_checks.clear()
    reservations.forget()
