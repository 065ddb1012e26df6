"""Key custody: seal keys at rest (re-wrapped under a new master key), the signers other domains use
(a department's seal chosen and unwrapped in this process only), and the public keys of what they signed."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from cryptography import x509
from sqlalchemy.orm import Session

from ops import audit
from ops.crypto import KeyVault, WrappedSecret
from ops.db import utcnow
from ops.errors import Conflict, NotFound
from seal import authority, keys, repository, ses
from seal.common import field_error, key_purpose
from seal.keys import ALGORITHMS, Signer, SoftwareSigner
from seal.models import Seal, SealStatus
from seal.schemas import SEAL_TYPES

# Which seal a department uses when the caller names no type.
PREFERRED_TYPES = ("公章", "电子证照专用章", "业务专用章", "合同专用章", "财务专用章", "发票专用章")


# ---------------------------------------------------------------- keys at rest


def rewrap_keys(db: Session, *, vault: KeyVault) -> int:
    """Re-wrap every seal and authority private key under the current master key (the keys do not change)."""
    from sqlalchemy import select

    changed = authority.rewrap(db, vault)
    for seal in db.scalars(select(Seal)):
        wrapped = WrappedSecret.from_dict(seal.private_key)
        new = vault.rewrap(wrapped, purpose=key_purpose(seal.id))
        if new != wrapped:
            seal.private_key = new.as_dict()
            changed += 1
    db.flush()
    audit.record(db, actor=audit.SYSTEM, action="seal.rewrap", object_type="seal", object_id="*", detail={"rewrapped": changed})
    return changed


# ---------------------------------------------------------------- signers (the contract other domains use)


def _usable(seal: Seal, now: datetime) -> bool:
    return seal.status == SealStatus.ACTIVE.value and seal.valid_from <= now < seal.valid_to


def chain_pem(db: Session, seal: Seal) -> list[str]:
    issuing = authority.issuer_certificate_pem(db, x509.load_pem_x509_certificate(seal.certificate_pem.encode()))
    return [seal.certificate_pem] if issuing is None else [seal.certificate_pem, issuing]


# Unwrapped signers of this process, keyed by the seal, its wrapped key and the vault's master key:
# a re-wrapped key or another master key misses the cache and is unwrapped (and checked) again.
# Whether the seal may be used is checked against the database on every use (sealing an OFD remembers the
# outcome for seal_status_cache_seconds: seal/caches.py, ``choices``), never by this cache.
_SIGNERS: OrderedDict[tuple[str, str, str, str], SoftwareSigner] = OrderedDict()
_SIGNERS_LOCK = threading.Lock()
_SIGNERS_MAX = 512


def signer_for(db: Session, *, seal: Seal, vault: KeyVault) -> SoftwareSigner:
    """The signer of one seal (its private key unwrapped in this process only)."""
    wrapped = WrappedSecret.from_dict(seal.private_key)
    cache_key = (seal.id, wrapped.kek_id, hashlib.sha256(wrapped.ciphertext.encode()).hexdigest(), vault.current_kek_id)
    with _SIGNERS_LOCK:
        cached = _SIGNERS.get(cache_key)
        if cached is not None:
            _SIGNERS.move_to_end(cache_key)
            return cached
    pem = vault.unwrap(wrapped, purpose=key_purpose(seal.id))
    signer = SoftwareSigner(
        alg=seal.alg,
        kid=seal.kid,
        seal_id=seal.id,
        _private=keys.load_private(seal.alg, pem),
        _jwk=dict(seal.public_jwk),
        _chain=chain_pem(db, seal),
    )
    with _SIGNERS_LOCK:
        _SIGNERS[cache_key] = signer
        while len(_SIGNERS) > _SIGNERS_MAX:
            _SIGNERS.popitem(last=False)
    return signer


def _choose(seals: list[Seal], now: datetime, *, algorithms: tuple[str, ...] = ALGORITHMS) -> Seal | None:
    usable = [s for s in seals if _usable(s, now) and s.alg in algorithms]
    if not usable:
        return None
    rank = {t: i for i, t in enumerate(PREFERRED_TYPES)}
    return min(usable, key=lambda s: (rank.get(s.seal_type, len(rank)), -s.created_at.timestamp()))


def seal_to_use(
    db: Session,
    *,
    department_id: str,
    seal_id: str | None,
    seal_type: str | None,
    algorithms: tuple[str, ...] = ALGORITHMS,
    among: set[str] | None = None,
    active: list[Seal] | None = None,
) -> Seal:
    """The seal to use: the one named, else the department's preferred usable seal (of a type, an algorithm),
    among the seals `among` (those the user is authorised for) when one of them fits. `active`: the department's
    active seals of that type when the caller has them already (``repository.active_seals_for``)."""
    now = utcnow()
    if seal_id:
        seal = repository.own_seal(db, department_id=department_id, seal_id=seal_id)
        if seal is None:
            raise NotFound(f"the department has no seal {seal_id}")
        if seal.status != SealStatus.ACTIVE.value:
            raise Conflict(f"seal {seal.name} ({seal.seal_type}) is {seal.status}; only active seals can be used")
        if not seal.valid_from <= now < seal.valid_to:
            raise Conflict(
                f"seal {seal.name} is outside its validity period ({seal.valid_from:%Y-%m-%d}..{seal.valid_to:%Y-%m-%d})"
            )
        if seal.alg not in algorithms:
            raise Conflict(
                f"seal {seal.name} uses {seal.alg}, which cannot seal this kind of document; use a seal with "
                + " or ".join(algorithms)
            )
        return seal
    if seal_type is not None and seal_type not in SEAL_TYPES:
        raise field_error("seal_type", f"unknown seal type {seal_type!r}; use one of {', '.join(SEAL_TYPES)}")
    seals = active if active is not None else repository.active_seals(db, department_id=department_id, seal_type=seal_type)
    preferred = [s for s in seals if s.id in among] if among is not None else seals
    chosen = _choose(preferred, now, algorithms=algorithms) or _choose(seals, now, algorithms=algorithms)
    if chosen is None:
        what = f"active {seal_type}" if seal_type else "active seal"
        if algorithms != ALGORITHMS:
            what += f" using {' or '.join(algorithms)}"
        raise Conflict(f"the department has no {what}; ask the platform administrator to issue one (电子印章制发)")
    return chosen


def department_signer(db: Session, *, department_id: str, vault: KeyVault, seal_type: str | None = None) -> Signer:
    """The signer of the department's active seal (a given type, or its preferred one);
    Conflict with a clear message if the department has no active seal."""
    seal = seal_to_use(db, department_id=department_id, seal_id=None, seal_type=seal_type)
    return signer_for(db, seal=seal, vault=vault)


def verify_jose_signature(*, alg: str, jwk: dict[str, Any], data: bytes, signature: bytes) -> bool:
    """Verify a signature made by a Signer, given its public JWK (all three algorithms)."""
    if jwk.get("alg") not in (None, alg):
        return False
    try:
        public = keys.public_from_jwk(alg, jwk)
    except ValueError:
        return False
    return keys.verify_with(alg, public, data, signature)


def department_jwks(db: Session, *, department_id: str | None = None) -> dict[str, Any]:
    """Public keys of active and previously active seals (for verifying what they signed), as a JWK set,
    each key with its `kid`, `alg`, the department code (custom member `dept_code`) and `status`."""
    entries = []
    for seal in repository.published_seals(db, department_id=department_id):
        jwk = dict(seal.public_jwk)
        jwk.update(
            {
                "kid": seal.kid,
                "alg": seal.alg,
                "use": "sig",
                "dept_code": seal.department_code,
                "status": seal.status,
                "seal_id": seal.id,
                "seal_type": seal.seal_type,
                "x5c": [_pem_body(p) for p in chain_pem(db, seal)],
            }
        )
        if seal.revoked_at is not None:
            jwk["revoked_at"] = ses.timestamp(seal.revoked_at)
        entries.append(jwk)
    return {"keys": entries}


def _pem_body(pem_text: str) -> str:
    return "".join(line for line in pem_text.strip().splitlines() if not line.startswith("-----"))
