"""Process-level tuning of a serving hub process (not of tests or commands)."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger("govhub.runtime")

# Collect the youngest generation after this many net allocations instead of CPython's 700: a busy
# request allocates a few thousand short-lived objects, and the default made the collector run
# several times per request, scanning the same survivors each time.
GC_YOUNGEST_THRESHOLD = 50_000


def tune_gc_for_serving() -> None:
    """Freeze what start-up built (modules, the app, mappers, schemas) out of the collector's sight,
    and collect young garbage less often. Called once, when the process is about to serve."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNGEST_THRESHOLD, older, oldest)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# How often a worker looks whether its master is still there, and how long it is given to stop
# gracefully (finish the requests it is answering) once the master is gone.
PARENT_CHECK_SECONDS = 1.0
ORPHAN_GRACE_SECONDS = 10.0


def end_with_parent(
    parent_pid: int | None = None,
    *,
    deathsig: bool = True,
    check_seconds: float = PARENT_CHECK_SECONDS,
    grace_seconds: float = ORPHAN_GRACE_SECONDS,
) -> None:
    """End this process when the process that started it dies (a `govhub serve --workers N` worker
    and its master). Without this, a master killed with SIGKILL leaves its workers serving on the
    inherited socket, and the next `govhub serve` finds the address in use.

    On Linux the kernel sends SIGTERM at the parent's death (PR_SET_PDEATHSIG); everywhere, a thread
    looks every `check_seconds` whether the parent is still the one that started this process, sends
    SIGTERM (a graceful stop) when it is not, and ends the process `grace_seconds` later if that did not.
    `parent_pid` is the parent this process was started by (default: its parent now); given, it also
    catches a parent that died before this was called.
    """
    parent = os.getppid() if parent_pid is None else parent_pid
    if deathsig and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %s", ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            log.warning("prctl is not available (%s); watching the parent process instead", exc)
    threading.Thread(target=_watch_parent, args=(parent, check_seconds, grace_seconds), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int, check_seconds: float, grace_seconds: float) -> None:
    # Also covers a parent that died before the death signal was asked for: we were reparented already.
    while os.getppid() == parent:
        time.sleep(check_seconds)
    log.warning("the parent process %s is gone; this worker stops", parent)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_seconds)
    os._exit(1)
