"""Island legs flown by ArduPlane SITL, full length: Kirkwall to North Ronaldsay, 53 km over the sea.

The planner's mission is uploaded as it is and flown by ArduPlane itself; the aircraft must land on the runway
the wind calls for, touching down within 35 m of the planned aim point and within 5 degrees of the runway's
heading (the two figures ArduPilot's own autotest holds its autoland to), and roll out on the runway.
"""

from __future__ import annotations

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.airstrips import Airstrip
from flightctl.delivery.leg_planner import AirstripsOfLeg, LegPlan, plan_leg
from flightctl.delivery.legs import Leg
from flightctl.delivery.order import VehicleProfile
from flightctl.delivery.runway_choice import SurfaceWind
from flightctl.geo import distance_m
from sitl.instance import SitlInstance
from sitl.legs import flat_world, lined_up
from tests.sitl.conftest import INSTANCE_BASE, require_sitl
from tests.sitl.legs import (
    LEG_SPEEDUP,
    Flown,
    along_and_across,
    heading_error_deg,
    prepare,
    take_off,
    touchdown_miss_m,
    watch_until_stopped,
)

pytestmark = pytest.mark.sitl

PLANE = read_yaml_model(named_config("profiles", "sitl-plane"), VehicleProfile)
LEG = read_yaml_model(named_config("legs", "kirkwall-north-ronaldsay"), Leg)
TOUCHDOWN_WITHIN_M = 35.0
HEADING_WITHIN_DEG = 5.0


def leg_plan(wind: SurfaceWind) -> LegPlan:
    strips = AirstripsOfLeg(
        *(
            read_yaml_model(named_config("airstrips", name), Airstrip)
            for name in (LEG.origin, LEG.destination, LEG.alternate)
        )
    )
    strips = flat_world(strips)
    winds = {strip.icao: wind for strip in (strips.origin, strips.destination, strips.alternate)}
    return plan_leg(LEG, strips, PLANE, winds)


def budget_s(plan: LegPlan, wind: SurfaceWind) -> float:
    """Vehicle seconds the leg may take: its length at the ground speed into the whole wind, doubled, plus the
    take-off, approach and roll-out."""
    return 2 * plan.track_km * 1000 / (PLANE.cruise_speed_m_s - wind.speed_m_s) + 600


@pytest.mark.parametrize(
    ("wind_text", "runway"),
    [("000/0", "03"), ("060/10", "03"), ("240/10", "21")],
    ids=["calm", "10-m-s-from-060", "10-m-s-from-240"],
)
async def test_kirkwall_to_north_ronaldsay_lands_on_the_runway_the_wind_calls_for(wind_text: str, runway: str) -> None:
    """Test the whole leg in ArduPlane SITL: take-off from Kirkwall into the wind, 53 km of cruise, and the
    landing at North Ronaldsay on the runway the wind calls for, within 35 m of the aim point and 5 degrees of
    the runway heading, stopping on the runway."""
    require_sitl("plane")
    wind = SurfaceWind.parse(wind_text)
    plan = leg_plan(wind)
    assert plan.landing.end.designator == runway
    landing = plan.sequences[0]
    async with SitlInstance(
        home=lined_up(plan), vehicle="plane", instance=INSTANCE_BASE + 7, speedup=LEG_SPEEDUP
    ) as sim:
        await prepare(sim.vehicle, plan, wind)
        await take_off(sim.vehicle)
        flown = await watch_until_stopped(sim.vehicle, Flown(), budget_s=budget_s(plan, wind))
    assert flown.touchdown is not None
    assert flown.stopped is not None
    assert flown.touchdown_seq == landing.land_seq, "it landed through the destination's first landing sequence"
    miss = touchdown_miss_m(landing, flown.touchdown)
    assert miss <= TOUCHDOWN_WITHIN_M, f"touched down {miss:.1f} m from the aim point"
    assert heading_error_deg(landing, flown.touchdown) <= HEADING_WITHIN_DEG
    along, across = along_and_across(landing, flown.stopped)
    assert 0 <= along <= landing.end.length_m, f"stopped {along:.0f} m along a {landing.end.length_m:.0f} m runway"
    assert abs(across) <= 10, f"stopped {across:.1f} m off the centreline"
    assert flown.highest_m >= LEG.cruise_height_m - 10


async def test_an_rtl_commanded_mid_leg_lands_at_the_nearest_airstrip_through_its_landing_sequence() -> None:
    """Test that RTL 20 km into the leg (ArduPlane's RTL_AUTOLAND 2) flies to the nearest DO_LAND_START, here
    Sanday's, and lands there within 35 m of that sequence's aim point."""
    require_sitl("plane")
    wind = SurfaceWind.parse("000/0")
    plan = leg_plan(wind)
    async with SitlInstance(
        home=lined_up(plan), vehicle="plane", instance=INSTANCE_BASE + 7, speedup=LEG_SPEEDUP
    ) as sim:
        vehicle = sim.vehicle
        await prepare(vehicle, plan, wind)
        await take_off(vehicle)
        home = plan.home
        at_rtl = await vehicle.telemetry.wait_until(
            lambda s: s.position is not None and distance_m(s.position, home) > 20_000,
            timeout_s=20_000 / 15 + 300,
            what="20 km along the leg",
        )
        assert at_rtl.position is not None
        nearest = min(plan.sequences, key=lambda s: distance_m(at_rtl.position, s.end.along(-3000)))  # type: ignore[arg-type]
        assert nearest.end.airstrip == "EGES", "Sanday is the nearest airstrip 20 km along"
        await vehicle.commands.set_mode("RTL")
        flown = await watch_until_stopped(vehicle, Flown(highest_m=100), budget_s=40_000 / 15 + 600)
    assert flown.touchdown is not None
    assert flown.touchdown_seq == nearest.land_seq
    miss = touchdown_miss_m(nearest, flown.touchdown)
    assert miss <= TOUCHDOWN_WITHIN_M, f"touched down {miss:.1f} m from Sanday's aim point"
    assert heading_error_deg(nearest, flown.touchdown) <= HEADING_WITHIN_DEG
