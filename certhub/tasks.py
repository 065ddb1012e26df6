"""Scheduled jobs of the certhub domain."""

from ops.scheduler import Job
from ops.workdays.service import CalendarListener

JOBS: list[Job] = []
# Called when a year's working-day calendar is loaded, to recompute open deadlines of this domain.
CALENDAR_LISTENERS: list[CalendarListener] = []
