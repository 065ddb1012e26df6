"""Scheduled jobs of the exchange domain."""

from ops.scheduler import Job

JOBS: list[Job] = []
