"""Telemetry for the ground: sampled from the vehicle's state as positions arrive, at most ``rate_hz``, through a
bounded queue that drops the oldest sample and counts the drops. Nothing here can hold up the link's reader
or the sequencer: taking a sample is a dict built in the reader's callback, and the queue never blocks a put.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flightctl.delivery.events import DeliveryState
from flightctl.vehicle.telemetry import VehicleState

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """A queue of at most ``size`` items whose ``put`` never waits: when full, the oldest item goes."""

    def __init__(self, size: int) -> None:
        self._items: deque[T] = deque(maxlen=size)
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, item: T) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(item)
        self._ready.set()

    async def get(self) -> T:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class DeliveryStatus:
    """What the daemon is doing, for telemetry and the online message."""

    order_id: str | None = None
    state: DeliveryState | None = None
    distance_to_go_m: float | None = None
    remote_id: dict[str, Any] | None = None  # RemoteIdStatus.report(): None without Remote ID


@dataclass(frozen=True)
class Sample:
    received_unix_s: float  # when the MAVLink message that triggered it was received (companion clock)
    monotonic_s: float
    data: dict[str, Any]


def _finite(value: float | None, digits: int) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def telemetry_data(state: VehicleState, delivery: DeliveryStatus, received_unix_s: float) -> dict[str, Any]:
    """The telemetry message's data: JSON-safe (no NaN from a bad packet), units in the names."""
    position = state.position
    return {
        "lat_deg": None if position is None else _finite(position.lat_deg, 7),
        "lon_deg": None if position is None else _finite(position.lon_deg, 7),
        "alt_amsl_m": None if position is None else _finite(position.alt_m, 2),
        "relative_alt_m": _finite(state.relative_alt_m, 2),
        "ground_speed_m_s": _finite(state.groundspeed_m_s, 2),
        "heading_deg": _finite(state.heading_deg, 1),
        "battery_v": _finite(state.battery_voltage_v, 2),
        "battery_pct": state.battery_remaining_pct,
        "mode": state.mode,
        "armed": state.armed,
        "gps_fix": state.gps_fix_name,
        "gps_satellites": state.gps_satellites,
        "ekf_ok": state.ekf_nav_ready,
        "order_id": delivery.order_id,
        "delivery_state": None if delivery.state is None else delivery.state.value,
        "distance_to_go_m": _finite(delivery.distance_to_go_m, 1),
        "received_unix_s": round(received_unix_s, 6),
        "remote_id": delivery.remote_id,
    }


class TelemetrySampler:
    """Turns the vehicle's position reports into at most ``rate_hz`` samples a second, into a drop-oldest queue."""

    def __init__(
        self, state: Callable[[], VehicleState], delivery: Callable[[], DeliveryStatus], *, rate_hz: float, size: int
    ) -> None:
        self._state = state
        self._delivery = delivery
        # A report arriving a little early (link jitter) still counts: at 10 Hz from a 10 Hz stream, a strict
        # 100 ms would drop every other one.
        self._min_interval_s = 0.8 / rate_hz
        self._last_s = -math.inf
        self.queue: DropOldestQueue[Sample] = DropOldestQueue(size)

    def on_position(self, _message: object) -> None:
        now = time.monotonic()
        if now - self._last_s < self._min_interval_s:
            return
        self._last_s = now
        received = time.time()
        self.queue.put(Sample(received, now, telemetry_data(self._state(), self._delivery(), received)))
