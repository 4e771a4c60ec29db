"""Garbage collection kept off a long-running process's latency path, and its pauses made visible.

CPython's oldest-generation collection walks every object the process holds. After the imports a daemon holds
about 90,000 (pymavlink's dialect, pydantic's schemas, the config), and a full collection of them took 24 ms on
this 2-core machine: the event loop stands still for that long, and a telemetry sample or a page view that
arrives then waits it out. (It is not what the one ~40 ms telemetry sample at 10 Hz waits for: with start-up
frozen the daemon logged no collection over 10 ms in a whole ``bench/telemetry.py`` run, and that sample
remained.) ``gc.freeze()`` once start-up is done
moves those objects to the permanent generation, which no collection walks again; collections then cost what
the process has made since. ``GcPauses`` times every collection and logs any that held the loop for longer
than ``warn_ms``, so a pause that returns has a name in the log.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


def freeze_startup() -> int:
    """Collect what start-up left for collection, then freeze everything still alive. Returns how many objects
    are now frozen. Call once, when start-up is over and before the latency-sensitive work begins."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@dataclass
class GcPauses:
    """Each collection's duration, per generation; the longest; those over ``warn_ms``, logged."""

    warn_ms: float = 10.0
    longest_ms: float = 0.0
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    over_warn: int = 0
    _started: float | None = None
    _installed: bool = False

    def install(self) -> GcPauses:
        if not self._installed:
            gc.callbacks.append(self._on_gc)
            self._installed = True
        return self

    def remove(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._on_gc)
            self._installed = False

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # Called by the interpreter around every collection: it must never raise, and does almost nothing.
        if phase == "start":
            self._started = time.perf_counter()
            return
        if self._started is None:
            return
        pause_ms = (time.perf_counter() - self._started) * 1000
        self._started = None
        generation = info.get("generation", 0)
        if 0 <= generation < len(self.collections):
            self.collections[generation] += 1
        self.longest_ms = max(self.longest_ms, pause_ms)
        if pause_ms > self.warn_ms:
            self.over_warn += 1
            log.warning(
                "a garbage collection (generation %d, %d objects collected) held the event loop for %.1f ms",
                generation,
                info.get("collected", 0),
                pause_ms,
            )
