"""Release interlocks: the conditions under which a parcel may leave the aircraft. All must hold at the
moment of the decision; any that cannot be evaluated (no position, no ground speed) counts as failed."""

from __future__ import annotations

import math
from dataclasses import dataclass

from flightctl.delivery.order import DeliveryOrder, VehicleProfile, zone_contains
from flightctl.geo import distance_m
from flightctl.vehicle.telemetry import VehicleState


@dataclass(frozen=True)
class InterlockResult:
    failures: tuple[str, ...]
    distance_to_drop_m: float | None

    @property
    def ok(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        return "all interlocks satisfied" if self.ok else "; ".join(self.failures)


def release_interlocks(
    order: DeliveryOrder, profile: VehicleProfile, state: VehicleState, *, expected_alt_m: float | None
) -> InterlockResult:
    """``expected_alt_m``: the height the release is planned at, above home; None for a release on the ground,
    where the autopilot's land detector has said so ("Land complete") and a height above home says nothing."""
    failures: list[str] = []
    distance: float | None = None
    if not state.armed or state.mode != "AUTO":
        failures.append(f"vehicle not flying the mission (mode {state.mode}, armed {state.armed})")
    if state.position is None:
        failures.append("no position")
    else:
        distance = distance_m(order.drop_location(), state.position)
        if not zone_contains(order, state.position):
            failures.append(f"outside the drop zone ({distance:.1f} m from the drop point)")
    speed = state.groundspeed_m_s
    if speed is None or math.isnan(speed):
        failures.append("no ground speed")
    elif speed > profile.limits.max_ground_speed_m_s:
        failures.append(f"ground speed {speed:.2f} m/s > {profile.limits.max_ground_speed_m_s:g} m/s")
    alt = state.relative_alt_m
    tolerance = profile.limits.alt_tolerance_m
    if expected_alt_m is not None:
        if alt is None:
            failures.append("no altitude")
        elif abs(alt - expected_alt_m) > tolerance:
            failures.append(f"altitude {alt:.1f} m, expected {expected_alt_m:g} +- {tolerance:g} m")
    return InterlockResult(tuple(failures), distance)
