"""Mission upload as ArduPilot's @MISSION file over MAVFTP, against a scripted vehicle: loss, refusals, a
vehicle without FTP, cancellation. The file layout itself is checked byte by byte here and for real in SITL."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from collections.abc import AsyncIterator

import pytest
from pymavlink import mavftp_op as op

from flightctl.dialect import mavlink
from flightctl.geo import AltFrame
from flightctl.link.connection import MavConnection
from flightctl.missions import ardupilot_files
from flightctl.missions.ardupilot import Firmware
from flightctl.missions.formats.errors import MissionFileError
from flightctl.missions.model import MissionItem, MissionPlan, MissionType
from flightctl.missions.verify import MissionVerifyError, expected_on_vehicle
from flightctl.vehicle.commands import Commands
from flightctl.vehicle.ftp import FtpError, FtpPolicy, FtpTimeout, MavFtp
from flightctl.vehicle.mission import MissionProtocol
from flightctl.vehicle.mission_transfer import MissionError
from tests.support.conditions import eventually
from tests.support.ftp_peer import FtpPeer
from tests.support.mission_peer import MissionPeer
from tests.support.peer import ScriptedPeer
from tests.unit.test_mission_protocol import FAST, KIRKWALL, route, stored_items

FAST_FTP = FtpPolicy(min_reply_timeout_s=0.01, reply_timeout_s=0.05, silent_s=2.0)


@pytest.fixture
async def vehicle_side(peer: ScriptedPeer) -> AsyncIterator[FtpPeer]:
    mission_peer = MissionPeer(peer)
    ftp_peer = FtpPeer(mission_peer)
    yield ftp_peer
    ftp_peer.stop()
    mission_peer.stop()


@pytest.fixture
def protocol(connection: MavConnection) -> MissionProtocol:
    protocol = MissionProtocol(connection, Commands(connection), FAST, ftp=MavFtp(connection, FAST_FTP))
    protocol.mission_files = True  # what Vehicle sets when AUTOPILOT_VERSION offers FTP on ArduPilot
    return protocol


def items_sent(peer: ScriptedPeer) -> int:
    return len(peer.sent("MISSION_ITEM_INT"))


def test_file_layout_matches_ardupilots_reader() -> None:
    """Test the bytes against AP_Filesystem_Mission: header (magic 0x763d, type, options, start, count), then
    each item as a full 38-byte MISSION_ITEM_INT payload in wire order."""
    item = MissionItem.waypoint(KIRKWALL, hold_s=5)
    data = ardupilot_files.encode([MissionItem.home(KIRKWALL), item], MissionType.MISSION)
    assert data[:10] == struct.pack("<HHHHH", 0x763D, 0, 0, 0, 2)
    assert len(data) == 10 + 2 * 38
    second = struct.unpack("<ffffiifHHBBBBBB", data[48:])
    assert second == (5.0, 0.0, 0.0, 0.0, item.x, item.y, pytest.approx(item.z), 1, 16, 0, 0, item.frame, 0, 1, 0)
    assert ardupilot_files.decode(data) == (MissionType.MISSION, [MissionItem.home(KIRKWALL), item])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x3d\x76", "shorter than"),
        (struct.pack("<HHHHH", 0x1234, 0, 0, 0, 0), "magic"),
        (struct.pack("<HHHHH", 0x763D, 0, 0, 0, 2) + bytes(38), "header: says 2 items"),
        (struct.pack("<HHHHH", 0x763D, 9, 0, 0, 0), "unknown mission type 9"),
    ],
)
def test_malformed_files_are_named(data: bytes, reason: str) -> None:
    """Test that a file that is not a mission file says what is wrong with it."""
    with pytest.raises(MissionFileError, match=reason):
        ardupilot_files.decode(data)


async def test_upload_as_file_survives_30_percent_loss_both_ways(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that a 200-item mission goes over as one file through 30 % loss each way, lands exactly, and
    progress reaches 200/200, without a single mission-protocol item sent."""
    items = route(200)
    peer.loss_to_flightctl = peer.loss_from_flightctl = 0.3
    progress: list[tuple[int, int]] = []
    await protocol.upload(items, MissionType.MISSION, progress=lambda _t, done, total: progress.append((done, total)))
    assert stored_items(vehicle_side.mission_peer) == items
    assert progress[-1] == (200, 200)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert items_sent(peer) == 0
    assert vehicle_side.files_closed >= 1
    assert vehicle_side.header_writes_complete, "the header was written"
    assert all(vehicle_side.header_writes_complete), "the header went in before the rest of the file"


async def test_fence_and_rally_go_by_the_mission_protocol(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that fence and rally lists are uploaded item by item, never as files: ArduPilot applies fence.dat
    and rally.dat on its FTP thread without a lock against the main loop (see ``TransferPolicy.ftp_types``)."""
    rally = [MissionItem.rally_point(KIRKWALL.with_alt(50 + n, AltFrame.RELATIVE)) for n in range(5)]
    await protocol.upload(rally, MissionType.RALLY)
    await protocol.upload(route(4), MissionType.FENCE)
    assert stored_items(vehicle_side.mission_peer, MissionType.RALLY) == rally
    assert stored_items(vehicle_side.mission_peer, MissionType.FENCE) == route(4)
    assert items_sent(peer) == 9
    assert peer.sent("FILE_TRANSFER_PROTOCOL") == []


async def test_fence_and_rally_files_when_asked_for_land_in_their_own_lists(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that with the file types widened, fence and rally lists are written to fence.dat and rally.dat and
    land in their own lists."""
    protocol.policy = dataclasses.replace(protocol.policy, ftp_types=frozenset(MissionType))
    rally = [MissionItem.rally_point(KIRKWALL.with_alt(50 + n, AltFrame.RELATIVE)) for n in range(5)]
    await protocol.upload(rally, MissionType.RALLY)
    assert stored_items(vehicle_side.mission_peer, MissionType.RALLY) == rally
    assert stored_items(vehicle_side.mission_peer, MissionType.MISSION) == []
    assert items_sent(peer) == 0


async def test_refused_item_falls_back_to_the_mission_protocol_which_names_it(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that when the vehicle takes the file but refuses item 7 (leaving 7 items), the upload goes again
    by the mission protocol, and its NACK gives a typed error naming item 7."""
    vehicle_side.refuse_item_at = 7
    vehicle_side.mission_peer.nack_at[7] = mavlink.MAV_MISSION_INVALID_PARAM5_X
    with pytest.raises(MissionError) as raised:
        await protocol.upload(route(20), MissionType.MISSION)
    assert raised.value.seq == 7
    assert raised.value.result == mavlink.MAV_MISSION_INVALID_PARAM5_X
    assert vehicle_side.files_closed == 1
    assert items_sent(peer) == 8  # items 0..7 by the mission protocol


async def test_vehicle_that_never_answers_ftp_still_gets_its_mission(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that with FTP not answering at all the mission protocol uploads it after the open is given up
    (one request repeated with its sequence number, waits growing), and the next upload does not wait on
    FTP again."""
    vehicle_side.silent = True
    items = route(30)
    await protocol.upload(items, MissionType.MISSION)
    assert stored_items(vehicle_side.mission_peer) == items
    assert items_sent(peer) == 30
    opens = peer.sent("FILE_TRANSFER_PROTOCOL")
    headers = {struct.unpack_from("<HBB", bytes(m.payload)) for m in opens}
    assert len(opens) >= 3
    assert len(headers) == 1  # the same request (seq, session, CreateFile) every time
    assert next(iter(headers))[2] == op.OP_CreateFile
    await protocol.upload(route(20), MissionType.MISSION)
    assert stored_items(vehicle_side.mission_peer) == route(20)
    assert len(peer.sent("FILE_TRANSFER_PROTOCOL")) == len(opens)  # FTP rests after going unanswered


async def test_file_held_by_another_client_falls_back(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that an open refused because another client holds the vehicle's file falls back at once."""
    vehicle_side.busy = True
    items = route(30)
    await protocol.upload(items, MissionType.MISSION)
    assert stored_items(vehicle_side.mission_peer) == items
    assert len(peer.sent("FILE_TRANSFER_PROTOCOL")) == 1


async def test_ftp_refusal_is_a_typed_error_naming_operation_and_file(
    connection: MavConnection, vehicle_side: FtpPeer
) -> None:
    """Test that MavFtp says which operation on which file was refused, and why."""
    vehicle_side.busy = True
    with pytest.raises(FtpError, match=r"MAVFTP create @MISSION/mission.dat: Fail") as raised:
        await MavFtp(connection, FAST_FTP).write_file("@MISSION/mission.dat", b"x")
    assert raised.value.code == 1


async def test_ping_tells_an_answering_server_from_a_silent_one(
    connection: MavConnection, vehicle_side: FtpPeer
) -> None:
    """Test that ping returns when the server answers and is a typed timeout when it does not."""
    ftp = MavFtp(connection, FtpPolicy(min_reply_timeout_s=0.01, reply_timeout_s=0.05, silent_s=0.3))
    await ftp.ping()
    vehicle_side.silent = True
    with pytest.raises(FtpTimeout, match=r"MAVFTP ping \(server\): no answer in 0.3 s \(\d+ requests\)"):
        await ftp.ping()


async def test_overlong_path_is_refused_before_sending(connection: MavConnection, peer: ScriptedPeer) -> None:
    """Test that a path longer than one FTP message can carry is refused here, with nothing sent."""
    with pytest.raises(FtpError, match="at most 238 bytes"):
        await MavFtp(connection, FAST_FTP).write_file("@MISSION/" + "x" * 240, b"data")
    assert peer.sent("FILE_TRANSFER_PROTOCOL") == []


async def test_cancelled_file_upload_frees_waiters_and_the_vehicles_file(
    connection: MavConnection, peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that cancelling mid-file unregisters every inbox and closes the session on the vehicle, so the
    next upload can open the file."""
    peer.loss_to_flightctl = 0.5
    before = connection.pending_waiters()
    task = asyncio.create_task(protocol.upload(route(300), MissionType.MISSION))
    await peer.expect("FILE_TRANSFER_PROTOCOL", count=6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connection.pending_waiters() == before
    await eventually(lambda: vehicle_side._open is None)
    peer.loss_to_flightctl = 0.0
    items = route(40)
    await protocol.upload(items, MissionType.MISSION)
    assert stored_items(vehicle_side.mission_peer) == items
    assert items_sent(peer) == 0


async def test_download_as_file_survives_30_percent_loss_both_ways(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that a 300-item mission is read back as one file through 30 % loss each way: one burst read (the
    link has lost frames by then), the lost chunks read again, nothing asked by the mission protocol, and
    progress ends at 300/300."""
    items = route(300)
    peer.loss_to_flightctl = peer.loss_from_flightctl = 0.3
    await protocol.upload(items, MissionType.MISSION)
    counts_read = len(peer.sent("MISSION_REQUEST_LIST"))  # the upload's own check of what the vehicle holds
    progress: list[tuple[int, int]] = []
    read = await protocol.download(MissionType.MISSION, progress=lambda _t, done, total: progress.append((done, total)))
    assert read == items
    assert progress[-1] == (300, 300)
    assert len(peer.sent("MISSION_REQUEST_LIST")) == counts_read
    sent = [m for m in [*peer.received, *peer.lost] if m.get_type() == "FILE_TRANSFER_PROTOCOL"]
    assert [m.payload[3] for m in sent].count(op.OP_BurstReadFile) == 1, "one burst asked (the radio may lose it)"
    assert vehicle_side.reads > 0, "the chunks lost from the burst were read again"
    assert vehicle_side._open is None, "the file was closed for the next client"


async def test_a_read_bursts_only_once_the_link_has_lost_a_frame(
    connection: MavConnection, peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test the default read: on a link that has lost nothing the file is read five chunks in flight, no burst
    (ArduPilot paces a burst to a third of the port's bandwidth); once a frame from the vehicle has gone
    missing, the same read starts with one burst."""
    items = route(120)
    await protocol.upload(items, MissionType.MISSION)
    assert connection.frames_lost == 0
    assert await protocol.download(MissionType.MISSION) == items
    assert (vehicle_side.bursts, vehicle_side.reads > 0) == (0, True)
    peer.loss_to_flightctl = 0.5
    await eventually(lambda: connection.frames_lost > 0)  # heartbeats lost on the way
    peer.loss_to_flightctl = 0.0
    reads_before = vehicle_side.reads
    assert await protocol.download(MissionType.MISSION) == items
    assert vehicle_side.bursts == 1
    assert vehicle_side.reads == reads_before, "a burst through a clean link leaves no gap to read again"


@pytest.mark.parametrize("items", [0, 1, 6, 12])
async def test_download_as_file_reads_every_length(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol, items: int
) -> None:
    """Test that lists whose file ends mid-chunk, on a chunk boundary (6 items: 10 + 6 * 38 = 238 bytes is
    one byte short; 12 items is two chunks and then some) or after the header alone read back exactly."""
    vehicle_side.mission_peer.stored[0] = [item.message(seq, 0) for seq, item in enumerate(route(items))]
    assert await protocol.download(MissionType.MISSION) == route(items)
    assert peer.sent("MISSION_REQUEST_LIST") == []


async def test_download_falls_back_to_the_mission_protocol_when_ftp_is_silent(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that a vehicle whose FTP does not answer is read by the mission protocol, and that the next
    read does not wait on FTP again."""
    items = route(20)
    await protocol.upload(items, MissionType.MISSION)
    vehicle_side.silent = True
    before = len(peer.sent("FILE_TRANSFER_PROTOCOL"))
    assert await protocol.download(MissionType.MISSION) == items
    tried = len(peer.sent("FILE_TRANSFER_PROTOCOL"))
    assert tried > before
    assert len(peer.sent("MISSION_REQUEST_LIST")) >= 1
    assert await protocol.download(MissionType.MISSION) == items
    assert len(peer.sent("FILE_TRANSFER_PROTOCOL")) == tried


async def test_fence_is_read_by_the_mission_protocol(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that lists not in ``ftp_types`` are never read as files (ArduPilot's FTP thread would read the
    fence while its main loop may rebuild it)."""
    await protocol.download(MissionType.FENCE)
    assert peer.sent("FILE_TRANSFER_PROTOCOL") == []
    assert len(peer.sent("MISSION_REQUEST_LIST")) >= 1


async def test_a_stale_session_is_waited_out_and_the_file_still_goes_by_ftp(
    connection: MavConnection, peer: ScriptedPeer, vehicle_side: FtpPeer
) -> None:
    """Test that when the last client's session is still open (its close was lost), the open refused with
    InvalidSession is asked again after the server's session timeout, in silence, and the upload and its
    readback still go by MAVFTP."""
    vehicle_side.session_timeout_s = 0.3
    ftp = MavFtp(connection, dataclasses.replace(FAST_FTP, stale_session_wait_s=0.4))
    protocol = MissionProtocol(connection, Commands(connection), FAST, ftp=ftp)
    protocol.mission_files = True
    vehicle_side._open = (99, 0, "@MISSION/mission.dat")  # a reader whose close never arrived
    vehicle_side._reading = b"stale"
    vehicle_side._last_send = asyncio.get_running_loop().time()
    items = route(40)
    await protocol.upload(items, MissionType.MISSION)
    assert stored_items(vehicle_side.mission_peer) == items
    assert items_sent(peer) == 0, "the mission protocol was not needed"
    assert vehicle_side.invalid_sessions >= 1
    refused = vehicle_side.invalid_sessions
    vehicle_side._open = (98, 0, "@MISSION/mission.dat")
    vehicle_side._reading = b"stale"
    vehicle_side._last_send = asyncio.get_running_loop().time()
    assert await protocol.download(MissionType.MISSION) == items
    assert peer.sent("MISSION_REQUEST_INT") == []
    assert vehicle_side.invalid_sessions > refused


def as_stored(items: list[MissionItem]) -> list[MissionItem]:
    """The items as ArduPilot stores them (frames as it answers them): what the scripted vehicle, which keeps
    what it is sent, then holds exactly, so its checksum can match the plan's."""
    plan = MissionPlan().with_items(MissionType.MISSION, items)
    return expected_on_vehicle(plan, Firmware.COPTER).items(MissionType.MISSION)


async def test_upload_plan_verifies_by_the_vehicles_checksum_without_reading_the_list(
    peer: ScriptedPeer, vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that after a 300-item upload the verification is one CalcFileCRC32 and item 0 (the vehicle's home),
    with no file read and no list download: two round trips however long the list."""
    plan = MissionPlan().with_items(MissionType.MISSION, as_stored(route(300)))
    report = await protocol.upload_plan(plan, firmware=Firmware.COPTER, types=[MissionType.MISSION])
    assert report.items == {MissionType.MISSION: 300}
    assert vehicle_side.checksums == 1
    assert (vehicle_side.bursts, vehicle_side.reads) == (0, 0), "nothing read back as a file"
    assert [m.seq for m in peer.sent("MISSION_REQUEST_INT")] == [0], "only home was asked for"


async def test_a_checksum_tells_a_list_that_differs_in_one_field(
    vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that the vehicle's checksum matches the list it holds and nothing else: one altitude a centimetre
    off, one item missing, and the list in another order all give None (the caller then reads the list and
    names the difference)."""
    items = as_stored(route(50))
    await protocol.upload(items, MissionType.MISSION)
    assert await protocol.held_if_checksum_matches(items, MissionType.MISSION) == items
    moved = items[7].location()
    assert moved is not None
    nudged = [*items[:7], items[7].with_location(moved.with_alt(moved.alt_m + 0.01, moved.frame)), *items[8:]]
    for wrong in (nudged, items[:-1], [items[0], *reversed(items[1:])]):
        assert await protocol.held_if_checksum_matches(wrong, MissionType.MISSION) is None
    assert vehicle_side.checksums == 4


async def test_a_server_without_checksums_is_verified_by_reading_back(
    vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that a server that answers CalcFileCRC32 UnknownCommand (an older ArduPilot) still gets a verified
    upload: the list is read back as a file and compared item by item."""
    vehicle_side.crc_supported = False
    plan = MissionPlan().with_items(MissionType.MISSION, as_stored(route(60)))
    await protocol.upload_plan(plan, firmware=Firmware.COPTER, types=[MissionType.MISSION])
    assert vehicle_side.checksums == 0
    assert vehicle_side.reads + vehicle_side.bursts > 0, "read back instead"


async def test_a_list_changed_behind_the_upload_is_read_back_and_named(
    vehicle_side: FtpPeer, protocol: MissionProtocol
) -> None:
    """Test that when the vehicle holds something other than the plan (another client changed item 12 after
    our upload), the checksum differs, the list is read back, and the error names item 12."""
    items = as_stored(route(40))
    plan = MissionPlan().with_items(MissionType.MISSION, items)
    original = protocol.upload

    async def upload_then_changed(*args: object, **kwargs: object) -> int:
        done = await original(*args, **kwargs)  # type: ignore[arg-type]
        stored = vehicle_side.mission_peer.stored[int(MissionType.MISSION)]
        stored[12] = dataclasses.replace(items[12], param1=9.0).message(12, int(MissionType.MISSION))
        return done

    protocol.upload = upload_then_changed  # type: ignore[method-assign]
    with pytest.raises(MissionVerifyError, match="item 12"):
        await protocol.upload_plan(plan, firmware=Firmware.COPTER, types=[MissionType.MISSION])
    assert vehicle_side.checksums == 1
    assert vehicle_side.reads + vehicle_side.bursts > 0, "read back to name the difference"
