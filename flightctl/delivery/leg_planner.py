"""Leg + airstrips + profile + winds -> the mission a fixed-wing aircraft flies from one airstrip to another.

    0 home (the departure threshold) | 1 take-off | 2 climb-out | 3 airspeed | cruise... |
    for each usable runway at the destination, best first, then each at the alternate, then at the origin:
        DO_LAND_START | initial fix | final fix | NAV_LAND | DO_GO_AROUND | missed approach | DO_JUMP back once

The destination's best runway comes first, so the mission flown to its end lands there. Every other sequence
is reached only by a jump: ArduPlane's RTL with RTL_AUTOLAND 2 starts the nearest DO_LAND_START (a return
or an abort lands at the nearest airstrip, on a runway the wind allows), a go-around repeats its own approach
once and then falls through to the next sequence, and a diversion sets the mission to the alternate's.
Only runway directions inside the limits for the measured wind get a sequence.

Altitudes are above home (the departure field): an airstrip higher or lower than home lands at its own height.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union

from flightctl.delivery.airstrips import Airstrip, RunwayEnd
from flightctl.delivery.fixed_wing import FixedWingSettings
from flightctl.delivery.legs import Leg
from flightctl.delivery.order import VehicleProfile
from flightctl.delivery.routing import LocalFrame, PlanningError
from flightctl.delivery.runway_choice import (
    CALM,
    RunwayAssessment,
    RunwayLimits,
    SurfaceWind,
    choose_runway,
    usable_runways,
)
from flightctl.dialect import mavlink
from flightctl.geo import AltFrame, Location, distance_m
from flightctl.missions.geofence import FencePolygon, FenceShapes, fence_items, return_point_item
from flightctl.missions.model import MissionItem, MissionPlan

# Cruise waypoints at most this far apart: progress is reported per waypoint, and a long leg over the sea
# follows the geodesic rather than a rhumb line.
CRUISE_SPACING_M = 10_000.0
# ArduPilot keeps an inclusion polygon's vertices in the fence store: keep the corridor's outline short.
MAX_FENCE_VERTICES = 60
GRAVITY_M_S2 = 9.80665


@dataclass(frozen=True)
class LandingSequence:
    end: RunwayEnd
    start_seq: int  # DO_LAND_START
    land_seq: int  # NAV_LAND
    aim_point: Location  # where NAV_LAND aims, ABSOLUTE


@dataclass(frozen=True)
class AirstripsOfLeg:
    origin: Airstrip
    destination: Airstrip
    alternate: Airstrip


@dataclass(frozen=True)
class LegPlan:
    leg: Leg
    airstrips: AirstripsOfLeg
    profile: VehicleProfile
    mission: MissionPlan
    departure: RunwayAssessment
    landing: RunwayAssessment  # the destination runway the wind calls for
    sequences: tuple[LandingSequence, ...]  # the destination's first, then the alternate's, then the origin's
    track_km: float  # departure threshold to the destination's aim point, along the planned path
    to_alternate_km: float  # the destination's aim point to the alternate's nearest aim point

    def sequences_at(self, icao: str) -> list[LandingSequence]:
        return [sequence for sequence in self.sequences if sequence.end.airstrip == icao]

    @property
    def home(self) -> Location:
        return self.departure.end.threshold

    def crossings(self) -> str:
        return ", ".join(f"{w.name} (km {w.from_km:g}-{w.to_km:g})" for w in self.leg.water) or "none named"


def takeoff_limits(profile: VehicleProfile) -> RunwayLimits:
    wing = _wing(profile)
    return RunwayLimits(wing.max_crosswind_m_s, wing.max_tailwind_m_s, needed_length_m=wing.takeoff_run_m)


def landing_limits(profile: VehicleProfile) -> RunwayLimits:
    wing = _wing(profile)
    return RunwayLimits(wing.max_crosswind_m_s, wing.max_tailwind_m_s, needed_length_m=wing.landing_distance_m)


def turn_radius_m(profile: VehicleProfile) -> float:
    """The tightest turn flown in cruise: v^2 / (g tan(bank))."""
    bank = math.radians(_wing(profile).max_bank_deg)
    return profile.cruise_speed_m_s**2 / (GRAVITY_M_S2 * math.tan(bank))


def plan_leg(
    leg: Leg,
    airstrips: AirstripsOfLeg,
    profile: VehicleProfile,
    winds: Mapping[str, SurfaceWind],
) -> LegPlan:
    """The leg's mission. ``winds``: the measured surface wind by airstrip ICAO (a missing one is calm only for
    the departure, where the crew sees the windsock; a missing destination or alternate wind raises)."""
    wing = _wing(profile)
    origin, destination, alternate = airstrips.origin, airstrips.destination, airstrips.alternate
    for strip in (destination, alternate):
        if strip.icao not in winds:
            raise PlanningError(f"no measured wind for {strip.name} ({strip.icao}): a runway cannot be chosen")
    departure = choose_runway(origin, winds.get(origin.icao, CALM), takeoff_limits(profile))
    landings = usable_runways(destination, winds[destination.icao], landing_limits(profile))
    if not landings:
        choose_runway(destination, winds[destination.icao], landing_limits(profile))  # raises, with the numbers
    alternates = usable_runways(alternate, winds[alternate.icao], landing_limits(profile))
    if not alternates:
        choose_runway(alternate, winds[alternate.icao], landing_limits(profile))  # raises, with the numbers

    home = departure.end.threshold
    field = origin.elevation_m

    def above_home(point: Location) -> Location:
        return point.with_alt(point.alt_m - field, AltFrame.RELATIVE)

    cruise_m = leg.cruise_height_m
    run_and_climb_m = wing.takeoff_run_m + wing.climb_out_height_m / wing.climb_gradient
    climb_out = above_home(departure.end.along(run_and_climb_m, wing.climb_out_height_m))

    items: list[MissionItem] = [
        MissionItem.home(home),
        MissionItem(
            mavlink.MAV_CMD_NAV_TAKEOFF,
            frame=mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
            param1=wing.takeoff_pitch_deg,
            z=wing.climb_out_height_m,
        ),
        MissionItem.waypoint(climb_out),
        MissionItem(mavlink.MAV_CMD_DO_CHANGE_SPEED, param1=0, param2=profile.cruise_speed_m_s, param3=-1),
    ]
    first_fix = above_home(landings[0].end.along(-destination.approach.initial_fix_m))
    cruise = _cruise_points(climb_out.with_alt(cruise_m, AltFrame.RELATIVE), first_fix)
    items += [MissionItem.waypoint(point) for point in cruise]

    # The way back, should an RTL come before the leg is far along: the departure field's usable runways.
    home_runways = usable_runways(origin, winds.get(origin.icao, CALM), landing_limits(profile))
    sequences: list[LandingSequence] = []
    for strip, options in ((destination, landings), (alternate, alternates), (origin, home_runways)):
        for option in options:
            sequence_items, aim = _landing_sequence(strip, option.end, wing.glide_slope_deg, above_home, len(items))
            sequences.append(LandingSequence(option.end, len(items), len(items) + 3, aim))
            items += sequence_items

    path = [home, climb_out, *cruise, first_fix, sequences[0].aim_point]
    track_km = sum(distance_m(a, b) for a, b in itertools.pairwise(path)) / 1000.0
    alternate_aims = [s.aim_point for s in sequences if s.end.airstrip == alternate.icao]
    to_alternate_km = min(distance_m(sequences[0].aim_point, aim) for aim in alternate_aims) / 1000.0

    corridor = _corridor(home, [*path, *(s.aim_point for s in sequences)], leg, airstrips)
    fence = fence_items(
        FenceShapes(
            [corridor], circles=[], return_point=return_point_item(first_fix.with_alt(cruise_m, AltFrame.RELATIVE))
        )
    )
    mission = MissionPlan(items, fence, [], name=f"leg {leg.name}")
    return LegPlan(
        leg=leg,
        airstrips=airstrips,
        profile=profile,
        mission=mission,
        departure=departure,
        landing=landings[0],
        sequences=tuple(sequences),
        track_km=track_km,
        to_alternate_km=to_alternate_km,
    )


def _landing_sequence(
    strip: Airstrip, end: RunwayEnd, glide_slope_deg: float, above_home: Callable[[Location], Location], start: int
) -> tuple[list[MissionItem], Location]:
    approach = strip.approach
    final_height = (approach.final_fix_m + approach.touchdown_m) * math.tan(math.radians(glide_slope_deg))
    initial = above_home(end.along(-approach.initial_fix_m, approach.initial_height_m))
    final = above_home(end.along(-approach.final_fix_m, min(final_height, approach.initial_height_m)))
    aim = end.along(approach.touchdown_m)
    missed = above_home(end.along(approach.touchdown_m + approach.missed_approach_m, approach.missed_approach_height_m))
    items = [
        MissionItem.at(mavlink.MAV_CMD_DO_LAND_START, initial),
        MissionItem.waypoint(initial),
        MissionItem.waypoint(final),
        MissionItem.land(above_home(aim)),
        # A commanded go-around (MAV_CMD_DO_GO_AROUND) starts the nearest of these: climb straight ahead, then
        # fly this approach once more; a second go-around falls through to the next sequence.
        MissionItem.at(mavlink.MAV_CMD_DO_GO_AROUND, missed),
        MissionItem.waypoint(missed),
        MissionItem(mavlink.MAV_CMD_DO_JUMP, param1=start, param2=1),
    ]
    return items, aim


def _cruise_points(start: Location, end: Location) -> list[Location]:
    """Waypoints at ``start``'s height along the geodesic to ``end`` (where the landing sequence takes over),
    at most CRUISE_SPACING_M apart: ``start`` itself and ``end`` excluded."""
    from geographiclib.geodesic import Geodesic

    line = Geodesic.WGS84.InverseLine(start.lat_deg, start.lon_deg, end.lat_deg, end.lon_deg)
    count = max(1, math.ceil(line.s13 / CRUISE_SPACING_M))
    points = []
    for index in range(1, count):
        position = line.Position(line.s13 * index / count)
        points.append(Location(position["lat2"], position["lon2"], start.alt_m, start.frame))
    return points


def _corridor(home: Location, points: list[Location], leg: Leg, airstrips: AirstripsOfLeg) -> FencePolygon:
    """The inclusion fence: the planned path widened by the corridor's half width, and room to fly every
    approach and missed approach at all three airstrips."""
    frame = LocalFrame(home)
    xy = [frame.xy(p.lat_deg, p.lon_deg) for p in points]
    shapes = [LineString(xy).buffer(leg.corridor_half_width_m)]
    for strip in (airstrips.origin, airstrips.destination, airstrips.alternate):
        reach = max(strip.approach.initial_fix_m, strip.approach.missed_approach_m) + leg.corridor_half_width_m
        shapes.append(Point(frame.xy(strip.arp.lat, strip.arp.lon)).buffer(reach))
    centres = [frame.xy(s.arp.lat, s.arp.lon) for s in (airstrips.destination, airstrips.alternate)]
    shapes.append(LineString(centres).buffer(leg.corridor_half_width_m))
    outline = unary_union(shapes)
    tolerance = 25.0
    while True:
        simple = outline.simplify(tolerance)
        if isinstance(simple, Polygon) and len(simple.exterior.coords) - 1 <= MAX_FENCE_VERTICES:
            break
        tolerance *= 2
    vertices = []
    for x, y in simple.exterior.coords[:-1]:
        location = frame.location(x, y, 0.0, AltFrame.RELATIVE)
        vertices.append((location.lat_e7, location.lon_e7))
    return FencePolygon(True, tuple(vertices))


def _wing(profile: VehicleProfile) -> FixedWingSettings:
    if profile.fixed_wing is None:
        raise PlanningError(f"profile {profile.name!r} is a {profile.kind.value}: it cannot fly an airstrip leg")
    return profile.fixed_wing


# Fence types ArduPlane enforces on a leg: the maximum altitude (1) and the corridor polygon (4).
FENCE_ALT_AND_POLYGON = 5
FENCE_ACTION_RTL = 1  # on a plane with RTL_AUTOLAND 2: straight to the nearest landing sequence
RTL_NEAREST_LANDING_SEQUENCE = 2
# Room above the cruise height before the altitude fence: the climb to it overshoots a little.
FENCE_ALT_MARGIN_M = 50.0


def flight_params(plan: LegPlan) -> dict[str, float]:
    """The parameters a leg is flown with: how ArduPlane flares, that an RTL (commanded, a failsafe's, a fence
    breach's) flies straight to the nearest DO_LAND_START, and the fence."""
    wing = _wing(plan.profile)
    return {
        "AIRSPEED_CRUISE": plan.profile.cruise_speed_m_s,
        "LAND_FLARE_SEC": wing.land_flare_s,
        "LAND_PITCH_DEG": wing.land_pitch_deg,
        "RTL_AUTOLAND": RTL_NEAREST_LANDING_SEQUENCE,
        "FENCE_TYPE": FENCE_ALT_AND_POLYGON,
        "FENCE_ALT_MAX": plan.leg.cruise_height_m + FENCE_ALT_MARGIN_M,
        "FENCE_ACTION": FENCE_ACTION_RTL,
        "FENCE_ENABLE": 1,
    }
