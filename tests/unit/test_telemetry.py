"""Telemetry state, waits on vehicle time, and streams that let go."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from flightctl.dialect import mavlink
from flightctl.errors import ConditionTimeout
from flightctl.geo import AltFrame
from flightctl.link.connection import MavConnection
from flightctl.vehicle.telemetry import EKF_NAV_READY, Clock, Telemetry
from tests.support.conditions import eventually
from tests.support.peer import ScriptedPeer


def position(time_ms: int, relative_alt_mm: int) -> mavlink.MAVLink_message:
    return mavlink.MAVLink_global_position_int_message(
        time_ms, 589582000, -29609000, 20_000 + relative_alt_mm, relative_alt_mm, 100, -200, 50, 9000
    )


async def test_state_follows_messages(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that position, GPS, EKF, battery and pre-arm state are decoded with units and frames."""
    telemetry = Telemetry(connection)
    peer.send(position(1000, 10_500))
    peer.send(mavlink.MAVLink_gps_raw_int_message(0, 3, 589582000, -29609000, 20000, 80, 100, 0, 0, 14))
    peer.send(mavlink.MAVLink_ekf_status_report_message(EKF_NAV_READY, 0, 0, 0, 0, 0))
    prearm = mavlink.MAV_SYS_STATUS_PREARM_CHECK
    peer.send(mavlink.MAVLink_sys_status_message(prearm, prearm, prearm, 0, 12_600, 1500, 87, 0, 0, 0, 0, 0, 0))
    state = await telemetry.wait_until(lambda s: s.prearm_ok is not None, timeout_s=2, what="sys status")
    assert state.position is not None
    assert state.position.frame is AltFrame.ABSOLUTE
    assert state.position.alt_m == pytest.approx(30.5)
    assert state.relative_alt_m == pytest.approx(10.5)
    assert state.velocity_ned_m_s == (1.0, -2.0, 0.5)
    assert state.heading_deg == 90.0
    assert (state.gps_fix_type, state.gps_satellites, state.gps_hdop) == (3, 14, 0.8)
    assert state.battery_voltage_v == pytest.approx(12.6)
    assert state.battery_remaining_pct == 87
    assert state.ready_to_arm


async def test_wait_until_deadline_runs_on_vehicle_time(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a vehicle-time wait expires when the vehicle's clock passes it, however fast that clock runs."""
    telemetry = Telemetry(connection)

    async def fast_clock() -> None:  # 10 s of vehicle time in about 0.2 s of wall time
        for step in range(100):
            peer.send(mavlink.MAVLink_system_time_message(0, 1000 + step * 100))
            await asyncio.sleep(0.002)

    peer.send(mavlink.MAVLink_system_time_message(0, 1000))
    await telemetry.wait_until(lambda s: s.time_boot_ms is not None, timeout_s=1, what="clock", clock=Clock.WALL)
    clock = asyncio.create_task(fast_clock())
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConditionTimeout, match="never: not reached within 5 s"):
        await telemetry.wait_until(lambda _s: False, timeout_s=5, what="never")
    assert loop.time() - started < 2.0, "5 s of vehicle time passed in well under 2 s of wall time"
    await clock


async def test_stopped_state_stream_leaves_no_subscription(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a consumer that stops iterating (break, then the generator is closed) releases the stream."""
    telemetry = Telemetry(connection)

    async def feed() -> None:
        for n in range(1000):
            peer.send(position(1000 + n, n))
            await asyncio.sleep(0.001)

    feeder = asyncio.create_task(feed())
    async with contextlib.aclosing(telemetry.states()) as states:
        async for state in states:
            assert telemetry.subscriptions() == 1
            if state.relative_alt_m is not None and state.relative_alt_m > 0.005:
                break
    assert telemetry.subscriptions() == 0
    feeder.cancel()


async def test_cancelled_stream_consumer_leaves_no_subscription(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that cancelling the task that consumes a stream releases its subscriptions."""
    telemetry = Telemetry(connection)
    waiters_before = connection.pending_waiters()

    async def consume() -> None:
        async for _text in telemetry.status_texts():
            pass

    task = asyncio.create_task(consume())
    await eventually(lambda: connection.pending_waiters() == waiters_before + 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connection.pending_waiters() == waiters_before


async def test_status_texts_stream(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that STATUSTEXTs come out of the stream with severity, in order."""
    telemetry = Telemetry(connection)
    texts = telemetry.status_texts()
    waiters_before = connection.pending_waiters()
    first = asyncio.ensure_future(anext(texts))
    await eventually(lambda: connection.pending_waiters() == waiters_before + 1)
    peer.send(mavlink.MAVLink_statustext_message(6, b"Gripper load released"))
    assert await first == (6, "Gripper load released")
    await texts.aclose()
    assert [(t.seq, t.severity, t.text) for t in telemetry.status_log] == [(1, 6, "Gripper load released")]
    assert telemetry.texts_since(1) == []


async def test_other_components_do_not_overwrite_autopilot_state(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a gimbal's heartbeat (same system, another component) does not change mode or armed."""
    telemetry = Telemetry(connection)
    gimbal = ScriptedPeer(component_id=154, mav_type=mavlink.MAV_TYPE_GIMBAL)
    peer.base_mode |= mavlink.MAV_MODE_FLAG_SAFETY_ARMED
    await telemetry.wait_until(lambda s: s.armed, timeout_s=2, what="armed", clock=Clock.WALL)
    peer.stop()  # only the gimbal speaks from here on
    for _ in range(5):
        peer.send_bytes(gimbal.codec.encode(mavlink.MAVLink_heartbeat_message(26, 8, 0, 0, 4, 3)))
    peer.send(mavlink.MAVLink_statustext_message(6, b"after the gimbal"))  # read after the gimbal's: a marker
    await telemetry.wait_until(lambda _s: telemetry.status_count == 1, timeout_s=2, what="marker", clock=Clock.WALL)
    assert telemetry.state.armed
    assert telemetry.state.mode == "STABILIZE"
