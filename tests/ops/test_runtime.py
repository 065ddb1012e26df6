"""Tuning of a serving process: what start-up built is frozen out of the collector's sight."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ops.runtime import GC_YOUNGEST_THRESHOLD, tune_gc_for_serving


@pytest.fixture()
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_serving_freezes_start_up_objects_and_collects_young_garbage_less_often() -> None:
    built_at_start_up = {"routes": [["/exchange/grants/{id}/lookup"]]}
    assert any(o is built_at_start_up for o in gc.get_objects())  # the collector scans it over and over
    tune_gc_for_serving()
    assert not any(o is built_at_start_up for o in gc.get_objects())  # frozen: no collection scans it again
    served_later = {"request": [["body"]]}
    assert any(o is served_later for o in gc.get_objects())  # what requests allocate is still collected
    assert gc.get_threshold()[0] == GC_YOUNGEST_THRESHOLD
