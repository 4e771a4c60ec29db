"""``Vehicle``: the front object. ``vehicle.commands``, ``.params``, ``.telemetry`` over one MavConnection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from flightctl.dialect import mavlink
from flightctl.errors import FlightctlError, NotConnected, VehicleTimeout
from flightctl.link.codec import SigningKey
from flightctl.link.connection import MavConnection
from flightctl.link.rtt_probe import probe_round_trip
from flightctl.link.transport import Transport, transport_for_url
from flightctl.missions.ardupilot import Firmware
from flightctl.tasks import cancel_and_wait
from flightctl.vehicle.commands import Commands
from flightctl.vehicle.ftp import MavFtp
from flightctl.vehicle.mission import MissionProtocol
from flightctl.vehicle.params import ParamEncoding, Params
from flightctl.vehicle.payload import Payload
from flightctl.vehicle.rates import StreamRates
from flightctl.vehicle.remote_id import RemoteId
from flightctl.vehicle.telemetry import DEFAULT_RATES_HZ, Clock, Telemetry, VehicleState

log = logging.getLogger(__name__)

# FIRMWARE_VERSION_TYPE, the low byte of AUTOPILOT_VERSION.flight_sw_version.
_RELEASE_TYPES = {0: "dev", 64: "alpha", 128: "beta", 192: "rc", 255: "official"}


def software_version(flight_sw_version: int, flight_custom_version: bytes | list[int] | str) -> str:
    """'4.7.0-dev (90700977)': the version and git hash an autopilot reports in AUTOPILOT_VERSION."""
    major, minor, patch, kind = (
        (flight_sw_version >> 24) & 0xFF,
        (flight_sw_version >> 16) & 0xFF,
        (flight_sw_version >> 8) & 0xFF,
        flight_sw_version & 0xFF,
    )
    raw = (
        flight_custom_version.encode("latin-1")
        if isinstance(flight_custom_version, str)
        else bytes(flight_custom_version)
    )
    git_hash = raw.split(b"\0", 1)[0].decode("ascii", "replace")
    release = _RELEASE_TYPES.get(kind, f"type {kind}")
    text = f"{major}.{minor}.{patch}" + ("" if release == "official" else f"-{release}")
    return f"{text} ({git_hash})" if git_hash else text


@dataclass(frozen=True)
class LinkOptions:
    system_id: int = 1
    target_system: int | None = None
    heartbeat_period_s: float = 1.0
    link_timeout_s: float = 3.0
    open_timeout_s: float = 10.0
    signing_key_file: Path | None = None
    signing_link_id: int = 0


class Vehicle:
    def __init__(self, connection: MavConnection) -> None:
        self.connection = connection
        self.commands = Commands(connection)
        self.params = Params(connection)
        self.telemetry = Telemetry(connection)
        self.ftp = MavFtp(connection)
        self.mission = MissionProtocol(connection, self.commands, ftp=self.ftp)
        self.payload = Payload(self.commands, self.params, self.telemetry)
        self.remote_id = RemoteId(connection, self.telemetry)
        # From AUTOPILOT_VERSION once connected, e.g. '4.7.0-dev (90700977)'; None if the vehicle did not say.
        self.software_version: str | None = None
        # Telemetry rates, asked for in the background (a lossy link must not fail the connection for them).
        self.rates: StreamRates | None = None
        self._rates_task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[int] | None = None

    @property
    def firmware(self) -> Firmware:
        """Copter or Plane rules for mission storage, from the vehicle's heartbeat."""
        identity = self.connection.vehicle
        if identity is None:
            raise NotConnected("no vehicle heartbeat heard yet: connect and wait for the vehicle first")
        return Firmware.from_mav_type(identity.mav_type)

    @property
    def state(self) -> VehicleState:
        return self.telemetry.state

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        options: LinkOptions | None = None,
        heartbeat_timeout_s: float = 30.0,
        rates_hz: Mapping[str, float] | None = DEFAULT_RATES_HZ,
    ) -> contextlib.AbstractAsyncContextManager[Vehicle]:
        """Open ``url``, wait for the vehicle's heartbeat, learn its parameter encoding, ask for telemetry."""
        options = options or LinkOptions()
        transport = transport_for_url(url, open_timeout_s=options.open_timeout_s)
        return cls.over(transport, options=options, heartbeat_timeout_s=heartbeat_timeout_s, rates_hz=rates_hz)

    @classmethod
    @contextlib.asynccontextmanager
    async def over(
        cls,
        transport: Transport,
        *,
        options: LinkOptions | None = None,
        heartbeat_timeout_s: float = 30.0,
        rates_hz: Mapping[str, float] | None = DEFAULT_RATES_HZ,
    ) -> AsyncIterator[Vehicle]:
        """Like ``connect``, over a transport built elsewhere (a fault-injecting one, a test's)."""
        options = options or LinkOptions()
        signing = None
        if options.signing_key_file is not None:
            signing = SigningKey.from_file(options.signing_key_file, options.signing_link_id)
        connection = MavConnection(
            transport,
            system_id=options.system_id,
            target_system=options.target_system,
            heartbeat_period_s=options.heartbeat_period_s,
            link_timeout_s=options.link_timeout_s,
            signing=signing,
        )
        async with connection:
            vehicle = cls(connection)
            try:
                await vehicle.start(heartbeat_timeout_s=heartbeat_timeout_s, rates_hz=rates_hz)
                yield vehicle
            finally:
                await vehicle._stop()

    async def start(self, *, heartbeat_timeout_s: float, rates_hz: Mapping[str, float] | None) -> None:
        """Everything after the link opened: the vehicle's heartbeat, its capabilities, telemetry rates."""
        try:
            await self.connection.wait_vehicle(timeout_s=heartbeat_timeout_s)
        except VehicleTimeout:
            raise VehicleTimeout(
                f"{self.connection.transport.url}: no autopilot heartbeat within {heartbeat_timeout_s:g} s"
            ) from None
        # The link's round trip, measured while the rest starts (link/rtt_probe.py): a first transfer on a lossy
        # radio then waits for answers as long as the radio needs, not its bound.
        self._probe_task = asyncio.create_task(probe_round_trip(self.connection), name="round-trip probe")
        await self._learn_capabilities()
        if rates_hz:
            self.rates = StreamRates(self.connection, self.commands, rates_hz)
            self._rates_task = asyncio.create_task(self.rates.run(), name="stream rates")

    async def _stop(self) -> None:
        if self._probe_task is not None:
            await cancel_and_wait(self._probe_task)  # a link closed under it is all it can fail with: nothing to do
        if self._rates_task is not None:
            failed = await cancel_and_wait(self._rates_task)
            if failed is not None:
                raise failed
        if self.rates is not None:
            self.rates.close()
        self.remote_id.close()
        self.telemetry.close()

    async def _learn_capabilities(self) -> None:
        with self.connection.inbox("AUTOPILOT_VERSION", what="AUTOPILOT_VERSION") as versions:
            # Asked up to three times: on a lossy radio the answer itself may be lost, and without it neither
            # MAVFTP uploads nor the software version are known.
            for attempt in range(1, 4):
                try:
                    await self.commands.request_message("AUTOPILOT_VERSION")
                    version = await versions.next(3.0)
                    break
                except FlightctlError as exc:
                    if attempt == 3:
                        log.warning("no AUTOPILOT_VERSION (%s); assuming ArduPilot parameter encoding", exc)
                        return
        self.params.encoding = ParamEncoding.from_capabilities(version.capabilities)
        self.software_version = software_version(version.flight_sw_version, version.flight_custom_version)
        identity = self.connection.vehicle
        self.mission.mission_files = bool(
            version.capabilities & mavlink.MAV_PROTOCOL_CAPABILITY_FTP
            and identity is not None
            and identity.autopilot == mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA
        )

    async def wait_ready(self, *, timeout_s: float = 120.0) -> VehicleState:
        """Until the vehicle could arm: EKF navigating, 3D GPS fix, ArduPilot's pre-arm checks passing."""
        return await self.telemetry.wait_until(
            lambda s: s.ready_to_arm, timeout_s=timeout_s, what="vehicle ready to arm", clock=Clock.VEHICLE
        )

    def __repr__(self) -> str:
        return f"<Vehicle {self.connection!r} mode={self.state.mode} armed={self.state.armed}>"
