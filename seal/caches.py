"""Every in-process cache of the seal domain's verification path, and the one way to empty them all:
:func:`clear_all`.

- ``trust``: the roots and issuing CAs of this hub's two chains (current and retired), read in one query;
- ``seals``: what verification needs of this hub's seal behind a certificate serial (its status, validity,
  history and certificate), or that no seal of this hub has that serial;
- ``uses``: when this hub recorded a seal signature (its use record): a record never changes once written;
- ``choices`` (sealing an OFD, not verification): which seal a user of a department seals with when it names
  none, found active, authorised for the user by a standing authorisation and needing no approval, with what
  the sealing needs of it (its signer, DER, picture size, validity period: :func:`use_choice`), for
  ``GOVHUB_SEAL_STATUS_CACHE_SECONDS`` as well; the validity period is checked on every use. An authorisation
  granted or withdrawn, an approval policy set, a seal issued or its status changed in this process forgets
  every choice at once and again at commit (:func:`forget_use_choices_on_commit`); in another process, within
  that time (as a seal's status is for verification);
- ``tsa``: the hub TSA's key and certificate (:func:`hub_tsa`), for the same time; a new chain forgets it.

The first two are remembered for ``GOVHUB_SEAL_STATUS_CACHE_SECONDS`` (5 s by default; 0 reads the database
every time): a seal suspended, resumed, revoked or expired in another hub process is refused by this one
within that time. The process that changes a seal forgets it at once, and again when the change commits
(:func:`forget_seal_on_commit`); a new chain or a rotation empties ``trust`` (:func:`forget_trust`).

What each cache holds is true of one database: the caches are kept per database binding (the engine, or a
test's connection), so two databases in one process never see each other's seals.

Not here, on purpose: memos of pure functions, which can never hold a stale answer (parsed certificates by
their DER, public keys by their SubjectPublicKeyInfo, the seal maker's signature over a seal's bytes).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from sqlalchemy import event
from sqlalchemy.orm import Session

_clock = time.monotonic  # the seconds the caches count (a test moves it on)
USES_REMEMBERED = 65_536  # use records (serial → time) a process keeps, the oldest forgotten first


@dataclass(frozen=True)
class SealState:
    """This hub's seal as verification sees it: a snapshot of its row and its status history."""

    id: str
    code: str
    name: str
    seal_type: str
    alg: str
    department_code: str
    department_name: str
    valid_from: datetime
    valid_to: datetime
    status: str
    status_reason: str | None
    revoked_at: datetime | None
    certificate_pem: str
    history: tuple[tuple[datetime, str], ...]  # (at, status), oldest first


class _Memory:
    """What one process remembers of one database."""

    def __init__(self) -> None:
        self.trust: tuple[float, list[x509.Certificate], list[x509.Certificate]] | None = None
        self.seals: dict[str, tuple[float, SealState | None]] = {}
        self.uses: OrderedDict[tuple[str, str], datetime] = OrderedDict()
        self.choices: dict[tuple[str, ...], tuple[float, Any]] = {}
        self.tsa: tuple[float, str, Any] | None = None


_lock = threading.Lock()
_memories: weakref.WeakKeyDictionary[Any, _Memory] = weakref.WeakKeyDictionary()


def _memory(db: Session) -> _Memory:
    bind = db.get_bind()
    with _lock:
        memory = _memories.get(bind)
        if memory is None:
            memory = _memories[bind] = _Memory()
        return memory


def trust(
    db: Session, ttl: float, load: Callable[[], tuple[list[x509.Certificate], list[x509.Certificate]]]
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """The hub's (roots, issuing CAs): remembered for `ttl` seconds, else `load`ed."""
    memory = _memory(db)
    now = _clock()
    held = memory.trust
    if held is not None and now - held[0] < ttl:
        return held[1], held[2]
    roots, issuing = load()
    if ttl > 0:
        memory.trust = (now, roots, issuing)
    return roots, issuing


def seal(db: Session, serial: str, ttl: float) -> tuple[bool, SealState | None]:
    """(known, the seal): known False when this process must read the seal behind `serial` again."""
    held = _memory(db).seals.get(serial)
    if held is None or _clock() - held[0] >= ttl:
        return False, None
    return True, held[1]


def remember_seal(db: Session, serial: str, state: SealState | None, ttl: float) -> None:
    if ttl > 0:
        _memory(db).seals[serial] = (_clock(), state)


def use_time(db: Session, seal_id: str, signature_hash: str) -> datetime | None:
    return _memory(db).uses.get((seal_id, signature_hash))


def remember_use(db: Session, seal_id: str, signature_hash: str, at: datetime) -> None:
    uses = _memory(db).uses
    with _lock:
        uses[(seal_id, signature_hash)] = at
        while len(uses) > USES_REMEMBERED:
            uses.popitem(last=False)


def forget_seal(serial: str) -> None:
    """Forget a seal in every database this process remembers (its status changed)."""
    with _lock:
        memories = list(_memories.values())
    for memory in memories:
        memory.seals.pop(serial, None)


def forget_seal_on_commit(db: Session, serial: str) -> None:
    """Forget a seal now, and again when `db` commits: a verification that read the seal in between (before
    the change was visible) does not keep the old status."""
    forget_seal(serial)
    event.listen(db, "after_commit", lambda _session: forget_seal(serial), once=True)


def forget_trust() -> None:
    """Forget the trusted certificates (a chain was made or rotated)."""
    with _lock:
        memories = list(_memories.values())
    for memory in memories:
        memory.trust = None
        memory.tsa = None


def clear_all() -> None:
    """Empty every cache of this process: the next verification reads the database again."""
    with _lock:
        _memories.clear()


# ---------------------------------------------------------------- sealing: the seal to use, the hub's TSA

CHOICES_REMEMBERED = 4096  # (department, user) pairs a process remembers; all forgotten when it grows past this


def use_choice(db: Session, key: tuple[str, ...], ttl: float) -> Any:
    """The seal remembered for `key` (department, user, what it seals) within `ttl` seconds, else None."""
    held = _memory(db).choices.get(key)
    if held is None or _clock() - held[0] >= ttl:
        return None
    return held[1]


def remember_use_choice(db: Session, key: tuple[str, ...], seal: Any, ttl: float) -> None:
    if ttl > 0:
        choices = _memory(db).choices
        with _lock:
            if len(choices) >= CHOICES_REMEMBERED:
                choices.clear()
            choices[key] = (_clock(), seal)


def forget_use_choices() -> None:
    """Forget every remembered choice of a seal (an authorisation, a seal or its status changed)."""
    with _lock:
        memories = list(_memories.values())
    for memory in memories:
        memory.choices.clear()


def forget_use_choices_on_commit(db: Session) -> None:
    """Forget the choices now, and again when `db` commits (a use that read the old state in between)."""
    forget_use_choices()
    event.listen(db, "after_commit", lambda _session: forget_use_choices(), once=True)


def hub_tsa(db: Session, public_url: str, ttl: float, load: Callable[[], tuple[Any, bool]]) -> Any:
    """The hub TSA (``seal.tsa.HubTsa``) for `public_url`: remembered for `ttl` seconds, else `load`ed; `load`
    says whether what it gives may be remembered (not a key made in this transaction, which may roll back)."""
    memory = _memory(db)
    now = _clock()
    held = memory.tsa
    if held is not None and held[1] == public_url and now - held[0] < ttl:
        return held[2]
    loaded, keep = load()
    if ttl > 0 and keep:
        memory.tsa = (now, public_url, loaded)
    return loaded
