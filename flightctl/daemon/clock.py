"""The time on everything the drone sends: the autopilot's GPS-derived UTC when it has one, else the companion
computer's own clock (a Raspberry Pi has no real-time clock and may boot at sea without NTP), saying which."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flightctl.delivery.journal import Clock
from flightctl.vehicle.telemetry import VehicleState

# SYSTEM_TIME comes once a second; one older than this is from an autopilot we no longer hear.
GPS_TIME_MAX_AGE_S = 10.0


def message_time(state: VehicleState, now_monotonic_s: float) -> tuple[datetime, str]:
    if state.utc_us is not None and state.utc_received_monotonic_s is not None:
        age_s = now_monotonic_s - state.utc_received_monotonic_s
        if 0 <= age_s <= GPS_TIME_MAX_AGE_S:
            return datetime.fromtimestamp(state.utc_us / 1e6, UTC) + timedelta(seconds=age_s), "gps"
    return datetime.now(UTC), "companion"


def vehicle_clock(state: Callable[[], VehicleState]) -> Clock:
    return lambda: message_time(state(), time.monotonic())
