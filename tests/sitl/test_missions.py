"""Missions against ArduCopter SITL: big uploads, fence and rally, files from other tools flown for real."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from flightctl.dialect import MAVLinkMessage
from flightctl.dialect import mavlink as m
from flightctl.geo import AltFrame, Location, distance_m, offset
from flightctl.missions.ardupilot import Unstorable
from flightctl.missions.formats import load_plan
from flightctl.missions.geofence import FenceCircle, FencePolygon, FenceShapes, fence_items
from flightctl.missions.model import MissionItem, MissionPlan, MissionType
from flightctl.missions.verify import compare_plans, expected_on_vehicle
from flightctl.vehicle.vehicle import Vehicle
from sitl.instance import SitlInstance
from sitl.locations import Home
from sitl.param_guard import ParamGuard
from sitl.paths import ardupilot_file
from tests.sitl.conftest import INSTANCE_BASE, SPEEDUP, require_sitl
from tests.support.conditions import eventually
from tests.support.shared_data import shared_testdata

pytestmark = pytest.mark.sitl

KIRKWALL = Location(58.9582, -2.9609, 20.0, AltFrame.ABSOLUTE)


def around(distance: float, bearing: float, alt: float) -> Location:
    return offset(KIRKWALL, bearing_deg=bearing, distance_m=distance).with_alt(alt, AltFrame.RELATIVE)


def long_mission(count: int) -> list[MissionItem]:
    items = [MissionItem.home(KIRKWALL), MissionItem.takeoff(30)]
    kinds = [
        lambda n: MissionItem.waypoint(around(100 + n, n * 13 % 360, 30 + n % 50 + 0.01 * n), hold_s=n % 4),
        lambda n: MissionItem(m.MAV_CMD_DO_CHANGE_SPEED, param1=1, param2=5 + n % 10 + 0.5, param3=-1),
        lambda n: MissionItem.loiter_time(around(200, n % 360, 40), n % 30),
        lambda n: MissionItem(m.MAV_CMD_CONDITION_YAW, param1=n % 360, param2=10, param3=1, param4=0),
        lambda n: MissionItem(m.MAV_CMD_DO_SET_SERVO, param1=10, param2=1000 + n),
    ]
    while len(items) < count - 1:
        n = len(items)
        items.append(kinds[n % len(kinds)](n))
    items.append(MissionItem.return_to_launch())
    return items


@dataclasses.dataclass
class TransferWatch:
    """What crossed the link while a test ran: mission-protocol requests and FTP answers from the vehicle."""

    by_ftp: bool
    item_requests: int = 0
    ftp_replies: int = 0

    def assert_uploads_went_the_chosen_way(self) -> None:
        if self.by_ftp:
            assert self.ftp_replies > 0, "nothing went by MAVFTP"
            assert self.item_requests == 0, "the vehicle asked for items: MAVFTP did not take"
        else:
            assert self.item_requests > 0, "the vehicle asked for no items"
            assert self.ftp_replies == 0, "MAVFTP was used though switched off"


@pytest.fixture(params=["mavftp", "mission-protocol"])
async def transfer(request: pytest.FixtureRequest, copter: Vehicle) -> AsyncIterator[TransferWatch]:
    """Run the test once writing ArduPilot's @MISSION files over MAVFTP (the default) and once with the
    mission protocol alone, so both uploaders are proven against the real autopilot."""
    policy = copter.mission.policy
    copter.mission.policy = dataclasses.replace(policy, use_ftp=request.param == "mavftp")
    watch = TransferWatch(by_ftp=request.param == "mavftp")

    def seen(message: MAVLinkMessage) -> None:
        if message.get_type() == "FILE_TRANSFER_PROTOCOL":
            watch.ftp_replies += 1
        else:
            watch.item_requests += 1

    remove = copter.connection.add_listener(["MISSION_REQUEST_INT", "MISSION_REQUEST", "FILE_TRANSFER_PROTOCOL"], seen)
    try:
        yield watch
    finally:
        remove()
        copter.mission.policy = policy


async def test_500_item_mission_uploads_and_reads_back_identical(copter: Vehicle, transfer: TransferWatch) -> None:
    """Test that a 500-item mission of mixed commands uploads, and reads back equal to what ArduPilot can
    hold (checked item by item and by hash). Its length differs from the list it replaces, so an upload
    that did not take cannot pass."""
    before = await copter.mission.download(MissionType.MISSION)
    plan = MissionPlan(long_mission(500 if len(before) != 500 else 499))
    size = len(plan.mission)
    progress: list[int] = []
    report = await copter.mission.upload_plan(
        plan, firmware=copter.firmware, types=[MissionType.MISSION], progress=lambda _t, done, _n: progress.append(done)
    )
    assert report.items == {MissionType.MISSION: size}
    assert progress[-1] == size
    downloaded = await copter.mission.download(MissionType.MISSION)
    assert len(downloaded) == size
    assert MissionPlan(downloaded).content_hash() == report.stored_hash
    assert downloaded[4] != plan.mission[4], "LOITER_TIME really came back normalised (whole seconds, direction)"
    assert await copter.mission.count(MissionType.MISSION) == size
    transfer.assert_uploads_went_the_chosen_way()


async def test_fence_and_rally_upload_and_read_back(copter: Vehicle, transfer: TransferWatch) -> None:
    """Test an inclusion polygon, an exclusion circle and 5 rally points: upload, download, identical; by the
    mission protocol even where MAVFTP is on (ArduPilot applies fence and rally files without a lock)."""
    polygon = FencePolygon(
        True, tuple((p.lat_e7, p.lon_e7) for p in (around(1000, b, 0) for b in (0, 72, 144, 216, 288)))
    )
    circle = FenceCircle(False, (around(300, 90, 0).lat_e7, around(300, 90, 0).lon_e7), 45.5)
    fence = fence_items(FenceShapes([polygon], [circle]))
    rally = [MissionItem.rally_point(around(400, bearing, 50)) for bearing in (0, 72, 144, 216, 288)]
    plan = MissionPlan([MissionItem.home(KIRKWALL)], fence, rally)
    report = await copter.mission.upload_plan(
        plan, firmware=copter.firmware, types=[MissionType.FENCE, MissionType.RALLY]
    )
    held = await copter.mission.download_plan([MissionType.FENCE, MissionType.RALLY])
    assert len(held.fence) == 6
    assert len(held.rally) == 5
    assert [(i.x, i.y) for i in held.fence] == [(i.x, i.y) for i in fence]
    assert [(i.x, i.y, i.z) for i in held.rally] == [(i.x, i.y, i.z) for i in rally]
    assert held.fence[5].param1 == 45.5
    assert report.items == {MissionType.FENCE: 6, MissionType.RALLY: 5}
    assert transfer.ftp_replies == 0
    assert transfer.item_requests >= 11
    await copter.mission.clear(MissionType.FENCE)
    await copter.mission.clear(MissionType.RALLY)
    assert await copter.mission.count(MissionType.FENCE) == 0


async def test_unstorable_item_is_refused_before_anything_is_sent(copter: Vehicle) -> None:
    """Test that QGC's ArduCopter SITL plan, whose item 6 has a null altitude, is refused naming the item,
    and the vehicle's mission is left untouched."""
    plan = load_plan(shared_testdata("qgc", "ArduPilotSITL-ArduCopter.plan"))
    before = await copter.mission.download(MissionType.MISSION)
    with pytest.raises(Unstorable, match=r"item 6 NAV_WAYPOINT altitude nan") as caught:
        await copter.mission.upload_plan(plan, firmware=copter.firmware)
    assert caught.value.result == m.MAV_MISSION_INVALID_PARAM7
    assert await copter.mission.download(MissionType.MISSION) == before


@asynccontextmanager
async def _sitl_at(home: Location) -> AsyncIterator[SitlInstance]:
    require_sitl("copter")
    start = Home(lat_deg=home.lat_deg, lon_deg=home.lon_deg, alt_m=home.alt_m, heading_deg=0)
    async with SitlInstance(home=start, vehicle="copter", instance=INSTANCE_BASE + 3, speedup=SPEEDUP) as sim:
        yield sim


@pytest.fixture
def sitl_at() -> Callable[[Location], AbstractAsyncContextManager[SitlInstance]]:
    """A fresh copter whose home is where a mission file expects it."""
    return _sitl_at


async def fly_to_first_waypoint(vehicle: Vehicle, plan: MissionPlan) -> float:
    """Upload (verified), fly AUTO until the first waypoint after takeoff is reached, land. Returns how far
    from that waypoint the vehicle was when ArduPilot reported it reached."""
    await vehicle.mission.upload_plan(plan, firmware=vehicle.firmware, types=[MissionType.MISSION])
    first_seq, _item, target = next(
        (seq, i, loc) for seq, i, loc in plan.route() if i.command == m.MAV_CMD_NAV_WAYPOINT
    )
    guard = ParamGuard(vehicle.params)
    await guard.set("AUTO_OPTIONS", 3)  # arm in AUTO and take off without raising throttle (no RC in SITL)
    try:
        await vehicle.commands.set_mode("AUTO")
        await vehicle.commands.arm()
        reached = await vehicle.telemetry.wait_until(
            lambda s: (s.last_item_reached or 0) >= first_seq, timeout_s=240, what=f"mission item {first_seq} reached"
        )
        assert reached.position is not None
        miss_m = distance_m(reached.position, target)
        await vehicle.commands.set_mode("LAND")
        await vehicle.telemetry.wait_until(lambda s: not s.armed, timeout_s=180, what="landed and disarmed")
    finally:
        await guard.restore()
    return miss_m


async def test_qgc_plan_flies_to_its_first_waypoint(
    sitl_at: Callable[[Location], AbstractAsyncContextManager[SitlInstance]],
) -> None:
    """Test that QGroundControl's simple_square.plan, uploaded as is, is flown in AUTO to its first waypoint."""
    plan = load_plan(shared_testdata("qgc", "simple_square.plan"))
    assert plan.home is not None
    async with sitl_at(plan.home) as sim:
        miss_m = await fly_to_first_waypoint(sim.vehicle, plan)
    assert miss_m < 5.0


async def test_wpl_mission_flies_to_its_first_waypoint(
    sitl_at: Callable[[Location], AbstractAsyncContextManager[SitlInstance]],
) -> None:
    """Test that ArduPilot's own autotest copter_mission.txt (WPL 110) is flown to its first waypoint."""
    require_sitl("copter")  # before reading the ArduPilot tree, which a machine without SITL does not have
    plan = load_plan(ardupilot_file("Tools/autotest/ArduCopter_Tests/CopterMission/copter_mission.txt"))
    assert plan.home is not None
    assert not math.isnan(plan.home.alt_m)
    async with sitl_at(plan.home) as sim:
        miss_m = await fly_to_first_waypoint(sim.vehicle, plan)
    assert miss_m < 5.0


async def test_upload_and_verify_over_a_lossy_link(sitl_copter: SitlInstance) -> None:
    """Test a verified 150-item upload to real ArduCopter through a link losing 20 % of what it carries each
    way (verified by the vehicle's checksum), the list then read back through the same loss equal to the plan
    as ArduPilot holds it, and that the link quality figure sees the loss."""
    from flightctl.link.transport import transport_for_url
    from flightctl.vehicle.vehicle import LinkOptions
    from sitl.faults import LossyTransport

    lossy = LossyTransport(transport_for_url(sitl_copter.serial1_url), loss_in=0.2, loss_out=0.2, seed=7)
    async with Vehicle.over(lossy, options=LinkOptions(link_timeout_s=10), rates_hz=None) as vehicle:
        plan = MissionPlan(long_mission(150))
        started = asyncio.get_running_loop().time()
        report = await vehicle.mission.upload_plan(plan, firmware=vehicle.firmware, types=[MissionType.MISSION])
        assert report.items == {MissionType.MISSION: 150}
        print(f"lossy upload+verify took {asyncio.get_running_loop().time() - started:.1f} s")
        held = await vehicle.mission.download(MissionType.MISSION)
        expected = expected_on_vehicle(plan, vehicle.firmware)
        assert compare_plans(expected, MissionPlan(held), [MissionType.MISSION]) == []
        assert lossy.dropped_in > 10
        assert lossy.dropped_out > 5  # verifying by checksum sends little; the read-back adds its requests
        # The quality figure is over a window of seconds: it exists once the link has lived two of them.
        await eventually(lambda: vehicle.connection.stats().quality_pct is not None, timeout_s=10)
        quality = vehicle.connection.stats().quality_pct
        assert quality is not None
        assert quality < 95


@pytest.mark.parametrize("run", [1, 2, 3])
async def test_200_items_up_and_down_through_a_radio_losing_30_percent_of_datagrams(
    sitl_copter: SitlInstance, run: int
) -> None:
    """Test a 200-item upload over the mission protocol and its verifying download through a relay that drops
    30 % of datagrams each way (whole datagrams, as a radio does): three runs in a row, each completes."""
    from flightctl.vehicle.vehicle import LinkOptions
    from sitl.relay import LossyRelay

    host, port = sitl_copter.serial2_url.removeprefix("tcp:").rsplit(":", 1)
    async with LossyRelay(host, int(port), loss=0.3, seed=run) as relay:
        options = LinkOptions(link_timeout_s=10)
        async with Vehicle.connect(relay.url, options=options, rates_hz=None) as vehicle:
            vehicle.mission.mission_files = False  # the mission protocol itself is what is on trial
            plan = MissionPlan(long_mission(200))
            loop = asyncio.get_running_loop()
            started = loop.time()
            report = await vehicle.mission.upload_plan(plan, firmware=vehicle.firmware, types=[MissionType.MISSION])
            took = loop.time() - started
    print(f"run {run}: 200 items up and verified through 30 % loss in {took:.1f} s; {relay.stats}")
    assert report.items == {MissionType.MISSION: 200}
    assert relay.stats.dropped_to_client > 20
    assert relay.stats.dropped_from_client > 20


@pytest.mark.parametrize("run", [1, 2])
async def test_500_items_as_a_file_up_and_read_back_through_a_radio_losing_30_percent(
    sitl_copter: SitlInstance, run: int
) -> None:
    """Test the shipped path through a relay dropping 30 % of datagrams each way: 500 items written as
    ArduPilot's @MISSION file and verified by the checksum ArduPilot works out of that file (with home, item 0,
    the one item read by the mission protocol), then the file read back (one burst read, lost chunks read
    again) equal to the plan as ArduPilot holds it; the vehicle never asks for an item."""
    from flightctl.vehicle.vehicle import LinkOptions
    from sitl.relay import LossyRelay

    host, port = sitl_copter.serial2_url.removeprefix("tcp:").rsplit(":", 1)
    seen: dict[str, int] = {}
    async with (
        LossyRelay(host, int(port), loss=0.3, seed=100 + run) as relay,
        Vehicle.connect(relay.url, options=LinkOptions(link_timeout_s=10), rates_hz=None) as vehicle,
    ):
        remove = vehicle.connection.add_listener(
            ["MISSION_REQUEST_INT", "MISSION_REQUEST", "MISSION_ITEM_INT", "FILE_TRANSFER_PROTOCOL"],
            lambda m: seen.update({m.get_type(): seen.get(m.get_type(), 0) + 1}),
        )
        assert vehicle.mission.mission_files, "SITL offers MAVFTP: the file path is what is on trial"
        plan = MissionPlan(long_mission(500 if run == 1 else 499))
        loop = asyncio.get_running_loop()
        started = loop.time()
        report = await vehicle.mission.upload_plan(plan, firmware=vehicle.firmware, types=[MissionType.MISSION])
        took = loop.time() - started
        home_reads = seen.get("MISSION_ITEM_INT", 0)
        started = loop.time()
        held = await vehicle.mission.download(MissionType.MISSION)
        read_s = loop.time() - started
        remove()
    print(
        f"run {run}: {len(plan.mission)} items up as a file and checked in {took:.1f} s, read back in {read_s:.1f} s, "
        "through 30 % loss"
    )
    assert report.items == {MissionType.MISSION: len(plan.mission)}
    assert report.vehicle_hash is None  # one list verified, not all three
    expected = expected_on_vehicle(plan, vehicle.firmware)
    assert compare_plans(expected, MissionPlan(held), [MissionType.MISSION]) == []
    assert seen.get("FILE_TRANSFER_PROTOCOL", 0) > 0
    assert "MISSION_REQUEST_INT" not in seen, "the vehicle asked for items"
    assert "MISSION_REQUEST" not in seen, "the vehicle asked for items"
    assert home_reads >= 1, "the checksum's home was read (more than once if the radio lost the answer)"
    assert seen.get("MISSION_ITEM_INT", 0) == home_reads, "the list itself was read as a file"
    assert relay.stats.dropped_to_client > 5
    assert relay.stats.dropped_from_client > 5
