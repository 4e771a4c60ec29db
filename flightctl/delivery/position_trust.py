"""Whether the vehicle's position is one a parcel may be released on.

A GPS that jumps (multipath off a harbour wall, a receiver glitch) can drag the EKF with it: the interlocks
then see the vehicle on the drop point while it hovers 20 m away. Nothing on board can tell which position
is right after the jump, so a release needs a position with no reason for doubt:

- no GPS glitch flagged by the EKF (EKF_STATUS_REPORT) or announced by ArduPilot ("GPS Glitch...") within
  the settle time;
- GPS accuracy and satellites within the profile's limits, and GPS and EKF positions in agreement;
- no unexplained jump: position changes that the reported velocity does not account for are added up since
  take-off, and their sum must stay small (a glitch that came and went sums to nothing; one that stayed
  does not, however long ago it happened);
- the position steady while holding.

``PositionWatch`` keeps the running figures; ``position_doubts`` is the pure verdict on them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from flightctl.delivery.order import PositionTrustLimits
from flightctl.dialect import mavlink
from flightctl.geo import distance_m, offset_m_ne
from flightctl.vehicle.telemetry import StatusText, VehicleState

GLITCH_TEXTS = ("GPS Glitch", "EKF3 IMU0 emergency yaw reset", "position reset")
# A step this much larger than the velocity explains is a jump, not the rounding of a 5 Hz stream.
JUMP_DEADBAND_M = 0.5


@dataclass(frozen=True)
class PositionFigures:
    last_doubt_ms: int | None  # vehicle time of the last glitch flag, glitch text or jump
    unexplained_m: float  # size of the summed unexplained displacement since take-off
    hold_spread_m: float | None  # spread of the positions over the hold window; None before it is full


class PositionWatch:
    """Fed every observation; remembers what a single sample cannot show."""

    def __init__(self, limits: PositionTrustLimits) -> None:
        self._limits = limits
        self._last: tuple[int, float, float, tuple[float, float]] | None = None  # ms, lat, lon, velocity N/E
        self._unexplained_n = 0.0
        self._unexplained_e = 0.0
        self._last_doubt_ms: int | None = None
        self._recent: deque[tuple[int, float, float]] = deque()

    def update(self, state: VehicleState, texts: list[StatusText]) -> PositionFigures:
        # The position's own time: other messages move the vehicle clock on between position reports, and a
        # step timed by them would look like a jump at cruise speed.
        now = state.position_time_ms
        if now is None or state.position is None or state.velocity_ned_m_s is None or not state.armed:
            self._last = None
            return self.figures()
        flags = state.ekf_flags or 0
        if flags & mavlink.EKF_GPS_GLITCHING or any(g in t.text for t in texts for g in GLITCH_TEXTS):
            self._last_doubt_ms = now
        if self._last is not None and now == self._last[0]:
            return self.figures()  # no new position since the last look
        velocity = (state.velocity_ned_m_s[0], state.velocity_ned_m_s[1])
        lat, lon = state.position.lat_deg, state.position.lon_deg
        if self._last is not None and now > self._last[0]:
            then, lat0, lon0, velocity0 = self._last
            dt = (now - then) / 1000.0
            moved_n, moved_e = offset_m_ne(lat0, lon0, lat, lon)
            expected_n = (velocity0[0] + velocity[0]) / 2 * dt
            expected_e = (velocity0[1] + velocity[1]) / 2 * dt
            residual_n, residual_e = moved_n - expected_n, moved_e - expected_e
            if math.hypot(residual_n, residual_e) > JUMP_DEADBAND_M + 0.5 * dt:
                self._unexplained_n += residual_n
                self._unexplained_e += residual_e
                self._last_doubt_ms = now
        self._last = (now, lat, lon, velocity)
        self._recent.append((now, lat, lon))
        while self._recent and now - self._recent[0][0] > self._limits.hold_window_s * 1000:
            self._recent.popleft()
        return self.figures()

    def figures(self) -> PositionFigures:
        spread = None
        if len(self._recent) >= 2 and self._recent[-1][0] - self._recent[0][0] >= self._limits.hold_window_s * 900:
            _, lat0, lon0 = self._recent[-1]
            spread = max(math.hypot(*offset_m_ne(lat0, lon0, lat, lon)) for _, lat, lon in self._recent)
        return PositionFigures(self._last_doubt_ms, math.hypot(self._unexplained_n, self._unexplained_e), spread)


def position_doubts(
    limits: PositionTrustLimits, state: VehicleState, figures: PositionFigures, *, min_satellites: int
) -> list[str]:
    """Every reason not to trust the position for a release now; [] when there is none."""
    doubts: list[str] = []
    now = state.position_time_ms or state.time_boot_ms or 0
    if figures.last_doubt_ms is not None and now - figures.last_doubt_ms < limits.settle_after_reset_s * 1000:
        since = (now - figures.last_doubt_ms) / 1000
        doubts.append(f"GPS glitch or position jump {since:.0f} s ago (settle {limits.settle_after_reset_s:g} s)")
    if figures.unexplained_m > limits.max_gps_ekf_disagreement_m:
        doubts.append(f"the position jumped {figures.unexplained_m:.0f} m since take-off without moving there")
    if (state.gps_fix_type or 0) < 3:
        doubts.append(f"GPS fix {state.gps_fix_name}")
    if (state.gps_satellites or 0) < min_satellites:
        doubts.append(f"{state.gps_satellites or 0} GPS satellites (< {min_satellites})")
    if state.gps_hacc_m is not None and state.gps_hacc_m > limits.max_gps_hacc_m:  # not every receiver says
        doubts.append(f"GPS accuracy {state.gps_hacc_m:.1f} m > {limits.max_gps_hacc_m:g} m")
    if state.gps_position is not None and state.position is not None:
        apart = distance_m(state.gps_position, state.position)
        if apart > limits.max_gps_ekf_disagreement_m:
            doubts.append(f"GPS and EKF positions {apart:.1f} m apart (> {limits.max_gps_ekf_disagreement_m:g} m)")
    if figures.hold_spread_m is None:
        doubts.append(f"not yet holding for {limits.hold_window_s:g} s")
    elif figures.hold_spread_m > limits.max_hold_wander_m:
        doubts.append(
            f"position wandering {figures.hold_spread_m:.1f} m while holding (> {limits.max_hold_wander_m:g} m)"
        )
    return doubts
