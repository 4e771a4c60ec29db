"""What held the event loop: a stall's length and where the loop was, logged by the process it happened in.

A telemetry sample or a page view that arrives while the loop runs something long waits it out, and nothing in
an asyncio program says what that was. ``LoopStalls`` says it. The loop beats every ``period_ms`` (a timer
callback that notes the time); a watcher thread looks at the beat as often. When the beat is more than
``warn_ms`` late, the watcher takes the loop thread's stack, which is then the code holding the loop, and when
the loop beats again it logs how long it was held and that stack. Code that holds the loop inside C without
releasing the GIL keeps the watcher out too: that stall is logged with its length and "no stack".

The cost is a timer callback and a thread wake-up per period, measured on this 2-core machine at 0.22 % of a
core at the default 200 ms, 0.4 % at 100 ms and 1.6 % at 25 ms: a daemon's whole budget is 5 %. So by default
it names stalls over 100 ms (every one over 200 ms; a shorter one when a beat falls due inside it), and
``FLIGHTCTL_LOOP_STALL_MS`` sets a finer threshold (the period half of it) for a diagnosis or a bench.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

STACK_FRAMES = 6  # the innermost frames named in a stall's log line
ENVIRONMENT = "FLIGHTCTL_LOOP_STALL_MS"
FINEST_MS = 10.0  # finer would beat every 5 ms or less: over 6 % of a core, more than a daemon may spend


@dataclass
class LoopStall:
    held_ms: float
    where: list[str]  # innermost last, "file:line in function"; empty when no stack could be taken


@dataclass
class LoopStalls:
    """``start()`` from the loop to watch; ``stop()`` to end. Each stall over ``warn_ms`` is logged and kept
    (the newest ``keep``)."""

    warn_ms: float = 100.0
    period_ms: float = 200.0
    keep: int = 50
    logged_per_minute: int = 30  # a machine overloaded for minutes says so, without flooding its log
    stalls: list[LoopStall] = field(default_factory=list)
    beats: int = 0
    unlogged: int = 0  # stalls over the rate, counted in the next line logged
    _minute: tuple[float, int] = (0.0, 0)  # (when this minute's logging began, lines logged in it)
    _beat_at: float = 0.0
    _taken: tuple[int, list[str]] | None = None  # (the beat it was taken after, the stack)
    _loop: asyncio.AbstractEventLoop | None = None
    _timer: asyncio.TimerHandle | None = None
    _thread: threading.Thread | None = None
    _loop_thread: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def configured(cls) -> LoopStalls:
        """The default watch, or the threshold ``FLIGHTCTL_LOOP_STALL_MS`` names (period half of it). A value
        that is not a number of milliseconds from 10 to 10,000 is logged and the default kept: a diagnostic
        setting never stops a daemon."""
        text = os.environ.get(ENVIRONMENT)
        if text is None:
            return cls()
        try:
            warn_ms = float(text)
        except ValueError:
            warn_ms = float("nan")
        if not FINEST_MS <= warn_ms <= 10_000:
            log.warning("%s=%r is not milliseconds from %g to 10000: stalls over the default watched", ENVIRONMENT,
                        text[:40], FINEST_MS)  # fmt: skip
            return cls()
        return cls(warn_ms=warn_ms, period_ms=warn_ms / 2)

    def start(self) -> LoopStalls:
        if self._loop is not None:
            return self
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._beat_at = time.monotonic()
        self._timer = self._loop.call_later(self.period_ms / 1000, self._beat)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._watch, name="loop stall watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        self._loop = None

    @property
    def stack_taken(self) -> bool:
        """Whether the watcher has taken the loop's stack during the stall now under way."""
        taken = self._taken
        return taken is not None and taken[0] == self.beats

    def _beat(self) -> None:
        # On the loop: how late this beat came is how long the loop was held beyond its period.
        now = time.monotonic()
        held_ms = (now - self._beat_at) * 1000 - self.period_ms
        taken = self._taken
        if held_ms > self.warn_ms:
            where = taken[1] if taken is not None and taken[0] == self.beats else []
            self._record(LoopStall(round(held_ms, 1), where))
        self._taken = None
        self.beats += 1
        self._beat_at = now
        if self._loop is not None:
            self._timer = self._loop.call_later(self.period_ms / 1000, self._beat)

    def _record(self, stall: LoopStall) -> None:
        self.stalls.append(stall)
        del self.stalls[: -self.keep]
        began, logged = self._minute
        now = time.monotonic()
        if now - began >= 60:
            began, logged = now, 0
        if logged >= self.logged_per_minute:
            self.unlogged += 1
            self._minute = (began, logged)
            return
        self._minute = (began, logged + 1)
        unlogged, self.unlogged = self.unlogged, 0
        log.warning(
            "the event loop was held for %.0f ms%s%s",
            stall.held_ms,
            f", in: {' <- '.join(reversed(stall.where))}"
            if stall.where
            else " (no stack: shorter than the watch's period, or inside C code)",
            f" ({unlogged} more stalls not logged before this one)" if unlogged else "",
        )

    def _watch(self) -> None:
        # The watcher thread: it only reads the beat and, once per late beat, the loop thread's stack.
        period_s = self.period_ms / 1000
        while not self._stopping.wait(period_s):
            beat = self.beats
            late_ms = (time.monotonic() - self._beat_at) * 1000 - self.period_ms
            if late_ms > self.warn_ms and (self._taken is None or self._taken[0] != beat):
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    summary = traceback.extract_stack(frame)[-STACK_FRAMES:]
                    self._taken = (beat, [f"{_short(f.filename)}:{f.lineno} in {f.name}" for f in summary])


def _short(filename: str) -> str:
    """A path from its package on (``flightctl/...``, ``asyncio/...``), or its last two parts."""
    parts = filename.replace("\\", "/").split("/")
    for anchor in ("flightctl", "asyncio", "site-packages"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + (anchor == "site-packages") :])
    return "/".join(parts[-2:])
