"""What held the event loop: a stall's length and the code that held it, named by the process itself."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time

import pytest

from flightctl.loop_stalls import LoopStalls
from tests.support.conditions import eventually


def hold_the_loop_in_a_sleep(stalls: LoopStalls, at_least_s: float) -> None:
    """A blocking call on the loop, as a synchronous file or socket call would be: for ``at_least_s``, and on
    until the watcher has seen it (a loaded machine may schedule the watcher thread late)."""
    ends, gives_up = time.monotonic() + at_least_s, time.monotonic() + 10
    while time.monotonic() < ends or (not stalls.stack_taken and time.monotonic() < gives_up):
        time.sleep(0.005)


def hold_the_loop_computing(stalls: LoopStalls, at_least_s: float) -> int:
    """CPU-bound Python on the loop, as a large plan or encode would be: the GIL held but for switch intervals."""
    rounds, ends, gives_up = 0, time.monotonic() + at_least_s, time.monotonic() + 10
    while time.monotonic() < ends or (not stalls.stack_taken and time.monotonic() < gives_up):
        hashlib.sha256(b"x" * 1000).digest()
        rounds += 1
    return rounds


def kept_at_least(stalls: LoopStalls, count: int) -> bool:
    return len(stalls.stalls) >= count


async def test_a_blocking_call_on_the_loop_is_logged_with_its_length_and_where_it_was(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test that 120 ms of a blocking call on the loop is logged as a stall of about that length, naming the
    function that held the loop, and kept for the process to report."""
    stalls = LoopStalls(warn_ms=30, period_ms=10).start()
    try:
        await eventually(lambda: stalls.beats >= 3)
        with caplog.at_level(logging.WARNING, logger="flightctl.loop_stalls"):
            hold_the_loop_in_a_sleep(stalls, 0.12)
            await eventually(lambda: bool(stalls.stalls))
    finally:
        stalls.stop()
    (stall,) = stalls.stalls
    assert stall.held_ms >= 100, stall
    assert any("hold_the_loop_in_a_sleep" in frame for frame in stall.where), stall.where
    (record,) = [r for r in caplog.records if r.name == "flightctl.loop_stalls"]
    assert "the event loop was held for" in record.getMessage()
    assert "test_loop_stalls.py" in record.getMessage()
    assert "hold_the_loop_in_a_sleep" in record.getMessage()


async def test_cpu_bound_python_on_the_loop_is_named_too() -> None:
    """Test that Python computing on the loop (the GIL held, released only at switch intervals) is caught in
    the act: the watcher thread takes the loop thread's stack while it computes."""
    stalls = LoopStalls(warn_ms=30, period_ms=10).start()
    try:
        await eventually(lambda: stalls.beats >= 3)
        hold_the_loop_computing(stalls, 0.15)
        await eventually(lambda: bool(stalls.stalls))
    finally:
        stalls.stop()
    assert any("hold_the_loop_computing" in frame for frame in stalls.stalls[0].where), stalls.stalls


async def test_a_loop_that_keeps_its_time_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Test that a loop only awaiting (timers, short callbacks) is never reported, over 30 beats, and that a
    stopped watch beats no more."""
    stalls = LoopStalls(warn_ms=250, period_ms=10)  # a loaded test machine's scheduling is no stall of ours
    with caplog.at_level(logging.WARNING, logger="flightctl.loop_stalls"):
        stalls.start()
        try:
            for _ in range(30):
                await asyncio.sleep(0)  # short work between awaits, as the daemon's handlers do
            await eventually(lambda: stalls.beats >= 30, timeout_s=5)
        finally:
            stalls.stop()
    assert stalls.stalls == []
    assert not [r for r in caplog.records if r.name == "flightctl.loop_stalls"]
    beats = stalls.beats
    time.sleep(0.05)  # noqa: ASYNC251 - the loop held on purpose after the watch stopped: nothing may beat
    await asyncio.sleep(0)
    assert stalls.beats == beats


async def test_a_loop_held_again_and_again_logs_at_most_its_rate_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test that a loop held five times in a row logs only ``logged_per_minute`` lines, keeps every stall, and
    counts the ones it did not log."""
    stalls = LoopStalls(warn_ms=30, period_ms=10, logged_per_minute=2).start()
    try:
        with caplog.at_level(logging.WARNING, logger="flightctl.loop_stalls"):
            for held in range(1, 6):
                await eventually(lambda: stalls.beats >= 2)
                hold_the_loop_in_a_sleep(stalls, 0.06)
                await eventually(functools.partial(kept_at_least, stalls, held))
    finally:
        stalls.stop()
    assert len(stalls.stalls) == 5
    assert len([r for r in caplog.records if r.name == "flightctl.loop_stalls"]) == 2
    assert stalls.unlogged == 3


@pytest.mark.parametrize("value", ["abc", "5", "NaN", "1e999", "-20", "", "20" * 30])
def test_a_bad_threshold_in_the_environment_is_logged_and_the_default_kept(
    value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Test that FLIGHTCTL_LOOP_STALL_MS set to anything but 10 to 10,000 ms is said in the log and changes
    nothing: the default watch (stalls over 100 ms, a beat every 200 ms), never a daemon that will not start."""
    monkeypatch.setenv("FLIGHTCTL_LOOP_STALL_MS", value)
    with caplog.at_level(logging.WARNING, logger="flightctl.loop_stalls"):
        stalls = LoopStalls.configured()
    assert (stalls.warn_ms, stalls.period_ms) == (100.0, 200.0)
    (record,) = caplog.records
    assert "FLIGHTCTL_LOOP_STALL_MS" in record.getMessage()


def test_a_threshold_in_the_environment_sets_the_watch_finer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test that FLIGHTCTL_LOOP_STALL_MS=20 watches for stalls over 20 ms with a beat every 10 ms, and that
    without it the watch is the default."""
    monkeypatch.setenv("FLIGHTCTL_LOOP_STALL_MS", "20")
    assert (LoopStalls.configured().warn_ms, LoopStalls.configured().period_ms) == (20.0, 10.0)
    monkeypatch.delenv("FLIGHTCTL_LOOP_STALL_MS")
    assert (LoopStalls.configured().warn_ms, LoopStalls.configured().period_ms) == (100.0, 200.0)
