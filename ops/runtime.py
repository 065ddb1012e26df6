"""Process-level tuning of a serving hub process (not of tests or commands)."""

from __future__ import annotations

import gc

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
