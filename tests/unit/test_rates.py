"""Stream rates asked for in the background: a lossy link delays them, never fails the connection for them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flightctl.config import load_telemetry_config
from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.link.connection import MavConnection
from flightctl.vehicle.commands import CommandPolicy, Commands
from flightctl.vehicle.rates import StreamRates
from flightctl.vehicle.telemetry import DEFAULT_RATES_HZ, stream_rates
from tests.support.peer import ScriptedPeer

FAST = CommandPolicy(reply_timeout_s=0.05, attempts=2, in_progress_timeout_s=0.5)


async def test_unacknowledged_rates_are_asked_again_until_they_take(
    peer: ScriptedPeer, connection: MavConnection
) -> None:
    """Test that a rate whose ACKs are all lost for a while is requested again later and then acknowledged,
    while the others settle at once."""
    lost_acks = 6

    def answer(command: MAVLinkMessage) -> None:
        nonlocal lost_acks
        if command.param1 == 33 and lost_acks > 0:  # GLOBAL_POSITION_INT: its ACKs lost for six tries
            lost_acks -= 1
            return
        peer.ack(command)

    peer.on("COMMAND_LONG", answer)
    rates = StreamRates(
        connection, Commands(connection, FAST), {"GLOBAL_POSITION_INT": 5, "SYS_STATUS": 2}, retry_s=0.01
    )
    task = asyncio.create_task(rates.run())
    async with asyncio.timeout(5):
        await rates.settled.wait()
    await task
    assert [r.status for r in rates.report()] == ["acknowledged", "acknowledged"]
    requests = [c for c in peer.sent("COMMAND_LONG") if c.param1 == 33]
    assert len(requests) == 7
    rates.close()


async def test_a_refused_rate_is_reported_and_not_asked_again(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a vehicle that refuses a rate settles it as refused, with the vehicle's answer."""
    peer.on("COMMAND_LONG", lambda command: peer.ack(command, mavlink.MAV_RESULT_DENIED))
    rates = StreamRates(connection, Commands(connection, FAST), {"WIND": 1}, retry_s=0.01)
    await asyncio.wait_for(rates.run(), timeout=5)
    [wind] = rates.report()
    assert wind.status.startswith("refused: ")
    assert "MAV_RESULT_DENIED" in wind.status
    assert len(peer.sent("COMMAND_LONG")) == 1
    rates.close()


async def test_measured_rate_follows_what_arrives(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that the measured rate is what the vehicle sends, whatever was requested."""
    rates = StreamRates(connection, Commands(connection, FAST), {"SYS_STATUS": 10})
    assert rates.measured_hz("SYS_STATUS") is None
    sys_status = mavlink.MAVLink_sys_status_message(0, 0, 0, 0, 12600, 100, 90, 0, 0, 0, 0, 0, 0)
    loop = asyncio.get_running_loop()
    sent_at = []
    for _ in range(6):
        peer.send(sys_status)  # delivered to the reader synchronously
        sent_at.append(loop.time())
        await asyncio.sleep(0.05)  # the peer's own pace: the rate being measured, not a wait on a result
    measured = rates.measured_hz("SYS_STATUS")
    assert measured is not None
    assert measured == pytest.approx(5 / (sent_at[-1] - sent_at[0]), rel=0.2)
    rates.close()


def test_the_rates_asked_for_are_the_defaults_with_the_configured_changes_over_them(tmp_path: Path) -> None:
    """Test that each default rate lives once (in code) and configs/telemetry.toml holds only changes: the shipped
    file changes nothing, and a file that sets WIND to 0 changes WIND alone."""
    assert stream_rates(load_telemetry_config().rates_hz) == DEFAULT_RATES_HZ
    changed = tmp_path / "telemetry.toml"
    changed.write_text("[rates_hz]\nWIND = 0\n")
    rates = stream_rates(load_telemetry_config(changed).rates_hz)
    assert rates == {**DEFAULT_RATES_HZ, "WIND": 0}
