"""The trust list (互通互认): other hubs whose certificates this hub accepts, their keys and status lists."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from certhub import caches, repository, sdjwt, statuslist
from certhub.common import status_base
from certhub.hubkey import hub_jwks
from certhub.models import (
    TrustedHub,
)
from certhub.schemas import (
    TrustedHubCreate,
    TrustedHubUpdate,
)
from ops import audit
from ops.audit import Actor
from ops.config import Settings
from ops.db import check_if_match, utcnow
from ops.errors import Conflict, Invalid, NotFound, UpstreamError

Fetcher = Callable[[str], bytes]


def fetch_url(url: str) -> bytes:
    """GET a trust-list resource (another hub's keys or status list), bounded in time and size."""
    import urllib.request

    if not url.startswith(("https://", "http://")):
        raise UpstreamError(f"{url} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json, application/vc+jwt"})  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return bytes(response.read(4 * 1024 * 1024))
    except OSError as exc:
        raise UpstreamError(f"cannot fetch {url}: {exc}") from exc


def cached_fetch(url: str, fetcher: Fetcher, ttl: float) -> bytes:
    now = time.monotonic()
    cached = caches.remote.get(url)
    if cached and now - cached[0] < ttl:
        result: bytes = cached[1]
        return result
    body = fetcher(url)
    caches.remote[url] = (now, body)
    return body


def trusted_jwks(hub: TrustedHub, fetcher: Fetcher) -> dict[str, Any]:
    if hub.jwks:
        return hub.jwks
    if hub.jwks_url:
        try:
            result: dict[str, Any] = json.loads(cached_fetch(hub.jwks_url, fetcher, caches.REMOTE_KEYS_SECONDS))
            return result
        except (ValueError, UpstreamError):
            return {"keys": []}
    return {"keys": []}


def remote_status(entries: list[dict[str, Any]], *, hub: TrustedHub, fetcher: Fetcher) -> str:
    """Status of another hub's certificate from its published (signed) status lists."""
    if not entries:
        raise sdjwt.Rejected("status_unavailable", "the certificate carries no status entry")
    result = "active"
    for entry in entries:
        url = str(entry.get("statusListCredential", ""))
        if not any(url.startswith(prefix) for prefix in hub.status_list_urls):
            raise sdjwt.Rejected("status_unavailable", f"status list {url} is not one the trust list names for {hub.issuer}")
        try:
            token = cached_fetch(url, fetcher, caches.REMOTE_STATUS_SECONDS).decode("ascii").strip()
        except (UpstreamError, UnicodeDecodeError) as exc:
            raise sdjwt.Rejected("status_unavailable", f"the status list of {hub.issuer} cannot be fetched: {exc}") from exc
        jwks = trusted_jwks(hub, fetcher)
        set_bit = statuslist.status_bit(token, entry, jwks=jwks, hub=hub.issuer)
        if set_bit:
            purpose = entry.get("statusPurpose")
            result = "revoked" if purpose == "revocation" else "suspended" if result == "active" else result
    return result


def _check_jwks(jwks: dict[str, Any] | None) -> None:
    if jwks is None:
        return
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, dict) and k.get("kid") and k.get("alg") for k in keys):
        raise Invalid('jwks must be {"keys": [{"kid": …, "alg": …, …}]}', errors=[{"field": "jwks", "message": "not a JWK set"}])


def add_trusted_hub(db: Session, *, who: Actor, data: TrustedHubCreate) -> TrustedHub:
    """Trust another hub's certificates."""
    if not data.jwks and not data.jwks_url:
        raise Invalid(
            "give the hub's keys (jwks) or where to fetch them (jwks_url)", errors=[{"field": "jwks", "message": "required"}]
        )
    _check_jwks(data.jwks)
    if repository.trusted_hub_by_issuer(db, data.issuer):
        raise Conflict(f"hub {data.issuer} is already in the trust list")
    row = TrustedHub(**data.model_dump())
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="trusted_hub.add",
        object_type="cert_trusted_hub",
        object_id=row.issuer,
        detail={"region": row.region_code},
    )
    return row


def update_trusted_hub(db: Session, *, who: Actor, hub_id: str, data: TrustedHubUpdate, if_match: str | None) -> TrustedHub:
    row = repository.trusted_hub(db, hub_id)
    if row is None:
        raise NotFound(f"trusted hub {hub_id} not found")
    check_if_match(if_match, row.version)
    changes = data.model_dump(exclude_unset=True)
    _check_jwks(changes.get("jwks"))
    for key, value in changes.items():
        setattr(row, key, value)
    db.flush()
    caches.forget_remote()
    audit.record(
        db,
        actor=who,
        action="trusted_hub.update",
        object_type="cert_trusted_hub",
        object_id=row.issuer,
        detail={"changed": sorted(changes)},
    )
    return row


def remove_trusted_hub(db: Session, *, who: Actor, hub_id: str) -> None:
    row = repository.trusted_hub(db, hub_id)
    if row is None:
        raise NotFound(f"trusted hub {hub_id} not found")
    db.delete(row)
    db.flush()
    caches.forget_remote()
    audit.record(db, actor=who, action="trusted_hub.remove", object_type="cert_trusted_hub", object_id=row.issuer)


def trust_bundle(db: Session, *, settings: Settings) -> dict[str, Any]:
    """The trust list as the offline verifier caches it: this hub and every active trusted hub."""
    hubs = [{"issuer": settings.public_url, "jwks": hub_jwks(db), "status_list_urls": [status_base(settings)]}]
    for hub in repository.trusted_hubs(db):
        if hub.status == "active":
            hubs.append({"issuer": hub.issuer, "jwks": trusted_jwks(hub, fetch_url), "status_list_urls": hub.status_list_urls})
    return {"hubs": hubs, "generated_at": utcnow().isoformat()}
