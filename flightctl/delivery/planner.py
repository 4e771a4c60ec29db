"""Order + site + profile -> the mission, fence and rally points that fly it.

The mission never lets the parcel go on its own. Above the drop point it holds at a *gate*
(NAV_LOITER_TIME) and only the controller's go-ahead (set-current to the first drop item) leads on to the
drop. If the go-ahead never comes (controller dead, link lost) the hold times out and a DO_JUMP takes the
vehicle home with the parcel: without the controller, the defined action is always "return, no release".
For the drops the controller commands itself (release at height, winch) there is a second hold at the
release height, guarded the same way.

    0 home | 1 takeoff | 2 speed | transit... | gate hold | jump-home | drop items... | climb | return... | land

A VTOL (an ArduPlane QuadPlane) flies the same mission with its own take-off and landing commands; it cruises
on the wing and hovers from a point short of the drop: transit... | approach | to hover | above the drop | gate
... | climb | to the wing | return... | VTOL land. ArduPlane has no winch, so a VTOL drops by release at height (the
controller opening the gripper at the hover hold) or by payload place: ArduPlane lands on NAV_PAYLOAD_PLACE and
waits, motors stopped, for what its Lua example does and the controller does here (release, then go around).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from flightctl.delivery.energy import EnergyEstimate, delivery_energy
from flightctl.delivery.order import DeliveryMethod, DeliveryOrder, LatLon, Site, VehicleKind, VehicleProfile
from flightctl.delivery.routing import PlanningError, plan_route
from flightctl.dialect import mavlink
from flightctl.geo import AltFrame, Location, bearing_deg, distance_m, offset
from flightctl.missions.geofence import FencePolygon, FenceShapes, fence_items, return_point_item
from flightctl.missions.model import MissionItem, MissionPlan

# Keep this far from no-fly zones and the operating area's edge.
ROUTE_MARGIN_M = 50.0
# A VTOL goes from the wing to the hover this far short of the drop point (it slows down over about 150 m).
VTOL_HOVER_FROM_M = 300.0
VTOL_STATE_MC = 3  # MAV_VTOL_STATE: hover on the lift motors
VTOL_STATE_FW = 4  # on the wing


@dataclass(frozen=True)
class DeliveryPlan:
    order: DeliveryOrder
    site: Site
    profile: VehicleProfile
    mission: MissionPlan
    gate_seq: int  # hold above the drop point until the controller says go
    drop_seq: int  # first drop item: where the controller's go-ahead sets the mission
    release_hold_seq: int | None  # second hold where the controller releases (release at height, winch)
    climb_seq: int  # first item after the drop: the way home starts here
    land_seq: int
    outbound_km: float
    return_km: float

    @property
    def order_id(self) -> str:
        return self.order.order_id

    @property
    def outbound_time_s(self) -> float:
        """Take-off to over the drop point, still air: the climb (at about 2.5 m/s) and the outbound leg."""
        return self.profile.cruise_alt_m / 2.5 + self.outbound_km * 1000 / self.profile.cruise_speed_m_s

    @property
    def drop_alt_m(self) -> float:
        drop = self.profile.drop
        if self.order.method is DeliveryMethod.RELEASE_AT_HEIGHT:
            return drop.release_height_m
        if self.order.method is DeliveryMethod.WINCH:
            return drop.winch_hover_alt_m
        return drop.approach_alt_m

    def energy(self, headwind_m_s: float, available_wh: float | None = None) -> EnergyEstimate:
        return delivery_energy(
            self.profile,
            method=self.order.method,
            parcel_kg=self.order.parcel_kg,
            outbound_km=self.outbound_km,
            return_km=self.return_km,
            headwind_m_s=headwind_m_s,
            available_wh=available_wh,
        )


def _path_km(points: list[Location]) -> float:
    return sum(distance_m(a, b) for a, b in itertools.pairwise(points)) / 1000.0


def _vertices_e7(points: list[LatLon]) -> tuple[tuple[int, int], ...]:
    return tuple((round(p.lat * 1e7), round(p.lon * 1e7)) for p in points)


def _hold(location: Location, seconds: float) -> MissionItem:
    return MissionItem.loiter_time(location, seconds)


def _jump(target_seq: int) -> MissionItem:
    return MissionItem(mavlink.MAV_CMD_DO_JUMP, param1=target_seq, param2=1)


def _transition(state: int) -> MissionItem:
    return MissionItem(mavlink.MAV_CMD_DO_VTOL_TRANSITION, param1=state)


def kind_problem(order: DeliveryOrder, profile: VehicleProfile) -> str | None:
    """Why an aircraft of this kind cannot deliver this order at all, whatever its state; None if it can. What
    a dispatcher asks before choosing the aircraft, and the planner before planning."""
    if profile.kind is VehicleKind.FIXED_WING:
        return (
            f"profile {profile.name!r} is a fixed-wing: it delivers by landing at an airstrip (flightctl leg), "
            "not at a drop point"
        )
    if profile.kind is VehicleKind.VTOL and order.method is DeliveryMethod.WINCH:
        return (
            "a VTOL (ArduPlane QuadPlane) delivers by payload_place or release_at_height, not winch: ArduPlane has "
            "no winch driver (AP_Winch is built for Copter only)"
        )
    return None


def plan_delivery(order: DeliveryOrder, site: Site, profile: VehicleProfile) -> DeliveryPlan:
    if (problem := kind_problem(order, profile)) is not None:
        raise PlanningError(problem)
    vtol = profile.kind is VehicleKind.VTOL
    home = site.home()
    cruise = profile.cruise_alt_m
    drop_settings = profile.drop
    above_drop = order.drop.location(cruise, AltFrame.RELATIVE)
    no_fly = [zone.polygon for zone in site.no_fly]
    out = plan_route(
        home, above_drop, no_fly=no_fly, operating_area=site.operating_area, margin_m=ROUTE_MARGIN_M, alt_m=cruise
    )
    back = list(reversed(out))
    depot_at_cruise = home.with_alt(cruise, AltFrame.RELATIVE)

    takeoff = (
        MissionItem(mavlink.MAV_CMD_NAV_VTOL_TAKEOFF, frame=mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, z=cruise)
        if vtol
        else MissionItem.takeoff(cruise)
    )
    speed = (
        MissionItem(mavlink.MAV_CMD_DO_CHANGE_SPEED, param1=0, param2=profile.cruise_speed_m_s, param3=-1)
        if vtol
        else MissionItem.change_speed(profile.cruise_speed_m_s)
    )
    items: list[MissionItem] = [MissionItem.home(home), takeoff, speed]
    items += [MissionItem.waypoint(point) for point in out]
    if vtol:
        last = out[-1] if out else home.with_alt(cruise, AltFrame.RELATIVE)
        if distance_m(last, above_drop) > 2 * VTOL_HOVER_FROM_M:
            short = offset(above_drop, bearing_deg=bearing_deg(above_drop, last), distance_m=VTOL_HOVER_FROM_M)
            items.append(MissionItem.waypoint(short))
        items.append(_transition(VTOL_STATE_MC))
    items.append(MissionItem.waypoint(above_drop))
    gate = order.drop.location(drop_settings.approach_alt_m, AltFrame.RELATIVE)
    gate_seq = len(items)
    items.append(_hold(gate, drop_settings.gate_timeout_s))
    jump_index = len(items)
    items.append(MissionItem(0))  # placeholder: the jump target (climb) is known once the drop items are laid
    drop_seq = len(items)
    release_hold_seq: int | None = None
    if order.method is DeliveryMethod.PAYLOAD_PLACE:
        descent_m = drop_settings.approach_alt_m + drop_settings.payload_place_max_descent_m
        items.append(MissionItem.payload_place(order.drop.location(0.0, AltFrame.RELATIVE), max_descent_m=descent_m))
        hold_jump_index = None
    else:
        low = order.drop.location(
            drop_settings.release_height_m
            if order.method is DeliveryMethod.RELEASE_AT_HEIGHT
            else drop_settings.winch_hover_alt_m,
            AltFrame.RELATIVE,
        )
        items.append(MissionItem.waypoint(low))
        release_hold_seq = len(items)
        items.append(_hold(low, drop_settings.release_confirm_timeout_s + 60))
        hold_jump_index = len(items)
        items.append(MissionItem(0))
    climb_seq = len(items)
    items.append(MissionItem.waypoint(above_drop))
    items[jump_index] = _jump(climb_seq)
    if hold_jump_index is not None:
        items[hold_jump_index] = _jump(climb_seq)
    if vtol:
        items.append(_transition(VTOL_STATE_FW))
    items += [MissionItem.waypoint(point) for point in back]
    touchdown = home.with_alt(0.0, AltFrame.RELATIVE)
    if vtol:
        land_seq = len(items)
        items.append(MissionItem.at(mavlink.MAV_CMD_NAV_VTOL_LAND, touchdown))
    else:
        items.append(MissionItem.waypoint(depot_at_cruise))
        land_seq = len(items)
        items.append(MissionItem.land(touchdown))

    polygons = [FencePolygon(True, _vertices_e7(site.operating_area))]
    polygons += [FencePolygon(False, _vertices_e7(zone.polygon)) for zone in site.no_fly]
    fence = fence_items(FenceShapes(polygons, circles=[], return_point=return_point_item(depot_at_cruise)))
    rally = [MissionItem.rally_point(Location(r.lat, r.lon, r.alt_m, AltFrame.RELATIVE)) for r in site.rally]
    mission = MissionPlan(items, fence, rally, name=f"delivery {order.order_id}")
    route_out = [home, *out, above_drop]
    return DeliveryPlan(
        order=order,
        site=site,
        profile=profile,
        mission=mission,
        gate_seq=gate_seq,
        drop_seq=drop_seq,
        release_hold_seq=release_hold_seq,
        climb_seq=climb_seq,
        land_seq=land_seq,
        outbound_km=_path_km(route_out),
        return_km=_path_km(list(reversed(route_out))),
    )
