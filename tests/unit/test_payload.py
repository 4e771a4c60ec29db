"""Payload errors say which kind of problem it is: configuration (fix the vehicle) or hardware (it did not move)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.errors import NotConnected
from flightctl.link.connection import MavConnection
from flightctl.vehicle.commands import CommandPolicy, Commands
from flightctl.vehicle.params import Params
from flightctl.vehicle.payload import Payload, PayloadDidNotMove, PayloadSetup, PayloadSetupError
from flightctl.vehicle.telemetry import Telemetry
from tests.support.peer import ScriptedPeer

FAST = CommandPolicy(reply_timeout_s=0.1, attempts=2, in_progress_timeout_s=0.5)


def servo_outputs(time_us: int, channel9_us: int) -> MAVLinkMessage:
    return mavlink.MAVLink_servo_output_raw_message(time_us, 0, *([1500] * 8), channel9_us, *([0] * 7))


def payload_on(connection: MavConnection, setup: PayloadSetup) -> Payload:
    payload = Payload(Commands(connection, FAST), Params(connection), Telemetry(connection))
    payload.setup = setup
    return payload


async def test_a_winch_that_is_not_configured_is_a_setup_error(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that no servo output with the winch function is a configuration error, and nothing is sent."""
    payload = payload_on(
        connection, PayloadSetup(gripper_channel=8, grab_pwm=1900, release_pwm=1100, winch_channel=None)
    )
    with pytest.raises(PayloadSetupError, match="SERVOn_FUNCTION 88"):
        await payload.winch(mavlink.WINCH_RELAXED)
    assert peer.sent("COMMAND_LONG") == []


async def test_a_winch_servo_that_does_not_move_is_a_hardware_error(
    peer: ScriptedPeer, connection: MavConnection
) -> None:
    """Test that a winch command the vehicle accepts but whose servo output stays put is PayloadDidNotMove."""
    peer.on("COMMAND_LONG", peer.ack)
    payload = payload_on(connection, PayloadSetup(gripper_channel=8, grab_pwm=1900, release_pwm=1100, winch_channel=9))
    peer.send(servo_outputs(1_000, 1500))
    await payload._telemetry.wait_until(lambda s: len(s.servo_outputs_us) >= 9, timeout_s=2, what="servo outputs")

    async def vehicle_clock() -> None:  # the vehicle keeps reporting, servo unchanged, while its time passes
        for step in itertools.count(1):
            peer.send(mavlink.MAVLink_system_time_message(0, 1_000 + step * 100))
            peer.send(servo_outputs(1_000 + step * 100_000, 1500))
            await asyncio.sleep(0.005)

    clock = asyncio.create_task(vehicle_clock())
    try:
        with pytest.raises(PayloadDidNotMove, match="winch servo 9 stayed at 1500 us"):
            await payload.winch(mavlink.WINCH_RELAXED, timeout_s=0.5)
    finally:
        clock.cancel()


async def test_addressing_a_vehicle_before_its_heartbeat_is_a_precondition(peer: ScriptedPeer) -> None:
    """Test that a mode change before any heartbeat says 'not connected', not that something timed out."""
    async with MavConnection(peer.transport, heartbeat_period_s=0.1, link_timeout_s=0.5) as connection:
        with pytest.raises(NotConnected, match="no vehicle heartbeat heard yet"):
            await Commands(connection, FAST).set_mode("AUTO")
