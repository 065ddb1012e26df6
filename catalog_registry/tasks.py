"""Scheduled jobs of the catalog_registry domain: old dataset versions' rows dropped (their files are kept)."""

from sqlalchemy.orm import Session

from catalog_registry.versions import archive_versions
from ops.scheduler import Job


def archive_old_versions(db: Session) -> int:
    """Drop the rows of dataset versions beyond each entry's newest ones (a batch per run)."""
    return archive_versions(db)


JOBS: list[Job] = [Job(name="catalog.archive_versions", interval_seconds=600, run=archive_old_versions)]
