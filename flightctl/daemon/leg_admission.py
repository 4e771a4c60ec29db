"""Whether the daemon takes an island leg now, and the leg planned for the winds its order came with. Pure.

What only the daemon knows is checked here: the aircraft flies legs, this is one of its configured legs, the
winds name its airstrips, the autopilot link is up and the aircraft is on the ground. The leg's go/no-go
(``leg_preflight``: the runways for the winds, lined up, the energy, the unload before a return) runs after
these, on the vehicle, and its NO-GO lines are the rest of the reasons.
"""

from __future__ import annotations

from collections.abc import Mapping

from flightctl.daemon.admission import standing_problems
from flightctl.delivery.decide_leg import LegDelivery
from flightctl.delivery.leg_files import LegSite
from flightctl.delivery.leg_planner import plan_leg
from flightctl.delivery.order import VehicleKind, VehicleProfile
from flightctl.delivery.runway_choice import CALM
from flightctl.errors import ConfigError
from flightctl.mqtt.requests import LegOrder, OrderRequest
from flightctl.vehicle.telemetry import VehicleState


def leg_order_problems(
    request: OrderRequest,
    legs: Mapping[str, LegSite],
    profile: VehicleProfile,
    vehicle: VehicleState,
    *,
    link_up: bool,
) -> list[str]:
    leg = _leg(request)
    problems: list[str] = []
    site = legs.get(leg.leg)
    if profile.kind is VehicleKind.MULTIROTOR:
        problems.append("this aircraft is a multirotor: it flies drops, not island legs")
    elif site is None:
        flies = ", ".join(sorted(legs)) or "none"
        problems.append(f"leg {leg.leg!r} is not one this aircraft is configured for (it flies: {flies})")
    if leg.parcel_kg > profile.max_payload_kg:
        problems.append(f"load {leg.parcel_kg:g} kg is over this aircraft's {profile.max_payload_kg:g} kg")
    if site is not None:
        icaos = {site.airstrips.origin.icao, site.airstrips.destination.icao, site.airstrips.alternate.icao}
        for icao in sorted(set(request.airstrip_winds or {}) - icaos):
            problems.append(f"airstrip_winds: {icao} is not an airstrip of leg {leg.leg} ({', '.join(sorted(icaos))})")
    return problems + standing_problems(vehicle, link_up=link_up, where="at its departure airstrip")


def leg_flight_or_problem(request: OrderRequest, site: LegSite, profile: VehicleProfile) -> LegDelivery | str:
    """The leg planned for the winds the order gives, or why it cannot be (a destination or alternate with no
    runway in limits for its wind, with every runway's numbers; a wind not given)."""
    leg = _leg(request)
    winds = dict(request.airstrip_winds or {})
    try:
        plan = plan_leg(site.leg, site.airstrips, profile, winds)
    except ConfigError as exc:
        return f"no plan for leg {leg.leg}: {exc}"
    return LegDelivery(
        leg.order_id, plan, leg.parcel_kg, winds=winds, wind_aloft=request.wind_aloft or CALM, follows=leg.follows
    )


def _leg(request: OrderRequest) -> LegOrder:
    if request.leg is None:
        raise ValueError("not a leg order")  # a bug: the worker asks only for a leg order
    return request.leg
