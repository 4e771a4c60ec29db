"""The vehicle's state as telemetry tells it, kept current by the link's reader.

``Telemetry.state`` is updated in place by listeners (cheap, no awaits); consumers either read it, wait for
a condition on it (``wait_until``, with deadlines in *vehicle* time so tests hold at any SITL speedup), or
iterate a stream (``states()``, ``status_texts()``) whose subscription ends when the consumer stops.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from flightctl.dialect import MAVLinkMessage, enum_name, mavlink
from flightctl.errors import ConditionTimeout
from flightctl.geo import AltFrame, Location
from flightctl.link.connection import MavConnection
from flightctl.vehicle.modes import mode_name

# What we ask the vehicle to stream unless configuration says otherwise (Hz); configs/telemetry.toml holds only
# an operator's changes (``stream_rates``). Position at 5 Hz for the decisions and the drop; the rest at 1-2 Hz.
DEFAULT_RATES_HZ: Mapping[str, float] = {
    "GLOBAL_POSITION_INT": 5,
    "ATTITUDE": 4,
    "VFR_HUD": 2,
    "SYS_STATUS": 1,
    "BATTERY_STATUS": 1,
    "GPS_RAW_INT": 1,
    "EKF_STATUS_REPORT": 1,
    "SYSTEM_TIME": 1,
    "MISSION_CURRENT": 1,
    "HOME_POSITION": 0.2,
    "WIND": 1,
    "EXTENDED_SYS_STATE": 1,
    "SERVO_OUTPUT_RAW": 2,
    "FENCE_STATUS": 1,
}


def stream_rates(changes: Mapping[str, float]) -> dict[str, float]:
    """The rates to ask for: the defaults, with the configured changes over them."""
    return {**DEFAULT_RATES_HZ, **changes}


# EKF_STATUS_REPORT flags that must all be set before the vehicle can navigate (ArduPilot's own readiness
# test in Tools/autotest waits for the same set).
EKF_NAV_READY = (
    mavlink.EKF_ATTITUDE
    | mavlink.EKF_VELOCITY_HORIZ
    | mavlink.EKF_VELOCITY_VERT
    | mavlink.EKF_POS_HORIZ_REL
    | mavlink.EKF_POS_HORIZ_ABS
    | mavlink.EKF_POS_VERT_ABS
    | mavlink.EKF_PRED_POS_HORIZ_REL
    | mavlink.EKF_PRED_POS_HORIZ_ABS
)
_PREARM_BIT = mavlink.MAV_SYS_STATUS_PREARM_CHECK


@dataclass(frozen=True)
class StatusText:
    seq: int
    severity: int
    text: str


class Clock(enum.Enum):
    VEHICLE = "vehicle"  # the autopilot's time_boot_ms: runs at the simulation's speed
    WALL = "wall"


@dataclass
class VehicleState:
    time_boot_ms: int | None = None
    mode: str | None = None
    armed: bool = False
    system_status: int | None = None
    position: Location | None = None  # altitude above mean sea level
    position_time_ms: int | None = None  # the vehicle time of ``position`` and ``velocity_ned_m_s``
    relative_alt_m: float | None = None
    velocity_ned_m_s: tuple[float, float, float] | None = None
    groundspeed_m_s: float | None = None
    airspeed_m_s: float | None = None
    climb_m_s: float | None = None
    heading_deg: float | None = None
    roll_deg: float | None = None
    pitch_deg: float | None = None
    yaw_deg: float | None = None
    battery_voltage_v: float | None = None
    battery_current_a: float | None = None
    battery_remaining_pct: int | None = None
    battery_consumed_wh: float | None = None
    gps_fix_type: int | None = None
    gps_satellites: int | None = None
    gps_hdop: float | None = None
    gps_hacc_m: float | None = None  # GPS_RAW_INT.h_acc: the receiver's own horizontal accuracy
    gps_position: Location | None = None  # the receiver's fix, before the EKF (altitude above mean sea level)
    ekf_flags: int | None = None
    prearm_ok: bool | None = None
    home: Location | None = None
    mission_current_seq: int | None = None
    mission_total: int | None = None
    last_item_reached: int | None = None
    wind_direction_deg: float | None = None  # where the wind blows FROM, as ArduPilot's WIND reports it
    wind_speed_m_s: float | None = None
    landed_state: int | None = None
    servo_outputs_us: tuple[int, ...] = field(default_factory=tuple)
    fence_breached: bool | None = None
    # SYSTEM_TIME.time_unix_usec (the autopilot's UTC, from GPS) and the companion's monotonic clock when it
    # came: None until the autopilot knows the time.
    utc_us: int | None = None
    utc_received_monotonic_s: float | None = None

    @property
    def ekf_nav_ready(self) -> bool:
        return self.ekf_flags is not None and (self.ekf_flags & EKF_NAV_READY) == EKF_NAV_READY

    @property
    def gps_fix_name(self) -> str:
        if self.gps_fix_type is None:
            return "unknown"
        return enum_name("GPS_FIX_TYPE", self.gps_fix_type).removeprefix("GPS_FIX_TYPE_")

    @property
    def ready_to_arm(self) -> bool:
        """EKF and GPS good enough to arm in a position mode, and ArduPilot's own pre-arm checks passing."""
        return bool(self.prearm_ok) and self.ekf_nav_ready and (self.gps_fix_type or 0) >= 3

    def snapshot(self) -> VehicleState:
        return copy.copy(self)


def _alt_m(millimetres: int) -> float:
    return millimetres / 1000.0


def _unknown_if(value: int, sentinel: int) -> int | None:
    return None if value == sentinel else value


class Telemetry:
    """``vehicle.telemetry``."""

    def __init__(self, connection: MavConnection) -> None:
        self._connection = connection
        self.state = VehicleState()
        self.status_log: deque[StatusText] = deque(maxlen=200)
        self.status_count = 0  # STATUSTEXTs seen so far: a position in the log that survives its rotation
        self._wakeups: set[asyncio.Event] = set()
        handlers: dict[str, Callable[[MAVLinkMessage], None]] = {
            "HEARTBEAT": self._heartbeat,
            "GLOBAL_POSITION_INT": self._global_position,
            "ATTITUDE": self._attitude,
            "VFR_HUD": self._vfr_hud,
            "SYS_STATUS": self._sys_status,
            "BATTERY_STATUS": self._battery_status,
            "GPS_RAW_INT": self._gps,
            "EKF_STATUS_REPORT": self._ekf,
            "SYSTEM_TIME": self._system_time,
            "HOME_POSITION": self._home,
            "MISSION_CURRENT": self._mission_current,
            "MISSION_ITEM_REACHED": self._item_reached,
            "WIND": self._wind,
            "EXTENDED_SYS_STATE": self._extended_sys_state,
            "SERVO_OUTPUT_RAW": self._servo_output,
            "STATUSTEXT": self._status_text,
            "FENCE_STATUS": self._fence_status,
        }
        self._removers = [connection.add_listener(name, self._guarded(handler)) for name, handler in handlers.items()]

    def close(self) -> None:
        for remove in self._removers:
            remove()
        self._removers = []

    def _guarded(self, handler: Callable[[MAVLinkMessage], None]) -> Callable[[MAVLinkMessage], None]:
        connection = self._connection

        def listener(message: MAVLinkMessage) -> None:
            if not connection.is_from_vehicle(message):
                return
            vehicle = connection.vehicle
            if vehicle is not None and message.get_srcComponent() != vehicle.component_id:
                return  # a gimbal's or camera's heartbeat is not the autopilot's state
            handler(message)
            for wakeup in self._wakeups:
                wakeup.set()

        return listener

    # ---- message handlers (run in the reader: keep them cheap) ------------------------------------------

    def _heartbeat(self, m: MAVLinkMessage) -> None:
        self.state.armed = bool(m.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)
        self.state.mode = mode_name(m.type, m.custom_mode)
        self.state.system_status = m.system_status

    def _global_position(self, m: MAVLinkMessage) -> None:
        self._tick(m.time_boot_ms)
        self.state.position = Location(m.lat / 1e7, m.lon / 1e7, _alt_m(m.alt), AltFrame.ABSOLUTE)
        self.state.position_time_ms = m.time_boot_ms
        self.state.relative_alt_m = _alt_m(m.relative_alt)
        self.state.velocity_ned_m_s = (m.vx / 100.0, m.vy / 100.0, m.vz / 100.0)
        if m.hdg != 65535:
            self.state.heading_deg = m.hdg / 100.0

    def _attitude(self, m: MAVLinkMessage) -> None:
        self._tick(m.time_boot_ms)
        self.state.roll_deg = math.degrees(m.roll)
        self.state.pitch_deg = math.degrees(m.pitch)
        self.state.yaw_deg = math.degrees(m.yaw)

    def _vfr_hud(self, m: MAVLinkMessage) -> None:
        self.state.groundspeed_m_s = float(m.groundspeed)
        self.state.airspeed_m_s = float(m.airspeed)
        self.state.climb_m_s = float(m.climb)

    def _sys_status(self, m: MAVLinkMessage) -> None:
        self.state.battery_voltage_v = None if m.voltage_battery == 65535 else m.voltage_battery / 1000.0
        self.state.battery_current_a = None if m.current_battery == -1 else m.current_battery / 100.0
        self.state.battery_remaining_pct = _unknown_if(m.battery_remaining, -1)
        if m.onboard_control_sensors_present & _PREARM_BIT:
            self.state.prearm_ok = bool(m.onboard_control_sensors_health & _PREARM_BIT)

    def _battery_status(self, m: MAVLinkMessage) -> None:
        if m.id != 0:
            return
        if m.energy_consumed != -1:
            self.state.battery_consumed_wh = m.energy_consumed / 36.0  # hJ -> Wh

    def _gps(self, m: MAVLinkMessage) -> None:
        self.state.gps_fix_type = m.fix_type
        self.state.gps_satellites = _unknown_if(m.satellites_visible, 255)
        self.state.gps_hdop = None if m.eph == 65535 else m.eph / 100.0
        h_acc = getattr(m, "h_acc", 0)  # MAVLink 2 extension: 0 when the receiver does not say
        self.state.gps_hacc_m = h_acc / 1000.0 if h_acc else None
        if m.fix_type >= 2:
            self.state.gps_position = Location(m.lat / 1e7, m.lon / 1e7, m.alt / 1000.0, AltFrame.ABSOLUTE)

    def _ekf(self, m: MAVLinkMessage) -> None:
        self.state.ekf_flags = m.flags

    def _system_time(self, m: MAVLinkMessage) -> None:
        self._tick(m.time_boot_ms)
        if m.time_unix_usec > 0:
            self.state.utc_us = m.time_unix_usec
            self.state.utc_received_monotonic_s = time.monotonic()

    def _home(self, m: MAVLinkMessage) -> None:
        self.state.home = Location(m.latitude / 1e7, m.longitude / 1e7, _alt_m(m.altitude), AltFrame.ABSOLUTE)

    def _mission_current(self, m: MAVLinkMessage) -> None:
        self.state.mission_current_seq = m.seq
        self.state.mission_total = _unknown_if(m.total, 65535) if m.total else None

    def _item_reached(self, m: MAVLinkMessage) -> None:
        self.state.last_item_reached = m.seq

    def _wind(self, m: MAVLinkMessage) -> None:
        self.state.wind_direction_deg = float(m.direction) % 360.0
        self.state.wind_speed_m_s = float(m.speed)

    def _extended_sys_state(self, m: MAVLinkMessage) -> None:
        self.state.landed_state = m.landed_state

    def _servo_output(self, m: MAVLinkMessage) -> None:
        if m.port != 0:
            return
        self.state.servo_outputs_us = tuple(getattr(m, f"servo{n}_raw") for n in range(1, 17))

    def _status_text(self, m: MAVLinkMessage) -> None:
        self.status_count += 1
        self.status_log.append(StatusText(self.status_count, int(m.severity), str(m.text)))

    def _fence_status(self, m: MAVLinkMessage) -> None:
        self.state.fence_breached = bool(m.breach_status)

    def texts_since(self, count: int) -> list[StatusText]:
        """STATUSTEXTs that arrived after ``status_count`` was ``count`` (still in the log)."""
        return [entry for entry in self.status_log if entry.seq > count]

    def _tick(self, time_boot_ms: int) -> None:
        # time_boot_ms goes backwards only when the autopilot rebooted; take it as the new clock.
        self.state.time_boot_ms = time_boot_ms

    # ---- waiting and streaming ---------------------------------------------------------------------------

    async def wait_until(
        self,
        condition: Callable[[VehicleState], bool],
        *,
        timeout_s: float,
        what: str,
        clock: Clock = Clock.VEHICLE,
    ) -> VehicleState:
        """Wait until ``condition(state)`` holds; ``ConditionTimeout`` naming ``what`` otherwise.

        On the vehicle clock the deadline follows the autopilot's boot time, so a 60 s wait is 6 s of wall
        time at SITL speedup 10. A vehicle that stops talking would stop that clock, so a wall-clock backstop
        of twice the timeout (at least 10 s more) still ends the wait.
        """
        loop = asyncio.get_running_loop()
        wall_deadline = loop.time() + (timeout_s if clock is Clock.WALL else 2 * timeout_s + 10.0)
        start_ms = self.state.time_boot_ms
        wakeup = asyncio.Event()
        self._wakeups.add(wakeup)
        try:
            while True:
                if condition(self.state):
                    return self.state.snapshot()
                now_ms = self.state.time_boot_ms
                if clock is Clock.VEHICLE and start_ms is None:
                    start_ms = now_ms
                elapsed_vehicle_s = (now_ms - start_ms) / 1000.0 if now_ms is not None and start_ms is not None else 0
                if (clock is Clock.VEHICLE and elapsed_vehicle_s > timeout_s) or loop.time() > wall_deadline:
                    raise ConditionTimeout(f"{what}: not reached within {timeout_s:g} s ({clock.value} time)")
                wakeup.clear()
                remaining = wall_deadline - loop.time()
                try:
                    async with asyncio.timeout(min(remaining, 1.0)):
                        await wakeup.wait()
                except TimeoutError:
                    pass
        finally:
            self._wakeups.discard(wakeup)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of vehicle time."""
        start = self.state.time_boot_ms
        if start is None:
            await asyncio.sleep(seconds)
            return
        target = start + int(seconds * 1000)

        def passed(state: VehicleState) -> bool:
            return state.time_boot_ms is not None and state.time_boot_ms >= target

        await self.wait_until(passed, timeout_s=seconds + 5.0, what=f"{seconds:g} s of vehicle time")

    async def states(self, *, min_interval_s: float = 0.0) -> AsyncIterator[VehicleState]:
        """Snapshots of the state as it changes, at most one per ``min_interval_s``.

        Stopping the iteration (``break``, cancellation, ``aclose()``) releases the subscription.
        """
        wakeup = asyncio.Event()
        self._wakeups.add(wakeup)
        try:
            while True:
                await wakeup.wait()
                wakeup.clear()
                yield self.state.snapshot()
                if min_interval_s > 0:
                    await asyncio.sleep(min_interval_s)
        finally:
            self._wakeups.discard(wakeup)

    async def status_texts(self) -> AsyncIterator[tuple[int, str]]:
        """(severity, text) of each STATUSTEXT from now on."""
        async with self._connection.subscribe("STATUSTEXT") as texts:
            async for message in texts:
                yield int(message.severity), str(message.text)

    def subscriptions(self) -> int:
        """Live state streams and waits (tests use it to prove a stopped stream let go)."""
        return len(self._wakeups)
