"""The command protocol against a scripted peer."""

from __future__ import annotations

import asyncio

import pytest

from flightctl.dialect import mavlink
from flightctl.errors import CommandTimeout, ConditionTimeout, ModeError, VehicleRejected
from flightctl.link.connection import MavConnection
from flightctl.vehicle.commands import CommandPolicy, Commands
from tests.support.peer import ScriptedPeer

FAST = CommandPolicy(reply_timeout_s=0.1, attempts=3, in_progress_timeout_s=0.5)


async def test_command_retried_after_lost_ack(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a lost ACK makes us resend with the next confirmation number, and the later ACK counts."""
    peer.on("COMMAND_LONG", lambda cmd: peer.ack(cmd) if cmd.confirmation == 1 else None)
    ack = await Commands(connection, FAST).long(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH)
    assert ack.result == mavlink.MAV_RESULT_ACCEPTED
    assert [c.confirmation for c in peer.sent("COMMAND_LONG")] == [0, 1]


async def test_command_timeout_names_the_command(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a command never ACKed raises CommandTimeout naming it, after every attempt was sent."""
    with pytest.raises(CommandTimeout, match=r"RETURN_TO_LAUNCH: no COMMAND_ACK after 3 attempt") as caught:
        await Commands(connection, FAST).long(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH)
    assert caught.value.command == "NAV_RETURN_TO_LAUNCH"
    assert [c.confirmation for c in peer.sent("COMMAND_LONG")] == [0, 1, 2]
    assert connection.pending_waiters() == 0


async def test_rejection_carries_result_and_vehicle_explanation(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that VehicleRejected carries the MAV_RESULT and what the vehicle said about it."""

    def refuse(cmd: object) -> None:
        peer.send(mavlink.MAVLink_statustext_message(mavlink.MAV_SEVERITY_CRITICAL, b"PreArm: Need Position Estimate"))
        peer.ack(cmd, mavlink.MAV_RESULT_FAILED)  # type: ignore[arg-type]

    peer.on("COMMAND_LONG", refuse)
    with pytest.raises(VehicleRejected) as caught:
        await Commands(connection, FAST).arm()
    assert caught.value.result == mavlink.MAV_RESULT_FAILED
    assert caught.value.command == "arm()"
    assert "MAV_RESULT_FAILED" in str(caught.value)
    assert "PreArm: Need Position Estimate" in str(caught.value)
    assert len(peer.sent("COMMAND_LONG")) == 1, "a NACK is final: no resend"


async def test_in_progress_stops_resending_until_final_ack(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that after IN_PROGRESS we wait for the final ACK without resending."""

    def slow(cmd: object) -> None:
        peer.ack(cmd, mavlink.MAV_RESULT_IN_PROGRESS)  # type: ignore[arg-type]
        asyncio.get_running_loop().call_later(0.3, peer.ack, cmd)

    peer.on("COMMAND_LONG", slow)
    ack = await Commands(connection, FAST).long(mavlink.MAV_CMD_PREFLIGHT_CALIBRATION)
    assert ack.result == mavlink.MAV_RESULT_ACCEPTED
    assert len(peer.sent("COMMAND_LONG")) == 1


async def test_ack_for_another_command_is_ignored(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that an ACK naming a different command does not complete ours."""
    peer.on("COMMAND_LONG", lambda cmd: peer.send(mavlink.MAVLink_command_ack_message(999, 0, 0, 0, 1, 191)))
    with pytest.raises(CommandTimeout):
        await Commands(connection, FAST).long(mavlink.MAV_CMD_NAV_LAND)


async def test_set_mode_waits_for_heartbeat(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that set_mode sends the copter's GUIDED number and returns once the heartbeat shows it."""

    def switch(cmd: object) -> None:
        peer.custom_mode = int(cmd.param2)  # type: ignore[attr-defined]
        peer.ack(cmd)  # type: ignore[arg-type]

    peer.on("COMMAND_LONG", switch)
    commands = Commands(connection, FAST)
    await commands.set_mode("guided")
    assert peer.sent("COMMAND_LONG")[0].param2 == 4
    assert commands.current_mode() == "GUIDED"


async def test_set_mode_accepted_but_never_entered_times_out(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that an ACCEPTED mode change that never shows in the heartbeat is an error, not a success."""
    peer.on("COMMAND_LONG", peer.ack)
    with pytest.raises(ConditionTimeout, match="mode AUTO"):
        await Commands(connection, FAST).set_mode("AUTO", timeout_s=0.3)


async def test_unknown_mode_is_refused_before_sending(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a mode name the vehicle type does not have is refused without sending anything."""
    with pytest.raises(ModeError, match="unknown flight mode 'FBWA'"):
        await Commands(connection, FAST).set_mode("FBWA")
    assert peer.sent("COMMAND_LONG") == []


async def test_arm_waits_for_armed_heartbeat(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that arm() returns only once the heartbeat carries the armed flag."""

    def arm(cmd: object) -> None:
        peer.ack(cmd)  # type: ignore[arg-type]
        peer.base_mode |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED

    peer.on("COMMAND_LONG", arm)
    await Commands(connection, FAST).arm()
    assert peer.sent("COMMAND_LONG")[0].param1 == 1
    assert peer.sent("COMMAND_LONG")[0].param2 == 0


async def test_command_int_carries_exact_coordinates(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that COMMAND_INT sends positions as 1e7 integers."""
    from flightctl.geo import AltFrame, Location

    peer.on("COMMAND_INT", peer.ack)
    target = Location(58.9582123, -2.9609456, 30.0, AltFrame.RELATIVE)
    await Commands(connection, FAST).reposition(target)
    sent = peer.sent("COMMAND_INT")[0]
    assert (sent.x, sent.y, sent.frame) == (589582123, -29609456, AltFrame.RELATIVE.value)


async def test_message_interval_in_microseconds(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a rate in Hz becomes SET_MESSAGE_INTERVAL in microseconds for the right message id."""
    peer.on("COMMAND_LONG", peer.ack)
    await Commands(connection, FAST).set_message_interval("GLOBAL_POSITION_INT", 4)
    sent = peer.sent("COMMAND_LONG")[0]
    assert (sent.command, sent.param1, sent.param2) == (mavlink.MAV_CMD_SET_MESSAGE_INTERVAL, 33, 250_000)


async def test_a_mode_change_whose_acks_were_all_lost_counts_when_the_heartbeat_shows_it(
    peer: ScriptedPeer, connection: MavConnection
) -> None:
    """Test that on a link that loses every COMMAND_ACK, set_mode succeeds once the heartbeat shows the new
    mode (the command was carried out), and still fails when the mode did not change."""

    def switch_without_ack(cmd: object) -> None:
        peer.custom_mode = int(cmd.param2)  # type: ignore[attr-defined]

    peer.on("COMMAND_LONG", switch_without_ack)
    commands = Commands(connection, FAST)
    await commands.set_mode("GUIDED")
    assert commands.current_mode() == "GUIDED"
    assert len(peer.sent("COMMAND_LONG")) == 3, "every attempt was made before the heartbeat was taken as the answer"
    peer.on("COMMAND_LONG", lambda _cmd: None)
    with pytest.raises(CommandTimeout, match="set_mode\\(AUTO\\)"):
        await commands.set_mode("AUTO")


async def test_an_arm_whose_acks_were_all_lost_counts_when_the_heartbeat_shows_armed(
    peer: ScriptedPeer, connection: MavConnection
) -> None:
    """Test that arm() without any ACK succeeds when the heartbeat carries the armed flag, and that a refusal
    (an ACK saying no) is never overridden by the heartbeat."""

    def arm_without_ack(_cmd: object) -> None:
        peer.base_mode |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED

    peer.on("COMMAND_LONG", arm_without_ack)
    await Commands(connection, FAST).arm()
    peer.on("COMMAND_LONG", lambda cmd: peer.ack(cmd, mavlink.MAV_RESULT_TEMPORARILY_REJECTED))  # type: ignore[arg-type]
    with pytest.raises(VehicleRejected):
        await Commands(connection, FAST).arm()
