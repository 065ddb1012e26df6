"""Periodic jobs: what a domain declares in its tasks.py, and the runner that starts them.

A domain's `tasks.py` exposes `JOBS: list[Job]`. The composition root (govhub.app) collects them;
the runner makes sure that, with several hub processes on one database, each run happens once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Job:
    """A periodic job. `run` gets a session whose transaction the runner commits."""

    name: str
    interval_seconds: int
    run: Callable[[Session], object]
