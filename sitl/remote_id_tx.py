"""A simulated Remote ID transmitter module on the autopilot's serial port, as ArduRemoteID behaves on MAVLink.

SITL has no Remote ID transmitter. A real module (ArduRemoteID on an ESP32, BlueMark DroneBeacon) sits on the
serial port ``DID_MAVPORT`` names; ArduPilot sends it the OpenDroneID messages, and it answers once a second
with a HEARTBEAT (MAV_TYPE_ODID, component 236) and OPEN_DRONE_ID_ARM_STATUS: GOOD_TO_ARM, or a failure with
the reason. This one does the same on SITL's SERIAL5, sent to us as UDP (``--serial5 udpclient``), with the
checks of ArduRemoteID's ``Transport::arm_status_check`` (RemoteIDModule/transport.cpp):
- LOC: no vehicle location in the last 3 s, or a location of 0,0;
- ID: no BasicID (UAS ID) ever;
- SELF_ID, OP_ID: none in the last 22 s (and, stricter than ArduRemoteID, an empty operator ID is none);
- SYS: the operator location's timestamp has not changed for 3 s;
- OP_LOC: an operator location of 0,0.

Its clock is the autopilot's: one autopilot HEARTBEAT (1 Hz of the simulation's time) is one second, so the ages
hold at any speedup. Tests inject faults: ``fail(reason)`` reports a failure, ``go_silent()`` stops reporting
(it still drains the port: SITL must never block writing to it), ``recover()`` ends either.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass

from flightctl.config import configs_dir
from flightctl.daemon.settings import load_daemon_config
from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.errors import ConfigError, FlightctlError
from flightctl.link.codec import MavCodec
from flightctl.link.transport import Transport, transport_for_url
from flightctl.tasks import cancel_and_wait
from flightctl.vehicle.remote_id_settings import RemoteIdSettings

log = logging.getLogger(__name__)

LOCATION_MAX_AGE_S = 3  # transport.cpp: max_age_location_ms
OTHER_MAX_AGE_S = 22  # transport.cpp: max_age_other_ms


class Fault(enum.Enum):
    NONE = "none"
    FAIL = "fail"
    SILENT = "silent"


@dataclass
class _Seen:
    """What the module has been told, stamped with its clock (seconds of autopilot time)."""

    location_s: int | None = None
    location_zero: bool = True
    basic_id: bool = False
    self_id_s: int | None = None
    operator_id_s: int | None = None
    system_timestamp: int | None = None
    system_changed_s: int | None = None
    operator_zero: bool = True


class SimulatedTransmitter:
    """``async with SimulatedTransmitter(url) as tx:``; ``url`` is where SITL's SERIAL5 sends (``udpin:...``)."""

    def __init__(self, url: str, *, system_id: int = 1) -> None:
        self.url = url
        self._transport: Transport = transport_for_url(url)
        self._codec = MavCodec(system_id, mavlink.MAV_COMP_ID_ODID_TXRX_1)
        self._seen = _Seen()
        self._clock_s = 0
        self.fault = Fault.NONE
        self._reason = ""
        self.reports = 0  # ARM_STATUS sent: tests wait on it to know the module is up
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SimulatedTransmitter:
        await self._transport.open()
        self._task = asyncio.create_task(self._run(), name=f"simulated Remote ID transmitter {self.url}")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            failed = await cancel_and_wait(self._task)
            if failed is not None:
                log.warning("simulated transmitter had stopped: %s", failed)
        await self._transport.close()

    # ---- faults -----------------------------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        self.fault, self._reason = Fault.FAIL, reason

    def go_silent(self) -> None:
        self.fault = Fault.SILENT

    def recover(self) -> None:
        self.fault, self._reason = Fault.NONE, ""

    # ---- the module -------------------------------------------------------------------------------------

    def arm_status(self) -> tuple[int, str]:
        """(MAV_ODID_ARM_STATUS, reason) as the module would report it now."""
        if self.fault is Fault.FAIL:
            return mavlink.MAV_ODID_ARM_STATUS_PRE_ARM_FAIL_GENERIC, self._reason
        seen, now = self._seen, self._clock_s
        missing: list[str] = []

        def stale(at_s: int | None, limit_s: int) -> bool:
            return at_s is None or now - at_s > limit_s

        if stale(seen.location_s, LOCATION_MAX_AGE_S) or seen.location_zero:
            missing.append("LOC")
        if not seen.basic_id:
            missing.append("ID")
        if stale(seen.self_id_s, OTHER_MAX_AGE_S):
            missing.append("SELF_ID")
        if stale(seen.operator_id_s, OTHER_MAX_AGE_S):
            missing.append("OP_ID")
        if stale(seen.system_changed_s, LOCATION_MAX_AGE_S):
            missing.append("SYS")
        if seen.operator_zero:
            missing.append("OP_LOC")
        if missing:
            return mavlink.MAV_ODID_ARM_STATUS_PRE_ARM_FAIL_GENERIC, " ".join(missing)
        return mavlink.MAV_ODID_ARM_STATUS_GOOD_TO_ARM, ""

    async def _run(self) -> None:
        while True:
            try:
                data = await self._transport.read()
            except FlightctlError:
                return
            for message in self._codec.feed(data):
                self._take(message)

    def _take(self, m: MAVLinkMessage) -> None:
        seen, now = self._seen, self._clock_s
        name = m.get_type()
        if name == "HEARTBEAT" and m.get_srcComponent() == mavlink.MAV_COMP_ID_AUTOPILOT1:
            self._clock_s += 1
            self._report()
        elif name == "OPEN_DRONE_ID_LOCATION":
            seen.location_s = now
            seen.location_zero = m.latitude == 0 and m.longitude == 0
        elif name == "OPEN_DRONE_ID_BASIC_ID":
            seen.basic_id = seen.basic_id or (m.id_type > 0 and bytes(m.uas_id).strip(b"\0") != b"")
        elif name == "OPEN_DRONE_ID_SELF_ID":
            seen.self_id_s = now
        elif name == "OPEN_DRONE_ID_OPERATOR_ID":
            if _text(m.operator_id):
                seen.operator_id_s = now
        elif name in ("OPEN_DRONE_ID_SYSTEM", "OPEN_DRONE_ID_SYSTEM_UPDATE"):
            if m.timestamp != seen.system_timestamp:
                seen.system_timestamp, seen.system_changed_s = m.timestamp, now
            seen.operator_zero = m.operator_latitude == 0 and m.operator_longitude == 0

    def _report(self) -> None:
        if self.fault is Fault.SILENT:
            return
        status, reason = self.arm_status()
        heartbeat = mavlink.MAVLink_heartbeat_message(mavlink.MAV_TYPE_ODID, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0, 3)
        report = mavlink.MAVLink_open_drone_id_arm_status_message(status, reason.encode("ascii")[:50])
        for message in (heartbeat, report):
            self._transport.write(self._codec.encode(message))
        self.reports += 1


def _text(value: bytes | str) -> str:
    raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
    return raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()


def sitl_operator(model: str) -> RemoteIdSettings:
    """The operator's Remote ID settings SITL flies with: the ``[remote_id]`` of the shipped SITL daemon config,
    with the airframe's UA type for ``model`` (copter, plane, quadplane)."""
    settings = load_daemon_config(configs_dir() / "onboard" / "sitl.toml").remote_id
    if settings is None:
        raise ConfigError("configs/onboard/sitl.toml has no [remote_id] section")
    ua_type = {"plane": "aeroplane", "quadplane": "hybrid-lift"}.get(model, "helicopter-or-multirotor")
    return settings.model_copy(update={"ua_type": ua_type})
