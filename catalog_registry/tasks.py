"""Scheduled jobs of the catalog_registry domain."""

from ops.scheduler import Job

JOBS: list[Job] = []
