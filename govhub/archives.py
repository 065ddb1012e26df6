"""Every record class's own checks of its archive packages (四性检测), for `govhub archive` and `/archive/check`."""

from __future__ import annotations

from certhub import service as certhub_service
from exchange import service as exchange_service
from ops.archive import service as archive
from seal import service as seal_service

ARCHIVE_PROFILES: dict[str, archive.Profile] = {
    **certhub_service.ARCHIVE_PROFILES,  # certificate_version
    **seal_service.ARCHIVE_PROFILES,  # sealed_document
    **exchange_service.ARCHIVE_PROFILES,  # sharing_dossier
}
