"""Scheduled jobs of the certhub domain."""

from ops.scheduler import Job

JOBS: list[Job] = []
