"""Garbage collection off the latency path: start-up's objects frozen, and every collection timed."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from flightctl.gc_pauses import GcPauses, freeze_startup


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test run collects as before


def collected_under(pauses: GcPauses, caplog: pytest.LogCaptureFixture) -> GcPauses:
    """One full collection with ``pauses`` installed (and removed after), its warnings captured."""
    pauses.install()
    try:
        with caplog.at_level(logging.WARNING, logger="flightctl.gc_pauses"):
            gc.collect()
    finally:
        pauses.remove()
    return pauses


def test_freezing_start_up_leaves_a_full_collection_nothing_of_it_to_walk(unfrozen: None) -> None:
    """Test that after freeze_startup every object alive is in the permanent generation: a full collection
    then walks none of them (gc.get_objects for the oldest generation holds only what came after)."""
    assert len(gc.get_objects(generation=2)) > 1000, "a test run's imports: thousands of objects to walk"
    frozen = freeze_startup()
    assert frozen == gc.get_freeze_count() > 1000
    made_after = [[n] for n in range(100)]
    assert len(gc.get_objects(generation=2)) < 100 + len(made_after), "start-up's objects are no longer walked"


def test_every_collection_is_timed_and_a_long_one_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Test that GcPauses counts collections per generation and keeps the longest, and logs one that took
    longer than its threshold (0 here, so every collection is 'long'), naming the generation."""
    pauses = collected_under(GcPauses(warn_ms=0.0), caplog)
    assert pauses.collections[2] >= 1
    assert pauses.longest_ms > 0
    assert pauses.over_warn >= 1
    assert any("generation 2" in r.getMessage() and "held the event loop" in r.getMessage() for r in caplog.records)
    counted = list(pauses.collections)
    gc.collect()
    assert pauses.collections == counted, "removed: no longer timed"


def test_a_pause_under_the_threshold_is_counted_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    pauses = collected_under(GcPauses(warn_ms=60_000.0), caplog)
    assert pauses.collections[2] >= 1
    assert pauses.over_warn == 0
    assert caplog.records == []
