"""The published status lists (BitstringStatusListCredential, format in statuslist.py), built from the certificates' state."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from certhub import caches, repository, sdjwt, statuslist
from certhub.common import status_base
from certhub.hubkey import hub_signer
from certhub.models import (
    CertificateStatus,
)
from ops.config import Settings
from ops.crypto import KeyVault
from ops.errors import NotFound

STATUS_LIST_TTL = 300  # seconds a verifier may cache a status list


def status_list_jwt(db: Session, *, purpose: str, vault: KeyVault, settings: Settings) -> str:
    """The signed BitstringStatusListCredential of a purpose, built from the current state."""
    if purpose not in statuslist.PURPOSES:
        raise NotFound(f"no status list {purpose!r}; there are {', '.join(statuslist.PURPOSES)}")
    signer = hub_signer(db, vault=vault)
    cache_key = f"{purpose}:{signer.kid}"
    now = time.monotonic()
    with caches.status_lock:
        cached = caches.status_lists.get(cache_key)
        if cached and now - cached[0] < caches.STATUS_CACHE_SECONDS:
            return cached[1]
    flagged = {
        "revocation": [CertificateStatus.REVOKED.value, CertificateStatus.SUPERSEDED.value],
        "suspension": [CertificateStatus.SUSPENDED.value],
    }[purpose]
    encoded = statuslist.encode(repository.flagged_indices(db, flagged), length=repository.max_status_index(db) + 1)
    url = f"{status_base(settings)}/{purpose}"
    credential = statuslist.credential(
        hub=settings.public_url,
        url=url,
        purpose=purpose,
        encoded_list=encoded,
        issued_at=int(time.time()),
        ttl_seconds=STATUS_LIST_TTL,
    )
    token = sdjwt.sign_jws(signer, credential, typ=sdjwt.VC_JWT_TYP)
    with caches.status_lock:
        caches.status_lists[cache_key] = (now, token)
    return token
