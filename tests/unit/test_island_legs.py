"""Airstrips, runway choice by wind, and the fixed-wing leg's mission: decided as data, no vehicle."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from shapely.geometry import Point, Polygon

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.airstrips import Airstrip
from flightctl.delivery.leg_planner import AirstripsOfLeg, LegPlan, plan_leg, turn_radius_m
from flightctl.delivery.legs import Leg
from flightctl.delivery.order import VehicleKind, VehicleProfile
from flightctl.delivery.routing import PlanningError
from flightctl.delivery.runway_choice import (
    NoUsableRunway,
    RunwayLimits,
    SurfaceWind,
    choose_runway,
    wind_components,
)
from flightctl.dialect import mavlink as m
from flightctl.errors import ConfigError
from flightctl.geo import AltFrame, bearing_deg, distance_m
from flightctl.missions.model import MissionType

PLANE = read_yaml_model(named_config("profiles", "sitl-plane"), VehicleProfile)
QUAD = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)
LIMITS = RunwayLimits(max_crosswind_m_s=8, max_tailwind_m_s=2, needed_length_m=400)


def airstrip(name: str) -> Airstrip:
    return read_yaml_model(named_config("airstrips", name), Airstrip)


def leg(name: str) -> Leg:
    return read_yaml_model(named_config("legs", name), Leg)


def airstrips_of(the_leg: Leg) -> AirstripsOfLeg:
    return AirstripsOfLeg(airstrip(the_leg.origin), airstrip(the_leg.destination), airstrip(the_leg.alternate))


def wind(from_deg: float, speed: float, gust: float | None = None) -> SurfaceWind:
    return SurfaceWind(from_deg=from_deg, speed_m_s=speed, gust_m_s=gust)


def plan(name: str = "kirkwall-north-ronaldsay", **winds: SurfaceWind) -> LegPlan:
    the_leg = leg(name)
    strips = airstrips_of(the_leg)
    measured = {strip.icao: winds.get(strip.icao, wind(0, 0)) for strip in (strips.destination, strips.alternate)}
    if "origin" in winds:
        measured[strips.origin.icao] = winds["origin"]
    return plan_leg(the_leg, strips, PLANE, measured)


# ---- site data -------------------------------------------------------------------------------------------


def test_every_shipped_airstrip_and_leg_loads_and_names_its_source() -> None:
    """Test that each shipped airstrip validates, cites where its figures come from, and each leg's airstrips
    exist and are as far apart as the routes are (Kirkwall-North Ronaldsay about 53 km, Newquay-St Mary's
    about 110 km)."""
    strips = {path.stem: airstrip(path.stem) for path in (named_config("airstrips", "x").parent).glob("*.yaml")}
    assert {"kirkwall", "north-ronaldsay", "sanday", "newquay", "st-marys", "lands-end"} <= set(strips)
    for strip in strips.values():
        assert "AIP" in strip.source
    lengths = {}
    for path in named_config("legs", "x").parent.glob("*.yaml"):
        the_leg = leg(path.stem)
        ends = airstrips_of(the_leg)
        lengths[path.stem] = (
            distance_m(
                ends.origin.arp.location(0, AltFrame.RELATIVE), ends.destination.arp.location(0, AltFrame.RELATIVE)
            )
            / 1000
        )
    assert lengths["kirkwall-north-ronaldsay"] == pytest.approx(52.8, abs=0.5)
    assert lengths["newquay-st-marys"] == pytest.approx(109.6, abs=0.5)


def test_a_runway_end_is_where_the_strip_is_and_faces_its_designator() -> None:
    """Test that the two ends of a strip lie its length apart, facing each other, with the centre between."""
    ends = airstrip("kirkwall").ends()
    assert [end.designator for end in ends] == ["09", "27"]
    assert distance_m(ends[0].threshold, ends[1].threshold) == pytest.approx(1428, abs=0.5)
    assert bearing_deg(ends[0].threshold, ends[1].threshold) == pytest.approx(89.5, abs=0.1)
    assert ends[1].heading_deg == pytest.approx(269.5)
    assert ends[0].threshold.alt_m == 18
    assert ends[0].threshold.frame is AltFrame.ABSOLUTE


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"designators": "09/28"}, "not opposite directions"),
        ({"designators": "27/09"}, "is not the direction of 27"),
        ({"length_m": 0}, "greater than 0"),
    ],
)
def test_a_mistyped_runway_is_refused_with_what_is_wrong(
    change: dict[str, object], problem: str, tmp_path: Path
) -> None:
    """Test that a runway whose designators disagree with each other or with its bearing is refused."""
    runway = {"designators": "09/27", "true_bearing_deg": 89.5, "centre": {"lat": 58.95, "lon": -2.9}, "length_m": 1000}
    strip = {"icao": "EGPA", "name": "Kirkwall", "arp": {"lat": 58.95, "lon": -2.9}, "elevation_m": 18,
             "source": "UK AIP", "runways": [runway | change]}  # fmt: skip
    path = tmp_path / "strip.yaml"
    import yaml

    path.write_text(yaml.safe_dump(strip))
    with pytest.raises(ConfigError, match=problem):
        read_yaml_model(path, Airstrip)


def test_a_profile_says_what_it_is_and_a_wing_needs_its_settings() -> None:
    """Test that the quad is a multirotor by default, the plane a fixed-wing with its wing settings, and that
    a fixed-wing profile without them (or a multirotor with them) is refused."""
    assert QUAD.kind is VehicleKind.MULTIROTOR
    assert QUAD.fixed_wing is None
    assert PLANE.kind is VehicleKind.FIXED_WING
    assert PLANE.fixed_wing is not None
    with pytest.raises(ValueError, match="needs a fixed_wing section"):
        VehicleProfile.model_validate(QUAD.model_dump() | {"kind": "fixed-wing"})
    with pytest.raises(ValueError, match="has no fixed_wing section"):
        VehicleProfile.model_validate(PLANE.model_dump() | {"kind": "multirotor"})


# ---- runway choice ---------------------------------------------------------------------------------------


def test_wind_components_split_the_wind_along_and_across_the_runway() -> None:
    """Test head and crosswind: straight down the runway, at 90 degrees, from behind, and gusts counting."""
    assert wind_components(30, wind(30, 10)) == pytest.approx((10, 0), abs=1e-9)
    assert wind_components(30, wind(120, 10)) == pytest.approx((0, 10), abs=1e-9)
    assert wind_components(30, wind(210, 10)) == pytest.approx((-10, 0), abs=1e-9)
    assert wind_components(90, wind(60, 10, gust=16)) == pytest.approx((16 * math.cos(math.radians(30)), 8), abs=1e-9)


@pytest.mark.parametrize(("from_deg", "designator"), [(30, "03"), (210, "21"), (350, "03"), (250, "21"), (0, "03")])
def test_the_runway_with_the_most_headwind_is_chosen(from_deg: float, designator: str) -> None:
    """Test that North Ronaldsay's 03 is chosen for a north-easterly and 21 for a south-westerly."""
    chosen = choose_runway(airstrip("north-ronaldsay"), wind(from_deg, 5 if from_deg in (350, 250) else 10), LIMITS)
    assert chosen.end.designator == designator
    assert chosen.usable
    assert chosen.headwind_m_s > 0


def test_no_usable_runway_gives_every_direction_with_its_numbers() -> None:
    """Test that a 10 m/s wind straight across North Ronaldsay's strip is refused with the crosswind figure of
    each direction and the limit (the strip's own 9 m/s is stricter than nothing, the profile's 8 applies)."""
    with pytest.raises(NoUsableRunway) as caught:
        choose_runway(airstrip("north-ronaldsay"), wind(120, 10), LIMITS)
    message = str(caught.value)
    assert "North Ronaldsay (EGEN)" in message
    assert "120 deg at 10 m/s" in message
    assert "EGEN runway 03 (030 deg): headwind -0.1 m/s, crosswind 10.0 m/s: crosswind 10.0 m/s over" in message
    assert "EGEN runway 21 (210 deg): headwind +0.1 m/s, crosswind 10.0 m/s: crosswind 10.0 m/s over" in message
    assert message.count("crosswind 10.0 m/s over the limit of 8 m/s") == 2


def test_the_strips_own_crosswind_limit_applies_when_stricter() -> None:
    """Test that a strip limit under the aircraft's is the one applied."""
    generous = RunwayLimits(max_crosswind_m_s=12, max_tailwind_m_s=2, needed_length_m=100)
    with pytest.raises(NoUsableRunway, match="over the limit of 9 m/s"):
        choose_runway(airstrip("north-ronaldsay"), wind(120, 9.5), generous)
    assert choose_runway(airstrip("kirkwall"), wind(0, 9.5), generous).end.designator in ("09", "27")


def test_a_tailwind_and_a_short_runway_are_refused() -> None:
    """Test the tailwind limit, and a strip shorter than the aircraft needs."""
    short = RunwayLimits(max_crosswind_m_s=8, max_tailwind_m_s=2, needed_length_m=600)
    with pytest.raises(NoUsableRunway, match="526 m long, the aircraft needs 600 m"):
        choose_runway(airstrip("north-ronaldsay"), wind(30, 3), short)


# ---- the leg's mission -----------------------------------------------------------------------------------


def _commands(the_plan: LegPlan) -> list[int]:
    return [item.command for item in the_plan.mission.items(MissionType.MISSION)]


def test_a_leg_takes_off_into_the_wind_climbs_out_straight_and_cruises_at_its_height() -> None:
    """Test the first items: home at the departure threshold, NAV_TAKEOFF with the profile's pitch, a climb-out
    point straight ahead on the runway's heading, the cruise airspeed, then cruise waypoints at the leg's
    height no more than 10 km apart."""
    the_plan = plan(origin=wind(270, 6))
    assert the_plan.departure.end.designator == "27"
    items = the_plan.mission.items(MissionType.MISSION)
    home = items[0].location()
    assert home is not None
    assert distance_m(home, the_plan.departure.end.threshold) < 0.1
    assert items[1].command == m.MAV_CMD_NAV_TAKEOFF
    assert items[1].param1 == 15
    assert items[1].z == 60
    climb_out = items[2].location()
    assert climb_out is not None
    assert climb_out.alt_m == 60
    assert bearing_deg(home, climb_out) == pytest.approx(269.5, abs=0.5)
    assert distance_m(home, climb_out) == pytest.approx(150 + 60 / 0.1, abs=1)
    assert items[3].command == m.MAV_CMD_DO_CHANGE_SPEED
    assert items[3].param1 == 0
    assert items[3].param2 == 22
    first_sequence = the_plan.sequences[0].start_seq
    cruise = [item.location() for item in items[4:first_sequence]]
    assert len(cruise) == 4  # about 49 km from the climb-out to the initial fix: five legs under 10 km
    assert all(point is not None and point.alt_m == 120 for point in cruise)
    initial_fix = items[first_sequence + 1].location()
    legs = [climb_out, *cruise, initial_fix]
    assert all(distance_m(a, b) <= 10_000.5 for a, b in itertools.pairwise(legs))  # type: ignore[arg-type]
    assert turn_radius_m(PLANE) < 100  # 22 m/s at 30 degrees of bank: no cruise leg is shorter than a turn


@pytest.mark.parametrize(("from_deg", "first"), [(30, "03"), (210, "21")])
def test_the_landing_sequences_are_the_usable_runways_best_first_then_the_alternate(
    from_deg: float, first: str
) -> None:
    """Test that with the wind down the strip the destination's headwind end comes first, the tailwind end
    (10 m/s, over the 2 m/s limit) gets no sequence, the alternate's usable end follows, and the departure
    field's last (an RTL soon after take-off lands back there)."""
    the_plan = plan(EGEN=wind(from_deg, 10), EGES=wind(from_deg, 10))
    assert the_plan.landing.end.designator == first
    assert [(s.end.airstrip, s.end.designator) for s in the_plan.sequences] == [
        ("EGEN", first), ("EGES", first), ("EGPA", "09"), ("EGPA", "27"),  # Kirkwall calm: both ways, to return
    ]  # fmt: skip


def test_a_landing_sequence_is_an_approach_on_the_profiles_glide_slope_and_a_missed_approach() -> None:
    """Test one sequence item by item: DO_LAND_START at the initial fix, the initial fix at its height, the
    final fix on the 4 degree glide slope to the aim point, NAV_LAND at the aim point on the centreline,
    DO_GO_AROUND and the climb straight ahead, then a jump back to DO_LAND_START once."""
    the_plan = plan(EGEN=wind(30, 5), EGES=wind(30, 5))
    sequence = the_plan.sequences[0]
    items = the_plan.mission.items(MissionType.MISSION)
    seq = items[sequence.start_seq : sequence.start_seq + 7]
    assert [item.command for item in seq] == [
        m.MAV_CMD_DO_LAND_START, m.MAV_CMD_NAV_WAYPOINT, m.MAV_CMD_NAV_WAYPOINT, m.MAV_CMD_NAV_LAND,
        m.MAV_CMD_DO_GO_AROUND, m.MAV_CMD_NAV_WAYPOINT, m.MAV_CMD_DO_JUMP,
    ]  # fmt: skip
    assert sequence.land_seq == sequence.start_seq + 3
    initial, final, land, missed = (seq[i].location() for i in (1, 2, 3, 5))
    assert initial
    assert final
    assert land
    assert missed
    end = sequence.end
    # Heights above home: North Ronaldsay (12 m) is 6 m below Kirkwall (18 m).
    assert land.alt_m == pytest.approx(-6)
    assert initial.alt_m == pytest.approx(80 - 6)
    glide = math.degrees(math.atan((final.alt_m - land.alt_m) / distance_m(final, land)))
    assert glide == pytest.approx(4.0, abs=0.05)
    for point in (initial, final, land, missed):
        off_line = distance_m(point, end.along(0)) * math.sin(
            math.radians(bearing_deg(end.along(0), point) - end.heading_deg)
        )
        assert abs(off_line) < 1.0, "every approach point is on the extended centreline"
    assert distance_m(end.threshold, land) == pytest.approx(100, abs=0.5)
    assert seq[6].param1 == sequence.start_seq
    assert seq[6].param2 == 1
    assert seq[0].location() == initial.with_alt(initial.alt_m, initial.frame)


def test_the_fence_covers_the_whole_leg_and_every_approach() -> None:
    """Test that the inclusion fence holds every mission waypoint (approaches and missed approaches at the
    destination and the alternate included) with room to spare, in at most 60 vertices."""
    the_plan = plan("newquay-st-marys", EGHE=wind(150, 8), EGHC=wind(150, 8))
    fence = the_plan.mission.items(MissionType.FENCE)
    polygon_items = [item for item in fence if item.command == m.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION]
    assert 3 <= len(polygon_items) <= 60
    polygon = Polygon([(item.y / 1e7, item.x / 1e7) for item in polygon_items])
    for _, item, where in the_plan.mission.route():
        assert polygon.contains(Point(where.lon_deg, where.lat_deg)), f"{item.name} at {where} is outside the fence"
    assert the_plan.mission.items(MissionType.RALLY) == []
    assert the_plan.track_km == pytest.approx(110, abs=6)


def test_a_leg_with_no_usable_runway_at_its_destination_is_not_planned() -> None:
    """Test that a crosswind at the destination refuses the plan with the runway and crosswind numbers, and a
    missing wind measurement for it is refused too."""
    with pytest.raises(NoUsableRunway, match=r"North Ronaldsay \(EGEN\).*crosswind 10.0 m/s over the limit of 8"):
        plan(EGEN=wind(120, 10))
    the_leg = leg("kirkwall-north-ronaldsay")
    with pytest.raises(PlanningError, match="no measured wind for North Ronaldsay"):
        plan_leg(the_leg, airstrips_of(the_leg), PLANE, {})


def test_a_multirotor_profile_cannot_fly_a_leg() -> None:
    """Test that planning a leg with the quad says why it cannot."""
    the_leg = leg("kirkwall-north-ronaldsay")
    with pytest.raises(PlanningError, match="is a multirotor: it cannot fly an airstrip leg"):
        plan_leg(the_leg, airstrips_of(the_leg), QUAD, {"EGEN": wind(0, 0), "EGES": wind(0, 0)})


# ---- the command line ------------------------------------------------------------------------------------


def test_leg_plan_prints_every_runway_and_writes_a_mission_a_ground_station_loads(tmp_path: Path) -> None:
    """Test `flightctl leg plan` with winds at three airstrips: the runway table, the chosen ends, the JSON
    record, and a QGC .plan file that reads back as the planner's mission and corridor."""
    import json

    from typer.testing import CliRunner

    from flightctl.cli import app
    from flightctl.missions.formats import load_plan

    runner = CliRunner()
    out = tmp_path / "leg.plan"
    winds = [
        "--airstrip-wind",
        "EGPA=060/10",
        "--airstrip-wind",
        "egen=060/10",
        "--airstrip-wind",
        "EGES=060/10@2026-12-01T09:40Z",
    ]
    shown = runner.invoke(app, ["leg", "plan", "kirkwall-north-ronaldsay", *winds, "--out", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "take off EGPA runway 09, land EGEN runway 03" in " ".join(shown.output.split())
    assert "tailwind 8.6" in shown.output  # the table wraps at the terminal's width
    loaded = load_plan(out)
    expected = plan(origin=wind(60, 10), EGEN=wind(60, 10), EGES=wind(60, 10)).mission
    assert loaded.mission[1:] == expected.mission[1:]
    assert loaded.fence == expected.fence
    as_json = runner.invoke(app, ["leg", "plan", "kirkwall-north-ronaldsay", *winds, "--json"])
    record = json.loads(as_json.stdout)
    assert [s["runway"] for s in record["sequences"]] == ["EGEN runway 03", "EGES runway 03", "EGPA runway 09"]
    assert record["water"] == [{"name": "the North Isles sea crossing", "from_km": 6.0, "to_km": 51.0}]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--airstrip-wind", "EGEN=120/10", "--airstrip-wind", "EGES=060/5"],
            "no usable runway at North Ronaldsay (EGEN)",
        ),
        (["--airstrip-wind", "EGES=060/5"], "no measured wind for North Ronaldsay (EGEN)"),
        (["--airstrip-wind", "EGXX=060/5"], "ICAO one of EGEN, EGES, EGPA"),
        (["--airstrip-wind", "EGEN=060"], "expected FROM/SPEED"),
        (
            ["--airstrip-wind", "EGEN=060/5", "--airstrip-wind", "EGES=060/5", "--profile", "sitl-quad"],
            "is a multirotor",
        ),
    ],
)
def test_leg_plan_refuses_with_one_line_saying_why(arguments: list[str], message: str, tmp_path: Path) -> None:
    """Test that a wind out of limits, a missing or mistyped wind, or a multirotor profile is one error line
    and exit 1, and no file is written."""
    from typer.testing import CliRunner

    from flightctl.cli import app

    out = tmp_path / "leg.plan"
    result = CliRunner().invoke(app, ["leg", "plan", "kirkwall-north-ronaldsay", *arguments, "--out", str(out)])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert not out.exists()
