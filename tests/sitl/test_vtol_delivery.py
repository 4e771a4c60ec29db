"""A VTOL delivery in ArduPlane's QuadPlane SITL: the multirotor's delivery machine, flown on a wing.

The same plan shape, gate, interlocks and journal as the quad's; the QuadPlane takes off and lands on its lift
motors, cruises on the wing, and hovers for the drop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.journal import Journal
from flightctl.delivery.order import DeliveryMethod, VehicleKind, VehicleProfile
from flightctl.delivery.planner import DeliveryPlan, plan_delivery
from flightctl.delivery.routing import PlanningError
from flightctl.delivery.sequencer import DeliverySequencer
from flightctl.dialect import mavlink as m
from flightctl.missions.model import MissionType
from flightctl.vehicle.vehicle import Vehicle
from sitl.instance import SitlInstance
from sitl.locations import Home
from tests.sitl.conftest import INSTANCE_BASE, require_sitl
from tests.sitl.deliveries import DELIVERY_SPEEDUP, SITE, assert_home_and_disarmed, calm, commands, fly, order

pytestmark = pytest.mark.sitl

VTOL = read_yaml_model(named_config("profiles", "sitl-vtol"), VehicleProfile)
ON_THE_WING_M_S = 18.0  # quadplane.parm's Q_ASSIST_SPEED: above it the wing carries the aircraft


@pytest.fixture
async def vtol_sitl() -> AsyncIterator[SitlInstance]:
    require_sitl("plane")
    home = Home(lat_deg=SITE.depot.lat, lon_deg=SITE.depot.lon, alt_m=SITE.depot_alt_m, heading_deg=0)
    async with SitlInstance(
        home=home, vehicle="plane", model="quadplane", instance=INSTANCE_BASE + 8, speedup=DELIVERY_SPEEDUP
    ) as sim:
        yield sim


@contextlib.asynccontextmanager
async def watching(watcher: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """``watcher`` run beside the block (it notes what it sees in a list of its own), stopped after it."""
    task = asyncio.create_task(watcher)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _fastest_airspeed(vehicle: Vehicle, seen: list[float]) -> None:
    async for state in vehicle.telemetry.states():
        if state.airspeed_m_s is not None:
            seen.append(state.airspeed_m_s)


async def test_vtol_release_at_height_delivery_hovers_to_drop_exactly_once_in_the_zone(
    vtol_sitl: SitlInstance, tmp_path: Path
) -> None:
    """Test a QuadPlane delivery 1.2 km past the school's no-fly zone: VTOL take-off, cruise on the wing,
    hover from 300 m short of the drop, the gate and the interlocks, exactly one gripper release within 5 m of
    the target and inside the 4 m zone, the wing home, and a VTOL landing at the depot."""
    assert VTOL.kind is VehicleKind.VTOL
    plan = plan_delivery(order("kirkwall-1200m-height"), SITE, VTOL)
    names = [item.command for item in plan.mission.items(MissionType.MISSION)]
    assert names[1] == m.MAV_CMD_NAV_VTOL_TAKEOFF
    assert names.count(m.MAV_CMD_DO_VTOL_TRANSITION) == 2
    assert names[plan.land_seq] == m.MAV_CMD_NAV_VTOL_LAND
    airspeeds: list[float] = []
    async with watching(_fastest_airspeed(vtol_sitl.vehicle, airspeeds)):
        outcome, events = await fly(vtol_sitl, plan, tmp_path / "journal.sqlite")
    assert outcome.delivered, outcome.as_json()
    assert commands(events).count("gripper_release") == 1
    assert outcome.release_error_m is not None
    assert outcome.release_error_m <= 4.0, "released inside the order's 4 m zone"
    interlocks = [e for e in events if e.name == "release interlocks"]
    assert interlocks[-1].detail["ok"]
    assert max(airspeeds) >= ON_THE_WING_M_S, "it cruised on the wing"
    texts = [t.text for t in vtol_sitl.vehicle.telemetry.status_log]
    assert any("Transition" in text for text in texts), texts[-30:]
    assert_home_and_disarmed(vtol_sitl)


async def test_vtol_payload_place_lands_releases_on_the_ground_in_the_zone_once_and_goes_around(
    vtol_sitl: SitlInstance, tmp_path: Path
) -> None:
    """Test a QuadPlane payload place 1.5 km out: on the wing, the hover, the gate; ArduPlane lands at the drop
    point and waits with its motors stopped ("Land complete"); the controller checks the interlocks on the ground,
    opens the gripper once (released on the ground, within 5 m of the target and inside the zone), sends it
    around (MAV_CMD_DO_GO_AROUND), and the mission climbs out and flies home on the wing to a VTOL landing."""
    the_order = order("kirkwall-1500m-place")
    assert the_order.method is DeliveryMethod.PAYLOAD_PLACE
    plan = plan_delivery(the_order, SITE, VTOL)
    assert plan.mission.items(MissionType.MISSION)[plan.drop_seq].command == m.MAV_CMD_NAV_PAYLOAD_PLACE
    lowest: list[float] = []
    async with watching(_altitude_at_release(vtol_sitl.vehicle, lowest)):
        outcome, events = await fly(vtol_sitl, plan, tmp_path / "journal.sqlite")
    assert outcome.delivered, outcome.as_json()
    sent = commands(events)
    assert sent.count("gripper_release") == 1
    assert sent.count("go_around") == 1
    assert sent.index("gripper_release") < sent.index("go_around")
    assert outcome.release_error_m is not None
    assert outcome.release_error_m <= 5.0, "released within 5 m of the target"
    assert outcome.release_error_m <= the_order.drop_zone.radius_m, "and inside the order's zone"
    interlocks = [e for e in events if e.name == "release interlocks"]
    assert [e.detail["ok"] for e in interlocks] == [True, True], "at the gate, then on the ground"
    assert lowest, "the gripper servo was never seen at its release position"
    assert lowest[0] < 1.0, f"released on the ground, not in the air: {lowest[0]:.1f} m above home"
    texts = [t.text for t in vtol_sitl.vehicle.telemetry.status_log]
    assert "Land complete" in texts, texts[-30:]
    assert_home_and_disarmed(vtol_sitl)


async def test_a_controller_started_again_while_the_vtol_waits_on_the_ground_releases_once_and_goes_around(
    vtol_sitl: SitlInstance, tmp_path: Path
) -> None:
    """Test the payload place's worst moment for the companion to die: in the last metres of the descent. ArduPlane
    lands at the drop point and waits, armed, motors stopped. A controller started again on a new link (which
    never saw the "Land complete" text) knows it is there by the landed state, checks the interlocks on the
    ground, releases once and sends it around; the aircraft flies home."""
    plan = plan_delivery(order("kirkwall-1500m-place"), SITE, VTOL)
    journal_path = tmp_path / "journal.sqlite"
    async with await Journal.open(journal_path) as journal:
        first = asyncio.create_task(DeliverySequencer(vtol_sitl.vehicle, plan, journal, ground_wind=calm()).run())
        try:  # the controller dies 3 m above the drop point, in the descent the go-ahead began
            await vtol_sitl.vehicle.telemetry.wait_until(
                lambda s: s.mission_current_seq == plan.drop_seq and (s.relative_alt_m or 99.0) < 3.0,
                timeout_s=900,
                what="the payload place's descent, 3 m up",
            )
        finally:
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
        # ArduPlane lands and waits there, armed, with nobody to release or send it around.
        await vtol_sitl.vehicle.telemetry.wait_until(
            lambda s: s.landed_state == m.MAV_LANDED_STATE_ON_GROUND and s.armed, timeout_s=120, what="landed, waiting"
        )
        assert [e.name for e in await journal.events(plan.order.order_id) if e.kind == "state"][-1] == "RELEASING"
    async with (
        Vehicle.connect(vtol_sitl.serial2_url) as again,
        await Journal.open(journal_path) as journal,
    ):
        outcome = await DeliverySequencer(again, plan, journal, ground_wind=calm()).run()
        events = await journal.events(plan.order.order_id)
    interlocks = [e.detail for e in events if e.name == "release interlocks"]
    assert outcome.delivered, (outcome.as_json(), interlocks)
    sent = commands(events)
    assert (sent.count("gripper_release"), sent.count("go_around")) == (1, 1)
    assert outcome.release_error_m is not None
    assert outcome.release_error_m <= the_order_radius(plan)
    # The controller saw the disarm on its own link; the harness's link may hear it a moment later.
    await vtol_sitl.vehicle.telemetry.wait_until(
        lambda s: not s.armed, timeout_s=30, what="disarmed, as the harness sees it"
    )
    assert_home_and_disarmed(vtol_sitl)


def the_order_radius(plan: DeliveryPlan) -> float:
    radius = plan.order.drop_zone.radius_m
    assert radius is not None
    return radius


async def _altitude_at_release(vehicle: Vehicle, at_release: list[float]) -> None:
    """The height above home when the gripper's servo first left its grab position."""
    async for state in vehicle.telemetry.states():
        setup = vehicle.payload.setup
        if setup is None or state.relative_alt_m is None:
            continue
        if vehicle.payload.gripper_at(state, setup.release_pwm):
            at_release.append(state.relative_alt_m)
            return


def test_a_vtol_refuses_a_winch_drop_saying_why() -> None:
    """Test that a winch order for the QuadPlane is refused before anything flies, saying why."""
    the_order = order("kirkwall-1200m-height").model_copy(update={"method": DeliveryMethod.WINCH})
    with pytest.raises(PlanningError, match="ArduPlane has no winch driver"):
        plan_delivery(the_order, SITE, VTOL)
