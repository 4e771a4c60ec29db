"""Whether the daemon takes an order now: every reason it does not, with its numbers. Pure.

What ``intake`` checks for any delivery (operating area, no-fly zones, payload, window) plus what only the
aircraft knows at this moment: the autopilot link is up, the vehicle is on the ground at this depot. Go/no-go
(battery, wind, GPS) runs after these, on the vehicle, and its NO-GO lines are the rest of the reasons.
"""

from __future__ import annotations

from datetime import datetime

from flightctl.delivery.intake import intake_problems
from flightctl.delivery.order import DeliveryOrder, Site, VehicleKind, VehicleProfile
from flightctl.delivery.planner import DeliveryPlan, plan_delivery
from flightctl.delivery.routing import PlanningError
from flightctl.geo import distance_m
from flightctl.vehicle.telemetry import VehicleState


def order_problems(
    order: DeliveryOrder,
    site: Site,
    profile: VehicleProfile,
    vehicle: VehicleState,
    *,
    link_up: bool,
    depot_radius_m: float,
    now_utc: datetime,
) -> list[str]:
    if profile.kind is VehicleKind.FIXED_WING:
        return ["this aircraft is a fixed-wing: it lands at airstrips and flies island legs (a leg order), not drops"]
    problems = intake_problems(order, site, profile, now_utc)
    problems += standing_problems(vehicle, link_up=link_up, where="at the depot")
    if link_up and vehicle.position is not None:
        away = distance_m(vehicle.position, site.home())
        if away > depot_radius_m:
            where = f"the vehicle is {away:.0f} m from the {site.name} depot"
            problems.append(f"not at the depot: {where} (at most {depot_radius_m:g} m)")
    return problems


def standing_problems(vehicle: VehicleState, *, link_up: bool, where: str) -> list[str]:
    """What keeps an aircraft that is to take an order from being known to stand on the ground ``where``."""
    if not link_up:
        return ["the autopilot link is down"]
    problems = [f"the vehicle is armed: not on the ground {where}"] if vehicle.armed else []
    if vehicle.position is None:
        problems.append("the vehicle has not reported a position")
    return problems


def plan_or_problem(order: DeliveryOrder, site: Site, profile: VehicleProfile) -> DeliveryPlan | str:
    try:
        return plan_delivery(order, site, profile)
    except PlanningError as exc:
        return f"no route: {exc}"
