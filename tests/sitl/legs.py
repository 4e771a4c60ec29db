"""Flying a planned island leg in ArduPlane SITL and watching where it touches down: shared by the leg tests."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from flightctl.delivery.ground_steps import Arm, SetMode, StartAt, arm_steps
from flightctl.delivery.leg_planner import LandingSequence, LegPlan, flight_params
from flightctl.delivery.runway_choice import SurfaceWind
from flightctl.geo import distance_m, offset_m_ne
from flightctl.vehicle.telemetry import VehicleState
from flightctl.vehicle.vehicle import Vehicle

# Legs are long (53 km is 40 minutes of flight at 22 m/s): fly them fast. ArduPlane's own autotest flies its
# plane at speedups this high; the vehicle-time deadlines below hold at any speedup.
LEG_SPEEDUP = float(os.environ.get("FLIGHTCTL_LEG_SPEEDUP", "40"))
# Above the field (SITL's flat world puts every airstrip at home's height): the wheels are on the ground (the
# plane rests at about -0.25 m).
ON_THE_GROUND_M = 0.0


@dataclass
class Flown:
    touchdown: VehicleState | None = None  # first contact: the first state on the ground after flying
    touchdown_seq: int | None = None  # the mission item it touched down under
    stopped: VehicleState | None = None  # disarmed after the roll-out
    highest_m: float = 0.0
    texts: list[str] = field(default_factory=list)


async def prepare(vehicle: Vehicle, plan: LegPlan, wind: SurfaceWind) -> None:
    """The leg's parameters, SITL's wind (``SIM_WIND_DIR`` is where it blows from, as ours), and the mission."""
    await vehicle.params.set_many(
        {**flight_params(plan), "SIM_WIND_DIR": wind.from_deg % 360, "SIM_WIND_SPD": wind.speed_m_s}
    )
    await vehicle.mission.upload_plan(plan.mission, firmware=vehicle.firmware)
    await vehicle.telemetry.wait_until(lambda s: s.ready_to_arm, timeout_s=120, what="ArduPlane ready to arm")


async def take_off(vehicle: Vehicle) -> None:
    for step in arm_steps(vehicle.state.mode):
        if isinstance(step, SetMode):
            await vehicle.commands.set_mode(step.mode)
        elif isinstance(step, StartAt):
            await vehicle.mission.set_current(step.seq)
        elif isinstance(step, Arm):
            await vehicle.commands.arm()


async def watch_until_stopped(vehicle: Vehicle, flown: Flown, *, budget_s: float) -> Flown:
    """Follow the flight until the aircraft has flown, touched down and disarmed; AssertionError naming how far
    it got if that takes more than ``budget_s`` of vehicle time (or three times that in wall time, scaled by the
    speedup, should the simulation stall)."""
    start_ms = vehicle.state.time_boot_ms or 0
    wall_s = budget_s / LEG_SPEEDUP * 3 + 120
    try:
        async with asyncio.timeout(wall_s):
            async for state in vehicle.telemetry.states():
                altitude = state.relative_alt_m or 0.0
                flown.highest_m = max(flown.highest_m, altitude)
                if flown.highest_m > 20 and flown.touchdown is None and altitude < ON_THE_GROUND_M:
                    flown.touchdown, flown.touchdown_seq = state, state.mission_current_seq
                if flown.touchdown is not None and not state.armed:
                    flown.stopped = state
                    return flown
                if ((state.time_boot_ms or 0) - start_ms) / 1000 > budget_s:
                    break
    except TimeoutError:
        pass
    raise AssertionError(f"not landed and disarmed within {budget_s:g} s of vehicle time: {flown}")


def along_and_across(sequence: LandingSequence, state: VehicleState) -> tuple[float, float]:
    """Where ``state`` is, in metres along the runway from its threshold and across from its centreline."""
    import math

    assert state.position is not None
    end = sequence.end
    north, east = offset_m_ne(
        end.threshold.lat_deg, end.threshold.lon_deg, state.position.lat_deg, state.position.lon_deg
    )
    heading = math.radians(end.heading_deg)
    return north * math.cos(heading) + east * math.sin(heading), -north * math.sin(heading) + east * math.cos(heading)


def heading_error_deg(sequence: LandingSequence, state: VehicleState) -> float:
    assert state.heading_deg is not None
    return abs((state.heading_deg - sequence.end.heading_deg + 180.0) % 360.0 - 180.0)


def miss_m(sequence: LandingSequence, state: VehicleState) -> float:
    """How far ``state`` is from the sequence's NAV_LAND point."""
    assert state.position is not None
    return distance_m(state.position, sequence.aim_point)
