"""What the autopilot said during a flight, read back from its tlog(s) into time series for the report.

Time is the autopilot's (``time_boot_ms``), like the journal's ``vehicle_ms``, so the plots and the energy
integral hold at any SITL speedup. Messages that carry no boot time (SYS_STATUS, BATTERY_STATUS, VFR_HUD, WIND,
HEARTBEAT) are placed by interpolating the tlog's arrival stamps against those that do. Only the autopilot's
messages are read: the first system that sends a HEARTBEAT from a real autopilot.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as mavlink

from flightctl.errors import ConfigError

# A reading of SYS_STATUS's or BATTERY_STATUS's "unknown".
UNKNOWN_CURRENT = -1
UNKNOWN_MV = (0, 65535, -1)


@dataclass
class Samples:
    """Arrival-ordered series, each as parallel lists: times in autopilot seconds since boot."""

    position: list[tuple[float, float, float, float]] = field(default_factory=list)  # t, lat, lon, rel alt m
    ground_speed: list[tuple[float, float]] = field(default_factory=list)  # t, m/s
    battery: list[tuple[float, float, float]] = field(default_factory=list)  # t, volts, amps
    consumed: list[tuple[float, float]] = field(default_factory=list)  # t, Wh the autopilot says were used
    wind: list[tuple[float, float, float]] = field(default_factory=list)  # t, m/s, from degrees
    modes: list[tuple[float, str]] = field(default_factory=list)  # t, mode entered (changes only)
    texts: list[tuple[float, str]] = field(default_factory=list)  # t, STATUSTEXT
    message_counts: Counter[str] = field(default_factory=Counter)
    files: list[str] = field(default_factory=list)
    autopilot_restarted: bool = False  # boot time went backwards: the series after it are on a new clock

    @property
    def empty(self) -> bool:
        return not self.message_counts


def read_tlogs(paths: list[Path]) -> Samples:
    """Every whole frame of each file, in the order given (the rotation and restart order: oldest first)."""
    raw: list[tuple[float, Any]] = []
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{path}: no such telemetry log")
        log = mavutil.mavlink_connection(str(path), dialect="ardupilotmega", robust_parsing=True)
        try:
            while (message := log.recv_match()) is not None:
                if message.get_type() != "BAD_DATA":
                    raw.append((float(message._timestamp), message))
        finally:
            log.close()
    samples = _samples(raw)
    samples.files = [str(path) for path in paths]
    return samples


def _autopilot(raw: list[tuple[float, Any]]) -> int | None:
    for _wall, message in raw:
        if message.get_type() == "HEARTBEAT" and message.autopilot != mavlink.MAV_AUTOPILOT_INVALID:
            return int(message.get_srcSystem())
    return None


def _samples(raw: list[tuple[float, Any]]) -> Samples:
    samples = Samples()
    system = _autopilot(raw)
    if system is None:
        return samples
    ours = [(wall, m) for wall, m in raw if m.get_srcSystem() == system and m.get_srcComponent() == 1]
    stamped = [(wall, m.time_boot_ms / 1000.0) for wall, m in ours if hasattr(m, "time_boot_ms")]
    if not stamped:
        return samples
    walls = np.array([w for w, _ in stamped])
    boots = np.array([b for _, b in stamped])
    samples.autopilot_restarted = bool(np.any(np.diff(boots) < -1.0))

    def boot_time(wall: float, message: Any) -> float:
        if hasattr(message, "time_boot_ms"):
            return float(message.time_boot_ms) / 1000.0
        return float(np.interp(wall, walls, boots))

    for wall, message in ours:
        kind = message.get_type()
        samples.message_counts[kind] += 1
        t = boot_time(wall, message)
        if kind == "GLOBAL_POSITION_INT" and (message.lat, message.lon) != (0, 0):
            samples.position.append((t, message.lat / 1e7, message.lon / 1e7, message.relative_alt / 1000.0))
        elif kind == "VFR_HUD":
            samples.ground_speed.append((t, float(message.groundspeed)))
        elif kind == "SYS_STATUS" and message.voltage_battery not in UNKNOWN_MV:
            if message.current_battery != UNKNOWN_CURRENT:
                samples.battery.append((t, message.voltage_battery / 1000.0, message.current_battery / 100.0))
        elif kind == "BATTERY_STATUS" and message.id == 0 and message.energy_consumed >= 0:
            samples.consumed.append((t, message.energy_consumed / 36.0))  # hJ -> Wh
        elif kind == "WIND":
            samples.wind.append((t, float(message.speed), float(message.direction) % 360))
        elif kind == "HEARTBEAT":
            mode = mavutil.mode_string_v10(message)
            if not samples.modes or samples.modes[-1][1] != mode:
                samples.modes.append((t, mode))
        elif kind == "STATUSTEXT":
            samples.texts.append((t, str(message.text)))
    return samples
