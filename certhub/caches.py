"""Every in-process cache of the certificate hub, and the one way to empty them all: :func:`clear_all`.

=====================  ==========================================  =================================
cache                  holds                                       kept until
=====================  ==========================================  =================================
``hub_signers``        the hub's unwrapped signing keys, by kid     the process ends (keys never change)
``face_validators``    compiled face-field validators, by type      the type's version changes
``status_lists``       signed status lists, by purpose and kid      ``STATUS_CACHE_SECONDS``, or a status change
``keys``               this hub's public keys (hub and seals)       ``KEY_CACHE_SECONDS``, or a miss
``department_names``   department names for the access list         ``DEPARTMENT_NAME_SECONDS``
``remote``             other hubs' fetched keys and status lists    60 s (status) / 300 s (keys), or a trust-list change
=====================  ==========================================  =================================

Each cache belongs to one process: another process's copy expires within its lifetime. Call
:func:`clear_all` when what they remember stops being true at once (a test's fresh database, keys
replaced by hand); :func:`invalidate_status_cache` and :func:`forget_remote` drop one cache each.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from certhub import sdjwt

if TYPE_CHECKING:
    from certhub.cert_types import FaceValidator
    from certhub.hubkey import HubSigner

STATUS_CACHE_SECONDS = 2.0  # the published list reflects a change within this many seconds
KEY_CACHE_SECONDS = 30.0
DEPARTMENT_NAME_SECONDS = 60.0  # names rarely change


class KeyCache:
    """Keys of this hub's departments and of trusted hubs, refreshed on a miss or after a while."""

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
status_lock = threading.Lock()
status_lists: dict[str, tuple[float, str]] = {}
keys = KeyCache()
department_names: dict[str, tuple[float, str | None]] = {}
remote: dict[str, tuple[float, Any]] = {}  # URL → (monotonic time, body)


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
    invalidate_status_cache()
    keys.clear()
    department_names.clear()
    forget_remote()
