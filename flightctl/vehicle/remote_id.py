"""``vehicle.remote_id``: the companion computer's side of OpenDroneID (Direct Remote ID).

ArduPilot's AP_OpenDroneID builds the broadcast from its own position, but it takes the operator's part from a
ground-control source: the UAS ID (BASIC_ID), the operator ID, the self-ID and the operator's location (SYSTEM,
then SYSTEM_UPDATE). On a delivery aircraft there is no pilot with a ground station beside it, so the companion
is that source. ArduPilot accepts these messages on any link and passes them, with its location, to the
transmitter on the port ``DID_MAVPORT`` names (or the DroneCAN driver ``DID_CANDRIVER`` names); the transmitter
answers with OPEN_DRONE_ID_ARM_STATUS on that port, which ArduPilot forwards to us like any broadcast.

What ArduPilot and the transmitter expect, from their sources (AP_OpenDroneID.cpp, ArduRemoteID's
transport.cpp), and what we do about it:
- ArduPilot refuses to arm (``DID_OPTIONS`` bit 0) without a BASIC_ID, without an operator location, without
  SYSTEM or SYSTEM_UPDATE in the last 3 s, and without a GOOD_TO_ARM ARM_STATUS in the last 3 s.
- ArduRemoteID takes the operator location as stale when the SYSTEM timestamp has not changed for 3 s, and
  the self-ID and operator ID when they are older than 22 s.
- So SYSTEM_UPDATE goes every second of the autopilot's time, with the autopilot's GPS time as its timestamp
  (so it advances at a simulation's speed too), and the static messages every 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flightctl.dialect import MAVLinkMessage, enum_name, mavlink
from flightctl.errors import FlightctlError, Unavailable
from flightctl.link.connection import MavConnection
from flightctl.tasks import cancel_and_wait
from flightctl.vehicle.telemetry import Telemetry

if TYPE_CHECKING:  # the settings are validated where a config is loaded; pydantic is not needed to send them
    from flightctl.vehicle.remote_id_settings import OperatorLocation, RemoteIdSettings

log = logging.getLogger(__name__)

# DID_OPTIONS bit 0: ArduPilot refuses to arm unless Remote ID is healthy (AP_OpenDroneID::Options).
ENFORCE_ARMING = 1
# AP_OpenDroneID::pre_arm_check: ARM_STATUS and SYSTEM older than this block arming.
ARM_STATUS_MAX_AGE_S = 3.0
OPERATOR_LOCATION_MAX_AGE_S = 3.0
SYSTEM_UPDATE_PERIOD_S = 1.0
STATIC_PERIOD_S = 5.0
# OpenDroneID timestamps count seconds from 2019-01-01 00:00 UTC (ASTM F3411, the MAVLink message's doc).
ODID_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)
ODID_BROADCAST = 0  # target component 0: ArduPilot handles it and routes it on to the transmitter

_UA_TYPES = {
    "aeroplane": mavlink.MAV_ODID_UA_TYPE_AEROPLANE,
    "helicopter-or-multirotor": mavlink.MAV_ODID_UA_TYPE_HELICOPTER_OR_MULTIROTOR,
    "hybrid-lift": mavlink.MAV_ODID_UA_TYPE_HYBRID_LIFT,
}
_CATEGORIES = {
    "open": mavlink.MAV_ODID_CATEGORY_EU_OPEN,
    "specific": mavlink.MAV_ODID_CATEGORY_EU_SPECIFIC,
    "certified": mavlink.MAV_ODID_CATEGORY_EU_CERTIFIED,
}


@dataclass(frozen=True)
class RemoteIdStatus:
    """What the companion knows of Remote ID now, in the autopilot's time (``time_boot_ms``)."""

    now_ms: int | None
    settings: RemoteIdSettings | None
    arm_status: int | None = None  # the transmitter's last MAV_ODID_ARM_STATUS
    arm_error: str = ""
    arm_status_ms: int | None = None
    operator_location_sent_ms: int | None = None

    def age_s(self, at_ms: int | None) -> float | None:
        if at_ms is None or self.now_ms is None:
            return None
        return max(0.0, (self.now_ms - at_ms) / 1000.0)

    def problems(self) -> list[str]:
        """Each reason Remote ID is not healthy, in words an operator can act on; [] when it is."""
        found: list[str] = []
        settings = self.settings
        if settings is None:
            found.append(
                "no Remote ID settings to send (the onboard config's [remote_id]; deliver and leg check: --remote-id)"
            )
        elif settings.operator_id is None:
            found.append("no operator ID configured")
        elif not settings.operator_id.startswith(settings.country):
            found.append(f"operator ID {settings.operator_id} is not from {settings.country}")
        if settings is not None and settings.operator_location is None:
            found.append("no operator location configured")
        elif settings is not None:
            sent = self.age_s(self.operator_location_sent_ms)
            if sent is None:
                found.append("operator location never sent to the autopilot")
            elif sent > OPERATOR_LOCATION_MAX_AGE_S:
                found.append(
                    f"operator location stale: last sent {sent:.1f} s ago (limit {OPERATOR_LOCATION_MAX_AGE_S:g} s)"
                )
        heard = self.age_s(self.arm_status_ms)
        if heard is None:
            found.append("no Remote ID transmitter: no OPEN_DRONE_ID_ARM_STATUS heard")
        elif heard > ARM_STATUS_MAX_AGE_S:
            found.append(f"Remote ID transmitter silent for {heard:.1f} s (limit {ARM_STATUS_MAX_AGE_S:g} s)")
        elif self.arm_status != mavlink.MAV_ODID_ARM_STATUS_GOOD_TO_ARM:
            found.append(f"Remote ID transmitter reports a failure: {self.arm_error or 'no reason given'}")
        return found

    @property
    def healthy(self) -> bool:
        return not self.problems()

    def report(self) -> dict[str, object] | None:
        """For telemetry and status (docs/mqtt.md, ``remote_id``): None for an aircraft flying without Remote ID
        (no settings, no transmitter ever heard)."""
        if self.settings is None and self.arm_status is None:
            return None
        heard = self.age_s(self.arm_status_ms)
        return {
            "healthy": self.healthy,
            "transmitter": None if self.arm_status is None else arm_status_name(self.arm_status),
            "transmitter_age_s": None if heard is None else round(heard, 1),
            "operator_id": None if self.settings is None else self.settings.operator_id,
            "problems": self.problems()[:8],
        }


def odid_timestamp(utc: datetime) -> int:
    return max(0, int((utc - ODID_EPOCH).total_seconds()))


def _text(value: str, size: int) -> bytes:
    return value.encode("ascii")[:size].ljust(size, b"\0")


class RemoteIdError(Unavailable):
    """Remote ID could not be sent (the link is closed)."""


class RemoteId:
    """``vehicle.remote_id``: ``status()`` at any time; ``broadcast(settings)`` runs until cancelled."""

    def __init__(self, connection: MavConnection, telemetry: Telemetry) -> None:
        self._connection = connection
        self._telemetry = telemetry
        self.settings: RemoteIdSettings | None = None
        self._status = RemoteIdStatus(now_ms=None, settings=None)
        self._remove = connection.add_listener("OPEN_DRONE_ID_ARM_STATUS", self._arm_status)

    def close(self) -> None:
        self._remove()

    def status(self) -> RemoteIdStatus:
        return replace(self._status, now_ms=self._telemetry.state.time_boot_ms, settings=self.settings)

    def _arm_status(self, m: MAVLinkMessage) -> None:
        if m.get_srcSystem() != self._connection.target_system:
            return  # another aircraft's transmitter on a shared link
        raw = m.error.encode("latin-1") if isinstance(m.error, str) else bytes(m.error)
        self._status = replace(
            self._status,
            arm_status=int(m.status),
            arm_error=raw.split(b"\0", 1)[0].decode("ascii", "replace").strip(),
            arm_status_ms=self._telemetry.state.time_boot_ms,
        )

    # ---- sending --------------------------------------------------------------------------------------------

    def _utc(self) -> datetime:
        """The autopilot's GPS time when it has one (it runs at a simulation's speed), else ours."""
        state = self._telemetry.state
        if state.utc_us is not None and state.utc_received_monotonic_s is not None:
            return datetime.fromtimestamp(
                state.utc_us / 1e6 + (time.monotonic() - state.utc_received_monotonic_s), tz=UTC
            )
        return datetime.now(UTC)

    def _static_messages(self, settings: RemoteIdSettings) -> list[MAVLinkMessage]:
        target = self._connection.target_system
        no_mac = [0] * 20
        messages: list[MAVLinkMessage] = [
            mavlink.MAVLink_open_drone_id_basic_id_message(
                target, ODID_BROADCAST, no_mac, mavlink.MAV_ODID_ID_TYPE_SERIAL_NUMBER, _UA_TYPES[settings.ua_type],
                list(_text(settings.uas_id, 20)),
            ),
            mavlink.MAVLink_open_drone_id_self_id_message(
                target, ODID_BROADCAST, no_mac, mavlink.MAV_ODID_DESC_TYPE_TEXT, _text(settings.self_id, 23)
            ),
        ]  # fmt: skip
        if settings.operator_id is not None:
            messages.append(
                mavlink.MAVLink_open_drone_id_operator_id_message(
                    target, ODID_BROADCAST, no_mac, mavlink.MAV_ODID_OPERATOR_ID_TYPE_CAA,
                    _text(settings.operator_id, 20),
                )
            )  # fmt: skip
        location = settings.operator_location
        if location is not None:
            messages.append(
                mavlink.MAVLink_open_drone_id_system_message(
                    target, ODID_BROADCAST, no_mac, mavlink.MAV_ODID_OPERATOR_LOCATION_TYPE_FIXED,
                    mavlink.MAV_ODID_CLASSIFICATION_TYPE_EU, round(location.lat_deg * 1e7),
                    round(location.lon_deg * 1e7), 1, 0, -1000.0, -1000.0, _CATEGORIES[settings.category],
                    mavlink.MAV_ODID_CLASS_EU_UNDECLARED, location.alt_m, odid_timestamp(self._utc()),
                )
            )  # fmt: skip
        return messages

    def _system_update(self, location: OperatorLocation) -> MAVLinkMessage:
        return mavlink.MAVLink_open_drone_id_system_update_message(
            self._connection.target_system,
            ODID_BROADCAST,
            round(location.lat_deg * 1e7),
            round(location.lon_deg * 1e7),
            location.alt_m,
            odid_timestamp(self._utc()),
        )

    async def broadcast(self, settings: RemoteIdSettings) -> None:
        """Send the operator's part until cancelled. A closed link ends it with RemoteIdError; anything the link
        drops is sent again on the next round."""
        static_due_ms: int | None = None
        while True:
            now_ms = self._telemetry.state.time_boot_ms
            if static_due_ms is None or now_ms is None or now_ms >= static_due_ms:
                for message in self._static_messages(settings):
                    self._send(message)
                static_due_ms = None if now_ms is None else now_ms + int(STATIC_PERIOD_S * 1000)
            if settings.operator_location is not None:
                self._send(self._system_update(settings.operator_location))
                self._status = replace(self._status, operator_location_sent_ms=now_ms)
            await self._vehicle_second()

    @contextlib.asynccontextmanager
    async def broadcasting(self, settings: RemoteIdSettings | None) -> AsyncIterator[asyncio.Task[None] | None]:
        """The aircraft's Remote ID settings for the block, and ``broadcast`` in the background (the task is
        yielded). A sender that dies leaves the settings in place, so the operator location goes stale and
        says so. Without settings nothing is sent: the go/no-go then says Remote ID is not configured."""
        if settings is None:
            yield None
            return
        self.settings = settings
        task = asyncio.create_task(self.broadcast(settings), name="remote id broadcast")
        try:
            yield task
        finally:
            self.settings = None
            failed = await cancel_and_wait(task)
            if failed is not None:
                log.warning("Remote ID broadcast had stopped: %s", failed)

    def _send(self, message: MAVLinkMessage) -> None:
        try:
            self._connection.send(message)
        except FlightctlError as exc:
            raise RemoteIdError(f"Remote ID: could not send {message.get_type()}: {exc}") from exc

    async def _vehicle_second(self) -> None:
        """One second of the autopilot's time, or of ours if its clock stops (a lost link: keep sending)."""
        start = self._telemetry.state.time_boot_ms
        if start is None:
            await asyncio.sleep(SYSTEM_UPDATE_PERIOD_S)
            return
        target = start + int(SYSTEM_UPDATE_PERIOD_S * 1000)
        with contextlib.suppress(FlightctlError, TimeoutError):
            async with asyncio.timeout(SYSTEM_UPDATE_PERIOD_S):
                await self._telemetry.wait_until(
                    lambda s: s.time_boot_ms is not None and s.time_boot_ms >= target,
                    timeout_s=SYSTEM_UPDATE_PERIOD_S,
                    what="a second of vehicle time",
                )


def arm_status_name(status: int | None) -> str:
    return "none" if status is None else enum_name("MAV_ODID_ARM_STATUS", status).removeprefix("MAV_ODID_ARM_STATUS_")
