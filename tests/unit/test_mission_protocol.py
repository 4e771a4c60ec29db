"""The mission protocol against a scripted vehicle: loss, duplicates, reordering, NACKs, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from flightctl.dialect import mavlink
from flightctl.geo import AltFrame, Location, offset
from flightctl.link.connection import MavConnection
from flightctl.missions.model import MissionItem, MissionType
from flightctl.vehicle.commands import Commands
from flightctl.vehicle.mission import MissionProtocol
from flightctl.vehicle.mission_transfer import MissionError, MissionTimeout, TransferPolicy
from tests.support.conditions import eventually
from tests.support.mission_peer import MissionPeer
from tests.support.peer import ScriptedPeer

KIRKWALL = Location(58.9582, -2.9609, 20.0, AltFrame.ABSOLUTE)
FAST = TransferPolicy(
    reply_timeout_s=0.05,
    min_reply_timeout_s=0.01,
    vehicle_silent_s=1.0,
    deadline_base_s=3.0,
    deadline_per_item_s=0.05,
    restart_delay_s=0.05,
)


def route(count: int) -> list[MissionItem]:
    items = [MissionItem.home(KIRKWALL), MissionItem.takeoff(30)]
    for n in range(count - 2):
        point = offset(KIRKWALL, bearing_deg=(n * 7) % 360, distance_m=50 + n).with_alt(30 + n % 20, AltFrame.RELATIVE)
        items.append(MissionItem.waypoint(point, hold_s=n % 3))
    return items


@pytest.fixture
async def vehicle_side(peer: ScriptedPeer) -> AsyncIterator[MissionPeer]:
    mission_peer = MissionPeer(peer)
    yield mission_peer
    mission_peer.stop()


@pytest.fixture
def protocol(connection: MavConnection) -> MissionProtocol:
    return MissionProtocol(connection, Commands(connection), FAST)


def stored_items(vehicle_side: MissionPeer, mission_type: int = 0) -> list[MissionItem]:
    return [MissionItem.from_message(m) for m in vehicle_side.stored[mission_type]]


async def test_upload_and_download_survive_30_percent_loss_both_ways(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that with 30 % of messages lost in each direction a 200-item mission uploads, downloads identical,
    and progress reaches 200/200 both ways."""
    items = route(200)
    peer.loss_to_flightctl = peer.loss_from_flightctl = 0.3
    progress: list[tuple[int, int]] = []
    await protocol.upload(items, MissionType.MISSION, progress=lambda _t, done, total: progress.append((done, total)))
    assert progress[-1] == (200, 200)
    assert stored_items(vehicle_side) == items
    downloaded = await protocol.download(MissionType.MISSION)
    assert downloaded == items


async def test_duplicated_and_reordered_messages(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that duplicated and reordered requests and items from the vehicle still give an exact transfer."""
    items = route(120)
    peer.duplicate_to_flightctl = 0.3
    peer.delay_to_flightctl = 0.3
    await protocol.upload(items, MissionType.MISSION)
    assert stored_items(vehicle_side) == items
    assert await protocol.download(MissionType.MISSION) == items


async def test_vehicle_asking_with_old_mission_request(
    vehicle_side: MissionPeer, protocol: MissionProtocol, peer: ScriptedPeer
) -> None:
    """Test that MISSION_REQUEST (ArduPilot's way of asking) is answered with MISSION_ITEM_INT."""
    vehicle_side.use_old_request = True
    items = route(10)
    await protocol.upload(items, MissionType.MISSION)
    assert stored_items(vehicle_side) == items
    assert peer.sent("MISSION_ITEM") == []
    assert len(peer.sent("MISSION_ITEM_INT")) >= 10


async def test_lost_final_ack_is_settled_by_reading_the_count(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that when the final MISSION_ACK is lost, the upload completes by asking the vehicle for its count,
    without resending items (ArduPilot answers those with ERROR) or restarting."""
    vehicle_side.lose_final_acks = 1
    items = route(15)
    transfers = await protocol.upload(items, MissionType.MISSION)
    assert transfers == 1
    assert vehicle_side.uploads_completed == 1
    assert stored_items(vehicle_side) == items
    assert len(peer.sent("MISSION_REQUEST_LIST")) >= 1
    assert len(peer.sent("MISSION_ITEM_INT")) == 15


async def test_nack_mid_upload_names_the_item(vehicle_side: MissionPeer, protocol: MissionProtocol) -> None:
    """Test that a NACK on item 7 raises MissionError naming the stage, the item and the result."""
    vehicle_side.nack_at[7] = mavlink.MAV_MISSION_INVALID_PARAM3
    with pytest.raises(
        MissionError, match=r"mission upload, item 7: vehicle answered MAV_MISSION_INVALID_PARAM3"
    ) as caught:
        await protocol.upload(route(12), MissionType.MISSION)
    assert caught.value.seq == 7
    assert caught.value.result == mavlink.MAV_MISSION_INVALID_PARAM3
    assert caught.value.stage == "upload"


async def test_invalid_sequence_mid_transfer_is_only_a_warning(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that INVALID_SEQUENCE (our duplicate item crossed the vehicle's request) does not stop the upload."""
    original = peer._responders["MISSION_ITEM_INT"]
    sent_duplicate = False

    def with_duplicate(message: object) -> None:
        nonlocal sent_duplicate
        original(message)
        if not sent_duplicate and message.seq == 3:  # type: ignore[attr-defined]
            sent_duplicate = True
            original(message)  # the vehicle sees item 3 twice and answers INVALID_SEQUENCE

    peer.on("MISSION_ITEM_INT", with_duplicate)
    items = route(8)
    await protocol.upload(items, MissionType.MISSION)
    assert stored_items(vehicle_side) == items
    assert sent_duplicate


async def test_no_space_right_after_boot_is_retried(vehicle_side: MissionPeer, protocol: MissionProtocol) -> None:
    """Test that a NO_SPACE answer to the first MISSION_COUNTs (seen from a freshly booted ArduPilot) is waited
    out with a fresh transfer, and the upload completes."""
    vehicle_side.no_space_for_first_counts = 2
    items = route(20)
    transfers = await protocol.upload(items, MissionType.MISSION)
    assert transfers == 3
    assert stored_items(vehicle_side) == items


async def test_another_station_uploading_is_waited_for(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that while another GCS holds the vehicle's upload (DENIED), we retry after it is abandoned."""
    other_gcs = mavlink.MAVLink_mission_count_message(1, 1, 5, 0)
    other_gcs._header = mavlink.MAVLink_header(other_gcs.id, srcSystem=255, srcComponent=190)
    vehicle_side.abandon_s = 0.15  # (ArduPilot: 8 s, shorter than our default restart pauses added up)
    vehicle_side._count(other_gcs)  # the other station started and went silent
    items = route(10)
    transfers = await protocol.upload(items, MissionType.MISSION)
    assert transfers >= 2
    assert stored_items(vehicle_side) == items


async def test_capacity_nack_is_not_retried(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that NO_SPACE explained as a capacity limit fails at once, with the vehicle's words."""

    def too_many(message: object) -> None:
        peer.send(mavlink.MAVLink_statustext_message(4, b"Only 50 items are supported"))
        vehicle_side._ack(message, mavlink.MAV_MISSION_NO_SPACE, 0)  # type: ignore[arg-type]

    peer.on("MISSION_COUNT", too_many)
    with pytest.raises(MissionError, match="Only 50 items are supported"):
        await protocol.upload(route(60), MissionType.MISSION)
    assert len(peer.sent("MISSION_COUNT")) == 1


async def test_a_vehicle_that_talks_but_never_answers_times_out_at_the_deadline(
    peer: ScriptedPeer, protocol: MissionProtocol
) -> None:
    """Test that while heartbeats arrive the count is sent again and again, and the upload ends at its deadline
    (base + per item), saying so."""
    with pytest.raises(MissionTimeout, match=r"fence upload: not finished within 3.25 s on this link"):
        await protocol.upload(route(5), MissionType.FENCE)
    assert len(peer.sent("MISSION_COUNT")) > 20


async def test_a_vehicle_gone_silent_ends_the_transfer_at_once(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that a vehicle whose heartbeats stop too ends the upload after the silence limit, not the deadline."""
    peer.silent = True
    with pytest.raises(MissionTimeout, match=r"vehicle silent for 1 s \(no heartbeat either\)"):
        await protocol.upload(route(50), MissionType.MISSION)


async def test_cancelled_upload_leaves_no_pending_waiters(
    connection: MavConnection, vehicle_side: MissionPeer, protocol: MissionProtocol, peer: ScriptedPeer
) -> None:
    """Test that cancelling an upload midway unregisters every inbox it used."""
    peer.loss_to_flightctl = 0.5
    before = connection.pending_waiters()
    task = asyncio.create_task(protocol.upload(route(200), MissionType.MISSION))
    await peer.expect("MISSION_ITEM_INT", count=5)
    assert connection.pending_waiters() > before
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connection.pending_waiters() == before
    assert not protocol._lock.locked()


async def test_download_restarts_when_the_list_shrinks(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that if another station shortens the mission while we read it, the download starts over and
    returns the new list."""
    await protocol.upload(route(30), MissionType.MISSION)
    original = peer._responders["MISSION_REQUEST_INT"]

    def shrink_at_10(message: object) -> None:
        if message.seq == 10 and len(vehicle_side.stored[0]) == 30:  # type: ignore[attr-defined]
            vehicle_side.stored[0] = vehicle_side.stored[0][:5]
        original(message)

    peer.on("MISSION_REQUEST_INT", shrink_at_10)
    downloaded = await protocol.download(MissionType.MISSION)
    assert len(downloaded) == 5


async def test_clear_each_type(vehicle_side: MissionPeer, protocol: MissionProtocol) -> None:
    """Test that clear empties a list and an empty upload is a clear too."""
    await protocol.upload(route(5), MissionType.RALLY)
    await protocol.clear(MissionType.RALLY)
    assert vehicle_side.stored[2] == []
    await protocol.upload(route(5), MissionType.FENCE)
    await protocol.upload([], MissionType.FENCE)
    assert vehicle_side.stored[1] == []
    assert await protocol.count(MissionType.FENCE) == 0


async def test_mission_changed_by_another_station_is_noticed(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that after our upload, a MISSION_CURRENT reporting a different length flags the mission as changed
    elsewhere, and one reporting ours does not."""
    await protocol.upload(route(10), MissionType.MISSION)
    assert not protocol.changed_elsewhere()
    peer.send(mavlink.MAVLink_mission_current_message(0, 9, 0, 0))  # total excludes home: ours
    await eventually(lambda: protocol._reported_total == 9)
    assert not protocol.changed_elsewhere()
    peer.send(mavlink.MAVLink_mission_current_message(0, 4, 0, 0))
    await eventually(protocol.changed_elsewhere)


def refuse_first_counts(peer: ScriptedPeer, vehicle_side: MissionPeer, times: int, result: int, text: bytes) -> None:
    """The vehicle answers its first ``times`` MISSION_COUNTs with ``result``, explained by ``text``."""
    original = peer._responders["MISSION_COUNT"]
    left = times

    def refuse(message: object) -> None:
        nonlocal left
        if left > 0:
            left -= 1
            peer.send(mavlink.MAVLink_statustext_message(4, text))
            vehicle_side._ack(message, result, 0)  # type: ignore[arg-type]
            return
        original(message)

    peer.on("MISSION_COUNT", refuse)


async def test_zero_capacity_right_after_boot_is_waited_out(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that 'Only 0 items are supported' (ArduPilot's storage not ready seconds after boot) is not taken for
    a capacity limit: the upload waits and completes once the vehicle is ready."""
    refuse_first_counts(peer, vehicle_side, 2, mavlink.MAV_MISSION_NO_SPACE, b"Only 0 items are supported")
    items = route(12)
    assert await protocol.upload(items, MissionType.MISSION) == 3
    assert stored_items(vehicle_side) == items


async def test_transfers_the_vehicle_abandoned_are_restarted_past_the_nack_limit(
    peer: ScriptedPeer, vehicle_side: MissionPeer, protocol: MissionProtocol
) -> None:
    """Test that OPERATION_CANCELLED ("Mission upload timeout": ArduPilot gave up waiting for items a bad radio
    lost) starts a fresh transfer as often as the deadline allows, not only as often as NACKs are allowed."""
    # Five: more than TransferPolicy.transfer_attempts.
    refuse_first_counts(peer, vehicle_side, 5, mavlink.MAV_MISSION_OPERATION_CANCELLED, b"Mission upload timeout")
    items = route(8)
    assert await protocol.upload(items, MissionType.MISSION) == 6
    assert stored_items(vehicle_side) == items
