"""Window verification (证照验证) of a presentation: keys, status, nonce, and the recorded use."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker

from certhub import caches, repository, sdjwt, trust
from certhub.accesses import Verified, record_verifications
from certhub.common import NeedsDatabase
from certhub.hubkey import hub_jwks
from certhub.models import TrustedHub
from certhub.trust import Fetcher, remote_status, trusted_jwks
from ops.auth import Principal, Role
from ops.config import Settings
from ops.context import current_request_id
from ops.db import reading, utcnow
from ops.errors import Forbidden
from ops.groupcommit import GroupCommit
from ops.metrics import CERTIFICATE_EVENTS, VERIFICATION_LATENCY

# Who verifies presentations and fetches certificates with the holder's authorisation (POST
# /certhub/verifications, /certhub/fetch, and the console's window pages).
VERIFIER_ROLES = (Role.WINDOW, Role.DEPARTMENT_SYSTEM, Role.DEPARTMENT_ADMIN)


def acts_as_verifier(who: Principal) -> bool:
    """A verifier acting for a department: presentations are shown to a department, fetches are for one."""
    return who.has(*VERIFIER_ROLES) and who.department_id is not None


PRESENTATION_MAX_AGE = 600


def _resolved(jwk: dict[str, Any], hub: str) -> sdjwt.ResolvedKey | None:
    alg = jwk.get("alg")
    if not isinstance(alg, str):
        return None
    dept = jwk.get("dept_code")
    return sdjwt.ResolvedKey(jwk=jwk, alg=alg, hub=hub, dept_code=str(dept) if dept else None)


def _local_key(db: Session | None, settings: Settings, kid: str) -> sdjwt.ResolvedKey | None:
    now = time.monotonic()
    with caches.keys.lock:
        key = caches.keys.local.get(kid)
        fresh = now - caches.keys.loaded_at < caches.KEY_CACHE_SECONDS
    if key is not None and fresh:
        return key
    if db is None:
        raise NeedsDatabase
    keys: dict[str, sdjwt.ResolvedKey] = {}
    for jwk in hub_jwks(db)["keys"]:
        resolved = _resolved(jwk, settings.public_url)
        if resolved is not None and "kid" in jwk:
            if jwk.get("use") == "presentation":
                resolved = sdjwt.ResolvedKey(jwk=jwk, alg=resolved.alg, hub=settings.public_url)
            keys[str(jwk["kid"])] = resolved
    with caches.keys.lock:
        caches.keys.local, caches.keys.loaded_at = keys, now
    return keys.get(kid)


def _trusted_key(hub: TrustedHub, kid: str, fetcher: Fetcher) -> sdjwt.ResolvedKey | None:
    """A trusted hub's key by kid, from its trust-list entry or its published key set."""
    for jwk in trusted_jwks(hub, fetcher).get("keys", []):
        if jwk.get("kid") == kid:
            resolved = _resolved(jwk, hub.issuer)
            if resolved and jwk.get("use") == "presentation":
                return sdjwt.ResolvedKey(jwk=jwk, alg=resolved.alg, hub=hub.issuer)
            return resolved
    return None


def _read(token: str) -> sdjwt.Presentation | None:
    """The presentation decoded (nothing checked yet), or None when it cannot be read (the checks then say why)."""
    try:
        return sdjwt.read_presentation(token)
    except sdjwt.Rejected:
        return None


@dataclass(frozen=True)
class Lookups:
    """What one verification needs besides the presentation, gathered before its cryptography runs: the
    window's audience and department name, the keys the presentation names, and for a certificate of
    another hub, that hub's trust-list entry (its status list is fetched only if the checks get that far)."""

    audience: str
    department_name: str | None
    presentation: sdjwt.Presentation | None
    iss: str
    keys: dict[str, sdjwt.ResolvedKey]
    local: bool
    hub: TrustedHub | None
    fetcher: Fetcher

    def key(self, iss: str, kid: str) -> sdjwt.ResolvedKey | None:
        return self.keys.get(kid) if iss == self.iss else None

    def status(self, entries: list[dict[str, Any]], identifier: str, iss: str) -> str:
        if self.local:
            return sdjwt.STATUS_LATER  # read in the same transaction that claims the nonce and records the access
        assert self.hub is not None  # a key was found, so the hub is in the trust list
        return remote_status(entries, hub=self.hub, fetcher=self.fetcher)


def lookups(db: Session | None, *, who: Principal, settings: Settings, token: str, fetcher: Fetcher | None = None) -> Lookups:
    """Gather what verifying `token` for the window `who` needs; `db` None: from the caches only, raising
    :class:`NeedsDatabase` for anything they lack (a key, a department's name, another hub's entry)."""
    if who.department_code is None:
        raise Forbidden("a verifier must belong to a department")
    name = caches.department_name(db, who.department_id)
    presentation = _read(token)
    iss, kids = (presentation.iss, presentation.kids) if presentation is not None else ("", [])
    local = iss == settings.public_url
    hub: TrustedHub | None = None
    keys: dict[str, sdjwt.ResolvedKey] = {}
    fetch = fetcher or trust.fetch_url
    if local:
        keys = {kid: key for kid in kids if (key := _local_key(db, settings, kid)) is not None}
    elif presentation is not None:
        if db is None:
            raise NeedsDatabase
        hub = repository.trusted_hub_by_issuer(db, iss)
        if hub is not None and hub.status == "active":
            keys = {kid: key for kid in kids if (key := _trusted_key(hub, kid, fetch)) is not None}
    return Lookups(who.department_code, name, presentation, iss, keys, local, hub, fetch)


# Verdicts a window cannot decide either way (ETSI "indeterminate"): the issuer is not one this hub trusts, or
# the certificate's status cannot be established. Every other refusal proves the presentation unacceptable.
INDETERMINATE_CODES = frozenset({"untrusted_issuer", "unknown_certificate", "status_unavailable"})


def verdict_outcome(code: str) -> str:
    """What a verification code means to the window: valid, invalid or indeterminate."""
    if code == "valid":
        return "valid"
    return "indeterminate" if code in INDETERMINATE_CODES else "invalid"


def new_nonce(*, who: Principal) -> tuple[str, str]:
    """A fresh nonce for a holder to bind a presentation to (the window shows it as a QR code)."""
    if who.department_code is None:
        raise Forbidden("a verifier must belong to a department")
    return secrets.token_urlsafe(16), who.department_code


@dataclass(frozen=True)
class PendingVerification:
    """A verification whose checks have run, waiting for its write (nonce, status, access record)."""

    who: Principal
    verdict: sdjwt.Verdict
    nonce: str | None
    department_name: str | None
    request_id: str | None


def verify(
    db: Session,
    *,
    who: Principal,
    settings: Settings,
    token: str,
    nonce: str | None,
    fetcher: Fetcher | None = None,
    now: datetime | None = None,
) -> sdjwt.Verdict:
    """证照验证: verify a presentation for the calling window; records the access and the nonce.

    What the checks need is looked up first (:func:`lookups`); then the checks that need no write
    (format, keys, signatures, validity, audience, disclosures) run once; then one short write in `db`
    settles the verdict (:func:`settle_verifications`). The API's busy path is :func:`verify_async`,
    whose write shares its commit with other windows' verifications.
    """
    started = time.perf_counter()
    found = lookups(db, who=who, settings=settings, token=token, fetcher=fetcher)
    pending = _checked(found, who=who, token=token, nonce=nonce, now=now)
    return _counted(settle_verifications(db, [pending])[0], started)


async def verify_async(
    factory: sessionmaker[Session],
    *,
    who: Principal,
    settings: Settings,
    token: str,
    nonce: str | None,
    journal: GroupCommit[PendingVerification, sdjwt.Verdict],
) -> sdjwt.Verdict:
    """:func:`verify` for the event loop: when the caches hold what the checks need (this hub's keys,
    the window's department) the checks run on the loop; else a worker thread looks up the rest with a
    session and runs the checks there, once. The write is awaited from the journal without holding a thread."""
    started = time.perf_counter()
    try:
        found = lookups(None, who=who, settings=settings, token=token)
    except NeedsDatabase:

        def with_session() -> PendingVerification:
            with reading(), factory() as db:  # the checks only read; the writes are the journal's
                found = lookups(db, who=who, settings=settings, token=token)
                return _checked(found, who=who, token=token, nonce=nonce)

        pending = await anyio.to_thread.run_sync(with_session)
    else:
        pending = _checked(found, who=who, token=token, nonce=nonce)
    return _counted(await journal.run_async(pending), started)


def _checked(
    found: Lookups, *, who: Principal, token: str, nonce: str | None, now: datetime | None = None
) -> PendingVerification:
    """The checks of a verification that need no write (the cryptography among them), with what `found` holds."""
    claimed: list[str] = []
    verdict = sdjwt.verify_presentation(
        found.presentation or token,  # read once, by the lookups
        resolve_key=found.key,
        resolve_status=found.status,
        audience=found.audience,
        nonce=nonce,
        max_age_seconds=PRESENTATION_MAX_AGE,
        now=now,
        claim_nonce=claimed.append,
    )
    return PendingVerification(
        who=who,
        verdict=verdict,
        nonce=claimed[0] if claimed else None,
        department_name=found.department_name,
        request_id=current_request_id(),
    )


def _counted(verdict: sdjwt.Verdict, started: float) -> sdjwt.Verdict:
    CERTIFICATE_EVENTS.labels(event="verified" if verdict.valid else "verify_failed").inc()
    VERIFICATION_LATENCY.observe(time.perf_counter() - started)
    return verdict


REPLAYED = "this presentation was already used (its nonce was seen before); ask the holder to show it again"


def settle_verifications(db: Session, items: Sequence[PendingVerification]) -> list[sdjwt.Verdict]:
    """The write of many verifications at once: claim their nonces, read the status of this hub's
    certificates, record the accesses (:func:`record_verifications`); four statements whatever the number of items."""
    expires_at = utcnow() + timedelta(seconds=PRESENTATION_MAX_AGE + 60)
    wanted = {item.nonce: str(item.who.department_code) for item in items if item.nonce is not None}
    claimed = repository.claim_nonces(db, wanted, expires_at=expires_at)
    local = {i.verdict.identifier for i in items if i.verdict.status == sdjwt.STATUS_LATER and i.verdict.identifier}
    statuses = repository.statuses_of(db, local)
    settled: list[Verified] = []
    for item in items:
        verdict = replace(item.verdict)
        local_holder: str | None = None
        if item.nonce is not None and not claimed.pop(item.nonce, False):  # pop: a nonce twice in a batch is a replay
            verdict = sdjwt.Verdict(valid=False, code="replayed", message=REPLAYED)
        elif verdict.status == sdjwt.STATUS_LATER:
            found = statuses.get(verdict.identifier or "")
            if found is None:
                message = f"certificate {verdict.identifier} is not in this hub's library"
                verdict = sdjwt.Verdict(valid=False, code="unknown_certificate", message=message)
            else:
                sdjwt.apply_status(verdict, found[0])
                local_holder = found[1]
        settled.append(Verified(item.who, verdict, local_holder, item.department_name, item.request_id))
    record_verifications(db, settled)
    return [s.verdict for s in settled]
