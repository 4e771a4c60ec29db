"""What was planned for one order, as plain data for the journal: the route, the fence, the rally points, the
drop point and its zone (a drop), or the airstrips (a leg). Pure.

It is journaled once, when the go/no-go starts, so a report drawn from the journal alone shows the plan beside
what was flown, even after a config has changed or on a laptop that has none of the configs. The order's opaque
id travels with it; nothing else of the customer does (the drop point is a place, not a person).
"""

from __future__ import annotations

from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink

from flightctl.delivery.decide_leg import LegDelivery
from flightctl.delivery.planner import DeliveryPlan
from flightctl.geo import AltFrame, Location, offset
from flightctl.missions.geofence import fence_shapes
from flightctl.missions.model import MissionPlan

CIRCLE_POINTS = 72  # a circular zone or fence is recorded as this many vertices (5 degrees apart)
PLAN_RECORD_VERSION = 1


def plan_record(plan: DeliveryPlan | LegDelivery) -> dict[str, Any]:
    """The plan as JSON-ready data: ``kind`` "drop" or "leg", ``route`` [[lat, lon, alt_m], ...] (mission items
    after home, with the altitude in their own frame), ``operating_area`` and ``no_fly`` polygons [[lat, lon],
    ...] from the fence uploaded, ``rally`` points, then ``drop`` (target, zone, method) or ``airstrips``."""
    mission = plan.mission if isinstance(plan, DeliveryPlan) else plan.plan.mission
    record: dict[str, Any] = {"version": PLAN_RECORD_VERSION, **_mission_shapes(mission)}
    if isinstance(plan, DeliveryPlan):
        order, site = plan.order, plan.site
        drop = order.drop_location()
        zone = order.drop_zone
        ring = (
            [[p.lat, p.lon] for p in zone.polygon]
            if zone.polygon is not None
            else _circle(drop.lat_deg, drop.lon_deg, zone.radius_m or 0.0)
        )
        record |= {
            "kind": "drop",
            "home": [site.depot.lat, site.depot.lon],
            "places": [{"name": site.name, "lat": site.depot.lat, "lon": site.depot.lon}],
            "drop": {"lat": drop.lat_deg, "lon": drop.lon_deg, "zone": ring, "method": order.method.value},
        }
    else:
        strips = plan.plan.airstrips
        roles = (("origin", strips.origin), ("destination", strips.destination), ("alternate", strips.alternate))
        home = plan.plan.home
        record |= {
            "kind": "leg",
            "home": [home.lat_deg, home.lon_deg],
            "places": [
                {"name": f"{strip.name} ({strip.icao}, {role})", "lat": strip.arp.lat, "lon": strip.arp.lon}
                for role, strip in roles
            ],
            "leg": plan.plan.leg.name,
        }
    return record


def _mission_shapes(mission: MissionPlan) -> dict[str, Any]:
    route = [[loc.lat_deg, loc.lon_deg, round(loc.alt_m, 1)] for _seq, _item, loc in mission.route()]
    shapes = fence_shapes(mission.fence)
    inclusion: list[list[list[float]]] = []
    exclusion: list[list[list[float]]] = []
    for polygon in shapes.polygons:
        ring = [[lat / 1e7, lon / 1e7] for lat, lon in polygon.vertices_e7]
        (inclusion if polygon.inclusion else exclusion).append(ring)
    for circle in shapes.circles:
        lat_e7, lon_e7 = circle.center_e7
        ring = _circle(lat_e7 / 1e7, lon_e7 / 1e7, circle.radius_m)
        (inclusion if circle.inclusion else exclusion).append(ring)
    rally = [
        [item.x / 1e7, item.y / 1e7]
        for item in mission.rally
        if item.command == mavlink.MAV_CMD_NAV_RALLY_POINT and (item.x, item.y) != (0, 0)
    ]
    return {"route": route, "operating_area": inclusion, "no_fly": exclusion, "rally": rally}


def _circle(lat_deg: float, lon_deg: float, radius_m: float) -> list[list[float]]:
    centre = Location(lat_deg, lon_deg, 0.0, AltFrame.ABSOLUTE)
    points = [offset(centre, bearing_deg=i * 360 / CIRCLE_POINTS, distance_m=radius_m) for i in range(CIRCLE_POINTS)]
    return [[p.lat_deg, p.lon_deg] for p in points]
