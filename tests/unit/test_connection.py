"""MavConnection: routing, our heartbeat, link state."""

from __future__ import annotations

import asyncio
import random

import pytest

from flightctl.dialect import mavlink
from flightctl.errors import LinkClosed, VehicleTimeout
from flightctl.link.connection import LinkState, MavConnection
from tests.support.conditions import eventually
from tests.support.peer import ScriptedPeer


async def test_we_send_an_onboard_controller_heartbeat(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that flightctl announces itself as an onboard controller, component 191, about every period."""
    beats = await peer.expect("HEARTBEAT", count=3, timeout_s=2.0)
    assert {(b.type, b.autopilot) for b in beats} == {
        (mavlink.MAV_TYPE_ONBOARD_CONTROLLER, mavlink.MAV_AUTOPILOT_INVALID)
    }
    assert {(b.get_srcSystem(), b.get_srcComponent()) for b in beats} == {(1, 191)}


async def test_vehicle_identity_learned_from_heartbeat(connection: MavConnection) -> None:
    """Test that the vehicle's system, component and type come from its heartbeat."""
    assert connection.vehicle is not None
    assert (connection.vehicle.system_id, connection.vehicle.component_id) == (1, 1)
    assert connection.vehicle.type_name == "QUADROTOR"


async def test_gcs_heartbeat_is_not_taken_for_the_vehicle() -> None:
    """Test that a ground station's heartbeat on the same link does not become the vehicle."""
    peer = ScriptedPeer(system_id=255, component_id=190, mav_type=mavlink.MAV_TYPE_GCS)
    async with MavConnection(peer.transport, link_timeout_s=0.5) as conn:
        peer.send(mavlink.MAVLink_heartbeat_message(mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0, 3))
        with pytest.raises(VehicleTimeout, match="link not connected"):
            await conn.wait_vehicle(timeout_s=0.3)
        assert conn.vehicle is None


async def test_link_loss_detected_and_recovery_reported(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that silence longer than the link timeout reports LOST, and heartbeats again report recovery."""
    seen: list[LinkState] = []
    connection.on_state_change(seen.append)
    peer.silent = True
    await connection.wait_state(LinkState.LOST, timeout_s=2.0)
    assert connection.stats().quality_pct == 0.0
    peer.silent = False
    await connection.wait_state(LinkState.CONNECTED, timeout_s=2.0)
    assert seen == [LinkState.LOST, LinkState.CONNECTED]
    stats = connection.stats()
    assert (stats.losses, stats.recoveries) == (1, 1)


async def test_garbage_on_the_link_never_reaches_flight_logic(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that noise between frames is counted while every real message still reaches its waiter."""
    rng = random.Random(5)
    with connection.inbox("COMMAND_ACK", what="acks") as acks:
        for n in range(50):
            peer.send_bytes(bytes(rng.randrange(256) for _ in range(1000)))
            peer.send(mavlink.MAVLink_command_ack_message(n, 0, 0, 0, 0, 0))
        commands = [(await acks.next(1.0)).command for _ in range(50)]
    assert commands == list(range(50))
    assert connection.stats().codec.garbage_bytes >= 50_000
    assert connection.is_open


async def test_messages_from_other_systems_do_not_answer_our_waiters(
    peer: ScriptedPeer, connection: MavConnection
) -> None:
    """Test that an ACK from another system id is not taken as the vehicle's answer."""
    stranger = ScriptedPeer(system_id=42)
    stranger.transport = peer.transport
    with connection.inbox("COMMAND_ACK", what="ack") as acks:
        peer.send_bytes(stranger.codec.encode(mavlink.MAVLink_command_ack_message(400, 0, 0, 0, 0, 0)))
        with pytest.raises(VehicleTimeout):
            await acks.next(0.2)


async def test_cancelled_wait_leaves_no_waiter(connection: MavConnection) -> None:
    """Test that cancelling a wait unregisters its inbox."""
    before = connection.pending_waiters()
    task = asyncio.create_task(connection.wait_message("PARAM_VALUE", timeout_s=10, what="never"))
    await eventually(lambda: connection.pending_waiters() == before + 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connection.pending_waiters() == before


async def test_close_wakes_waiters_with_link_closed(peer: ScriptedPeer) -> None:
    """Test that closing the connection ends pending waits with LinkClosed instead of a hang."""
    conn = MavConnection(peer.transport)
    await conn.open()
    task = asyncio.create_task(conn.wait_message("PARAM_VALUE", timeout_s=10, what="never"))
    await eventually(lambda: conn.pending_waiters() == 1)
    await conn.close()
    with pytest.raises(LinkClosed):
        await task
    with pytest.raises(LinkClosed):
        conn.send(peer.heartbeat())


async def test_not_reentrant(peer: ScriptedPeer) -> None:
    """Test that entering an open connection again is refused with a clear error."""
    conn = MavConnection(peer.transport)
    async with conn:
        with pytest.raises(RuntimeError, match="not re-entrant"):
            await conn.__aenter__()


async def test_failing_listener_does_not_stop_the_reader(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that an exception in a listener is counted and routing goes on."""

    def broken(_message: object) -> None:
        raise ValueError("boom")

    connection.add_listener("COMMAND_ACK", broken)
    with connection.inbox("COMMAND_ACK", what="ack") as acks:
        peer.send(mavlink.MAVLink_command_ack_message(1, 0, 0, 0, 0, 0))
        assert (await acks.next(1.0)).command == 1
    assert connection.stats().listener_errors == 1


async def test_failing_predicate_does_not_stop_the_reader(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a waiter whose predicate raises is counted, and other waiters still get their messages."""

    def broken(_message: object) -> bool:
        raise AttributeError("no such field")

    with connection.inbox("COMMAND_ACK", broken, what="broken"), connection.inbox("COMMAND_ACK", what="fine") as fine:
        peer.send(mavlink.MAVLink_command_ack_message(7, 0, 0, 0, 0, 0))
        assert (await fine.next(1.0)).command == 7
    assert connection.stats().listener_errors == 1
    assert connection.is_open


async def test_round_trip_is_kept_per_link_and_protocol_and_seeds_the_unmeasured(connection: MavConnection) -> None:
    """Test that each sub-protocol keeps its own estimate across calls (a second transfer starts from the
    first one's), that one never measured starts from the link's others, and that the bounds are the
    caller's."""
    command = connection.rtt("command", min_timeout_s=0.0, max_timeout_s=1.5)
    command.sample(0.03)
    mission = connection.rtt("mission", min_timeout_s=0.1, max_timeout_s=1.5)
    assert mission.srtt_s == pytest.approx(0.03)  # seeded from the commands
    mission.sample(0.2)
    again = connection.rtt("mission", min_timeout_s=0.2, max_timeout_s=3.0)
    assert again is mission
    assert (again.min_timeout_s, again.max_timeout_s) == (0.2, 3.0)
    assert command.srtt_s == pytest.approx(0.03)  # its own samples stay its own
    assert connection.rtt("ftp", min_timeout_s=0.1, max_timeout_s=1.0).measured
