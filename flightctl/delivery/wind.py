"""Knowing the wind, and knowing when we do not.

On the ground a multirotor's EKF has nothing to estimate wind from, and without drag fusion (EK3_DRAG_*) or
an airspeed sensor ArduCopter never estimates it: its WIND message then says 0 m/s in a gale. So:

- before take-off the wind is a ground measurement for the depot (a weather station's reading and its age);
- in flight it is the larger of the autopilot's estimate (when it can make one) and our own, from the lean
  angle needed to hold the ground velocity: a multirotor leans into the air it moves through, and the drag
  that lean balances grows with airspeed (the same drag model as ArduPilot's EKF3 drag fusion, so the same
  coefficients serve both).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

from flightctl.delivery.order import WindRules
from flightctl.errors import ConfigError
from flightctl.vehicle.telemetry import VehicleState

GRAVITY_M_S2 = 9.80665
# Drag-fusion parameters whose presence (all > 0 in X, Y) means ArduCopter's EKF3 can estimate wind.
DRAG_PARAMS = ("EK3_DRAG_BCOEF_X", "EK3_DRAG_BCOEF_Y")
# An aircraft on a wing measures its airspeed: with the sensor in use, ArduPlane's wind estimate is real.
AIRSPEED_PARAM = "ARSPD_USE"


@dataclass(frozen=True)
class GroundWind:
    """A wind measurement for the depot: mean speed (m/s), when it was measured, by what."""

    speed_m_s: float
    measured_at: datetime
    source: str

    @classmethod
    def parse(cls, text: str, *, now: datetime, source: str = "command line") -> GroundWind:
        """``SPEED`` (measured now) or ``SPEED@ISO-8601 time with zone``, e.g. ``7.5@2026-11-28T09:40:00Z``."""
        speed_text, at, when_text = text.partition("@")
        if at and not when_text.strip():
            raise ConfigError(f"ground wind {text!r}: nothing after '@' (give the time, or leave out '@' for now)")
        try:
            speed = float(speed_text)
            when = datetime.fromisoformat(when_text.replace("Z", "+00:00")) if when_text else now
        except ValueError as exc:
            raise ConfigError(f"ground wind {text!r}: expected SPEED or SPEED@TIME (ISO 8601): {exc}") from None
        if not math.isfinite(speed) or speed < 0:
            raise ConfigError(f"ground wind {text!r}: the speed must be a number of m/s, 0 or more")
        if when.tzinfo is None:
            raise ConfigError(f"ground wind {text!r}: give the time with its zone (e.g. Z or +00:00)")
        if when > now:
            raise ConfigError(f"ground wind {text!r}: measured in the future")
        return cls(speed, when.astimezone(UTC), source)

    def age_s(self, now: datetime) -> float:
        return (now - self.measured_at).total_seconds()


def vehicle_estimates_wind(params: dict[str, float]) -> bool:
    """Whether the autopilot can estimate wind: its EKF's drag fusion is configured, or (on a wing) its
    airspeed sensor is in use."""
    return all(params.get(name, 0.0) > 0 for name in DRAG_PARAMS) or params.get(AIRSPEED_PARAM, 0.0) > 0


def own_wind_estimate(state: VehicleState, rules: WindRules) -> float | None:
    """Wind speed (m/s) from lean angle, heading and ground velocity; None without the data or a drag model.

    Holding a steady ground velocity, the thrust's horizontal part balances drag, which points against the
    velocity through the air: specific force ``0.5 * rho * v_air**2 / BCOEF + MCOEF * v_air``. So the lean
    gives the air velocity's direction and size, and the wind is ground velocity minus air velocity. It is
    only as good as the steadiness: the caller smooths it and an abort needs it to persist.
    """
    bcoef = rules.drag_bcoef_kg_m2
    if (
        bcoef is None
        or state.roll_deg is None
        or state.pitch_deg is None
        or state.yaw_deg is None
        or state.velocity_ned_m_s is None
    ):
        return None
    roll, pitch, yaw = (math.radians(a) for a in (state.roll_deg, state.pitch_deg, state.yaw_deg))
    # Thrust's horizontal specific force in the body's level frame: nose down (pitch < 0) pushes forward,
    # right side down (roll > 0) pushes right.
    forward, right = -GRAVITY_M_S2 * math.tan(pitch), GRAVITY_M_S2 * math.tan(roll)
    north = forward * math.cos(yaw) - right * math.sin(yaw)
    east = forward * math.sin(yaw) + right * math.cos(yaw)
    force = math.hypot(north, east)
    air_speed = _air_speed_for(force, bcoef, rules.drag_mcoef_per_s, rules.air_density_kg_m3)
    air_n, air_e = (north / force * air_speed, east / force * air_speed) if force > 0 else (0.0, 0.0)
    ground_n, ground_e, _down = state.velocity_ned_m_s
    return math.hypot(ground_n - air_n, ground_e - air_e)


def _air_speed_for(force: float, bcoef: float, mcoef: float, rho: float) -> float:
    """Solve ``0.5 * rho / bcoef * v**2 + mcoef * v = force`` for v >= 0."""
    a = 0.5 * rho / bcoef
    return (-mcoef + math.sqrt(mcoef * mcoef + 4 * a * force)) / (2 * a)


class OwnWindEstimate:
    """``own_wind_estimate`` averaged over the last few samples: a turn or a burst of acceleration is not wind."""

    def __init__(self, rules: WindRules, samples: int = 20) -> None:
        self._rules = rules
        self._recent: deque[float] = deque(maxlen=samples)

    def update(self, state: VehicleState) -> float | None:
        estimate = own_wind_estimate(state, self._rules) if state.armed else None
        if estimate is None:
            self._recent.clear()
            return None
        self._recent.append(estimate)
        return sum(self._recent) / len(self._recent)
