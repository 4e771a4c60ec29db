"""Go/no-go for an island leg: the runways the winds allow at both ends and at the alternate, the aircraft
lined up on its departure runway, and the energy for the leg into the forecast wind with the reserve to reach
the alternate. Every check is evaluated, so a NO-GO says everything that is wrong, each with its numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from flightctl.delivery.energy import cruise_wh
from flightctl.delivery.events import DeliveryState
from flightctl.delivery.leg_planner import AirstripsOfLeg, LegPlan, plan_leg
from flightctl.delivery.legs import Leg
from flightctl.delivery.order import VehicleProfile
from flightctl.delivery.preflight import (
    Check,
    GoNoGo,
    battery_voltage_check,
    energy_on_board,
    navigation_checks,
)
from flightctl.delivery.routing import PlanningError
from flightctl.delivery.runway_choice import NoUsableRunway, SurfaceWind, wind_components
from flightctl.geo import bearing_deg, distance_m
from flightctl.vehicle.telemetry import VehicleState

# The aircraft must stand on its departure runway's threshold, pointing down it: ArduPlane takes off along
# the heading it has when the take-off starts.
LINED_UP_DISTANCE_M = 30.0
LINED_UP_HEADING_DEG = 10.0


@dataclass(frozen=True)
class LegBefore:
    """The leg a return leg turns around from, as its journal holds it."""

    order_id: str
    state: DeliveryState | None  # None: the journal does not know it
    arrived_s_ago: float | None  # since it ARRIVED; None if it never did


@dataclass(frozen=True)
class LegEnergy:
    leg_wh: float
    to_alternate_wh: float
    reserve_wh: float
    available_wh: float

    @property
    def margin_wh(self) -> float:
        return self.available_wh - self.leg_wh - self.to_alternate_wh - self.reserve_wh

    def summary(self) -> str:
        return (
            f"leg {self.leg_wh:.0f} Wh + on to the alternate {self.to_alternate_wh:.0f} Wh + reserve "
            f"{self.reserve_wh:.0f} Wh, has {self.available_wh:.0f} Wh, margin {self.margin_wh:.0f} Wh"
        )


def leg_energy(plan: LegPlan, *, parcel_kg: float, wind_aloft: SurfaceWind, available_wh: float) -> LegEnergy:
    """The leg flown into the forecast wind's headwind component along its track, then (with the parcel still
    on board) from the destination to the alternate into that wind's component on that track."""
    profile = plan.profile
    landing = plan.sequences[0]
    alternate = plan.sequences_at(plan.airstrips.alternate.icao)[0]
    track = bearing_deg(plan.home, landing.aim_point)
    on_track = bearing_deg(landing.aim_point, alternate.aim_point)
    headwind, _ = wind_components(track, wind_aloft)
    headwind_on, _ = wind_components(on_track, wind_aloft)
    climb_and_landing = profile.energy.climb_and_landing_wh
    return LegEnergy(
        leg_wh=cruise_wh(profile, plan.track_km, parcel_kg, headwind) + climb_and_landing,
        to_alternate_wh=cruise_wh(profile, plan.to_alternate_km, parcel_kg, headwind_on) + climb_and_landing,
        reserve_wh=profile.reserve_fraction * profile.usable_battery_wh,
        available_wh=available_wh,
    )


def leg_checks(
    leg: Leg,
    airstrips: AirstripsOfLeg,
    profile: VehicleProfile,
    state: VehicleState,
    *,
    winds: Mapping[str, SurfaceWind],
    wind_aloft: SurfaceWind,
    parcel_kg: float,
    now_utc: datetime,
    after_leg: LegBefore | None = None,
) -> tuple[GoNoGo, LegPlan | None]:
    """Every check, and the plan when there is one to fly (a GO needs it; a NO-GO may still have one).
    ``after_leg``: for a turnaround, the leg this one follows: its unload must have been confirmed, and the
    aircraft on the ground for the profile's turnaround time since it arrived."""
    checks = [*navigation_checks(profile, state), battery_voltage_check(profile, state)]
    if after_leg is not None:
        checks.append(_turnaround(profile, after_leg))
    checks.append(
        Check(
            "parcel mass",
            parcel_kg <= profile.max_payload_kg,
            f"{parcel_kg:g} kg (limit {profile.max_payload_kg:g} kg)",
        )
    )
    for strip in (airstrips.origin, airstrips.destination, airstrips.alternate):
        checks.append(_wind_measurement(profile, strip.name, winds.get(strip.icao), now_utc))
    plan: LegPlan | None = None
    try:
        plan = plan_leg(leg, airstrips, profile, winds)
    except NoUsableRunway as refused:
        role = "destination" if refused.airstrip.icao == airstrips.destination.icao else "alternate"
        if refused.airstrip.icao == airstrips.origin.icao:
            role = "departure"
        checks.append(Check(f"{role} runway", False, str(refused)))
    except PlanningError as refused:
        checks.append(Check("plan", False, str(refused)))
    if plan is None:
        return GoNoGo(tuple(checks)), None

    for role, assessment in (("departure runway", plan.departure), ("destination runway", plan.landing)):
        checks.append(Check(role, True, assessment.line()))
    alternate = plan.sequences_at(airstrips.alternate.icao)
    checks.append(Check("alternate runway", True, f"{len(alternate)} usable; best {_best(plan, airstrips)}"))
    checks.append(_lined_up(plan, state))
    available = energy_on_board(profile, state)
    if isinstance(available, Check):
        checks.append(available)
    else:
        energy = leg_energy(plan, parcel_kg=parcel_kg, wind_aloft=wind_aloft, available_wh=available)
        detail = f"{energy.summary()} (forecast aloft {wind_aloft.text()})"
        needed = energy.leg_wh + energy.to_alternate_wh
        budget = {"needed_wh": needed, "reserve_wh": energy.reserve_wh, "available_wh": energy.available_wh}
        checks.append(Check("energy", energy.margin_wh >= 0, detail, {k: round(v, 2) for k, v in budget.items()}))
    return GoNoGo(tuple(checks)), plan


def _turnaround(profile: VehicleProfile, before: LegBefore) -> Check:
    minimum_s = profile.fixed_wing.turnaround_min_s if profile.fixed_wing is not None else 0.0
    said = "unknown to this journal" if before.state is None else before.state.value
    if before.state is not DeliveryState.UNLOADED:
        return Check("turnaround", False, f"leg {before.order_id} is {said}: its unload has not been confirmed")
    waited = before.arrived_s_ago or 0.0
    detail = f"leg {before.order_id} is {said}, {waited:.0f} s on the ground (turnaround at least {minimum_s:g} s)"
    return Check("turnaround", waited >= minimum_s, detail)


def _best(plan: LegPlan, airstrips: AirstripsOfLeg) -> str:
    alternate = plan.sequences_at(airstrips.alternate.icao)[0].end
    return f"{alternate.name} ({alternate.heading_deg:03.0f} deg)"


def _wind_measurement(profile: VehicleProfile, where: str, wind: SurfaceWind | None, now_utc: datetime) -> Check:
    rules = profile.wind
    name = f"wind at {where}"
    if wind is None:
        if rules.waive_ground_measurement:
            return Check(name, True, "no measurement; waived by the profile (planned in calm air)")
        return Check(name, False, "no measurement: a runway cannot be chosen for an unknown wind")
    if wind.measured_at is None:
        if rules.waive_ground_measurement:
            return Check(name, True, f"{wind.text()}, time of measurement unknown; waived by the profile")
        return Check(name, False, f"{wind.text()}, but not when it was measured")
    age_s = (now_utc - wind.measured_at).total_seconds()
    limit_s = rules.ground_measurement_max_age_s
    detail = f"{wind.text()}, {age_s / 60:.0f} min old (limit {limit_s / 60:g} min)"
    return Check(name, -60 <= age_s <= limit_s, detail if age_s >= -60 else f"{wind.text()}, measured in the future")


def _lined_up(plan: LegPlan, state: VehicleState) -> Check:
    end = plan.departure.end
    if state.position is None or state.heading_deg is None:
        return Check("lined up", False, f"the vehicle reports no position or heading to check against {end.name}")
    off_m = distance_m(state.position, end.threshold)
    off_deg = abs((state.heading_deg - end.heading_deg + 180.0) % 360.0 - 180.0)
    ok = off_m <= LINED_UP_DISTANCE_M and off_deg <= LINED_UP_HEADING_DEG
    return Check(
        "lined up",
        ok,
        f"{off_m:.0f} m from the threshold of {end.name} (limit {LINED_UP_DISTANCE_M:g} m), heading "
        f"{state.heading_deg:03.0f} deg against the runway's {end.heading_deg:03.0f} (limit {LINED_UP_HEADING_DEG:g})",
    )
