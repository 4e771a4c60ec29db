"""Island legs flown by ArduPlane SITL, full length: Kirkwall to North Ronaldsay, 53 km over the sea.

The planner's mission is uploaded as it is and flown by ArduPlane itself; the aircraft must land on the runway
the wind calls for. The two figures are ArduPilot's own autotest's for its autolands (arduplane.py, AutoLandMode
and UniversalAutoLandScript): where the aircraft comes to rest within 35 m of the planned landing point (the
NAV_LAND point), heading within 5 degrees of the runway's. And first contact with the ground must be on the
runway: past its threshold, never in the undershoot.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.airstrips import Airstrip
from flightctl.delivery.leg_planner import AirstripsOfLeg, LandingSequence, LegPlan, plan_leg
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
    miss_m,
    prepare,
    take_off,
    watch_until_stopped,
)

pytestmark = pytest.mark.sitl

PLANE = read_yaml_model(named_config("profiles", "sitl-plane"), VehicleProfile)
LEG_NAME = "kirkwall-north-ronaldsay"
LEG = read_yaml_model(named_config("legs", LEG_NAME), Leg)
LANDED_WITHIN_M = 35.0
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


def assert_landed_on(landing: LandingSequence, flown: Flown) -> None:
    assert flown.touchdown is not None
    assert flown.stopped is not None
    first_along, first_across = along_and_across(landing, flown.touchdown)
    runway = f"{landing.end.name} ({landing.end.length_m:.0f} m)"
    assert 0 <= first_along <= landing.end.length_m, f"first contact {first_along:.0f} m along {runway}"
    assert abs(first_across) <= 10, f"first contact {first_across:.1f} m off the centreline of {runway}"
    miss = miss_m(landing, flown.stopped)
    along, across = along_and_across(landing, flown.stopped)
    assert miss <= LANDED_WITHIN_M, (
        f"at rest {miss:.1f} m from the landing point ({along:.0f} m along, {across:.1f} across)"
    )
    assert 0 <= along <= landing.end.length_m, f"at rest {along:.0f} m along {runway}"
    error = heading_error_deg(landing, flown.stopped)
    assert error <= HEADING_WITHIN_DEG, f"at rest heading {error:.1f} deg off the runway's"


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
    landing at North Ronaldsay on the runway the wind calls for: first contact on the runway, at rest within
    35 m of the landing point, heading within 5 degrees of the runway's."""
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
    assert flown.touchdown_seq == landing.land_seq, "it landed through the destination's first landing sequence"
    assert_landed_on(landing, flown)
    assert flown.highest_m >= LEG.cruise_height_m - 10


async def test_an_rtl_commanded_mid_leg_lands_at_the_nearest_airstrip_through_its_landing_sequence() -> None:
    """Test that RTL 20 km into the leg (ArduPlane's RTL_AUTOLAND 2) flies to the nearest DO_LAND_START, here
    Sanday's, and lands there through that sequence, by the same two figures."""
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
    assert flown.touchdown_seq == nearest.land_seq
    assert_landed_on(nearest, flown)


async def _leg_check(url: str, *winds: str) -> tuple[int, dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightctl", "leg", "check", LEG_NAME, "--connect", url, "--aloft-wind", "030/5",
        "--parcel-kg", "2", "--json", *(arg for wind in winds for arg in ("--airstrip-wind", wind)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode is not None
    assert out, err.decode()
    return process.returncode, json.loads(out)


async def test_leg_check_from_the_aircraft_on_its_runway_is_go_and_a_crosswind_at_the_destination_is_no_go() -> None:
    """Test `flightctl leg check` against ArduPlane SITL lined up on Kirkwall's runway 09: GO with every check
    passing (the aircraft's own position and heading on the threshold among them), then NO-GO, exit 2, when
    North Ronaldsay reports 10 m/s straight across its strip, with the runway and crosswind numbers."""
    require_sitl("plane")
    plan = leg_plan(SurfaceWind.parse("000/0"))
    assert plan.departure.end.designator == "09"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    async with SitlInstance(home=lined_up(plan), vehicle="plane", instance=INSTANCE_BASE + 7, speedup=1) as sim:
        code, record = await _leg_check(sim.serial1_url, f"EGPA=000/0@{now}", f"EGEN=030/6@{now}", f"EGES=030/6@{now}")
        assert code == 0, record
        assert record["go"]
        checks = {check["name"]: check for check in record["checks"]}
        assert checks["lined up"]["ok"]
        assert checks["lined up"]["detail"].startswith("0 m from the threshold of EGPA runway 09")
        code, record = await _leg_check(sim.serial1_url, f"EGPA=000/0@{now}", f"EGEN=120/10@{now}", f"EGES=030/6@{now}")
    assert code == 2
    assert not record["go"]
    failed = {check["name"]: check["detail"] for check in record["checks"] if not check["ok"]}
    assert list(failed) == ["destination runway"]
    assert (
        "EGEN runway 03 (030 deg): headwind -0.1 m/s, crosswind 10.0 m/s: crosswind 10.0 m/s over"
        in failed["destination runway"]
    )
