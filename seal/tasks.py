"""Scheduled jobs of the seal domain."""

from ops.scheduler import Job

JOBS: list[Job] = []
