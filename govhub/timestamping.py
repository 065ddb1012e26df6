"""Which RFC 3161 time-stamp authority the platform's work uses, chosen where the domains are assembled."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ops import timestamping
from ops.config import Settings, get_settings
from ops.crypto import KeyVault
from seal import service as seal_service


def configure_time_stamps(settings: Settings | None = None) -> None:
    """The platform's stamper and the TSA roots it trusts (`ops.timestamping`): the external TSA of
    `GOVHUB_SEAL_TSA_URL`, else the hub's own (seal domain); built from the settings when first used."""

    def stamp(db: Session, digest: bytes) -> bytes:
        current = settings or get_settings()
        return seal_service.time_stamper(KeyVault.from_settings(current), current)(db, digest)

    def trusted(db: Session) -> timestamping.Trust:
        return seal_service.time_stamp_trust(settings or get_settings())(db)

    timestamping.configure(stamper=stamp, trust=trusted)
