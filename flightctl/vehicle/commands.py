"""MAVLink commands (COMMAND_LONG / COMMAND_INT) with COMMAND_ACK matching, and the actions built on them.

The command protocol (https://mavlink.io/en/services/command.html): resend when no ACK arrives, counting
attempts in ``confirmation`` so the vehicle can tell a resend from a new command; an IN_PROGRESS ACK means
"stop resending, the final ACK will follow". Only one command of each id is in flight at a time, because
COMMAND_ACK names the command but not the request it answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from flightctl.dialect import MAVLinkMessage, command_name, mavlink, message_id
from flightctl.errors import CommandTimeout, ConditionTimeout, NotConnected, VehicleRejected, VehicleTimeout
from flightctl.geo import Location
from flightctl.link.connection import MavConnection, VehicleIdentity
from flightctl.link.request import NoReply, RetryPolicy, explanation, request
from flightctl.vehicle.modes import mode_name, mode_number

log = logging.getLogger(__name__)

MAV_RESULT_ACCEPTED = mavlink.MAV_RESULT_ACCEPTED
MAV_RESULT_IN_PROGRESS = mavlink.MAV_RESULT_IN_PROGRESS
# ArduPilot's "force" magic for MAV_CMD_COMPONENT_ARM_DISARM param2: skip checks / disarm in flight.
_FORCE_ARM_MAGIC = 21196.0
_FORCE_DISARM_MAGIC = 21196.0

_Builder = Callable[[int], MAVLinkMessage]
_HeartbeatPredicate = Callable[[MAVLinkMessage], bool]


def _armed(heartbeat: MAVLinkMessage) -> bool:
    return bool(heartbeat.base_mode & mavlink.MAV_MODE_FLAG_SAFETY_ARMED)


@dataclass(frozen=True)
class CommandPolicy(RetryPolicy):
    """``RetryPolicy`` for ACKs, and how long a command that answered IN_PROGRESS may take to finish.

    Six sends by default: on a radio that loses a fifth of its packets each way about a third of the
    exchanges fail, and three sends left one command in twenty-five unanswered."""

    attempts: int = 6
    in_progress_timeout_s: float = 30.0


class Commands:
    """``vehicle.commands``: send commands, and the everyday actions (arm, modes, takeoff, land...)."""

    def __init__(self, connection: MavConnection, policy: CommandPolicy | None = None) -> None:
        self._connection = connection
        self.policy = policy or CommandPolicy()
        self._in_flight: dict[int, asyncio.Lock] = {}

    # ---- the protocol ----------------------------------------------------------------------------------

    async def long(
        self,
        command: int,
        params: Sequence[float] = (),
        *,
        policy: CommandPolicy | None = None,
        label: str | None = None,
    ) -> MAVLinkMessage:
        """Send COMMAND_LONG (up to 7 params) until ACKed; return the ACCEPTED ack or raise."""
        padded = [float(p) for p in params] + [0.0] * (7 - len(params))
        if len(padded) != 7:
            raise ValueError(f"COMMAND_LONG takes at most 7 params, got {len(params)}")

        def build(attempt: int) -> MAVLinkMessage:
            return mavlink.MAVLink_command_long_message(
                self._connection.target_system,
                self._connection.target_component,
                command,
                min(attempt, 255),
                *padded,
            )

        return await self._run(command, build, policy or self.policy, label or command_name(command))

    async def int_(
        self,
        command: int,
        *,
        frame: int,
        params: Sequence[float] = (),
        x: int = 0,
        y: int = 0,
        z: float = 0.0,
        policy: CommandPolicy | None = None,
        label: str | None = None,
    ) -> MAVLinkMessage:
        """Send COMMAND_INT (positions as 1e7 integers, no float rounding) until ACKed."""
        padded = [float(p) for p in params] + [0.0] * (4 - len(params))
        if len(padded) != 4:
            raise ValueError(f"COMMAND_INT takes at most 4 params, got {len(params)}")

        def build(_attempt: int) -> MAVLinkMessage:
            return mavlink.MAVLink_command_int_message(
                self._connection.target_system,
                self._connection.target_component,
                frame,
                command,
                0,
                0,
                *padded,
                x,
                y,
                z,
            )

        return await self._run(command, build, policy or self.policy, label or command_name(command))

    async def _run(
        self,
        command: int,
        build: _Builder,
        policy: CommandPolicy,
        label: str,
    ) -> MAVLinkMessage:
        connection = self._connection
        ours = (connection.codec.system_id, connection.codec.component_id)

        def answers_us(ack: MAVLinkMessage) -> bool:
            # Older firmware leaves target_* zero; newer fills them with the requester's ids.
            addressed = (ack.target_system, ack.target_component)
            return bool(ack.command == command and addressed in ((0, 0), ours))

        lock = self._in_flight.setdefault(command, asyncio.Lock())
        async with lock:
            with (
                connection.inbox("COMMAND_ACK", answers_us, what=f"{label} ACK") as acks,
                connection.inbox("STATUSTEXT", what=f"{label} status texts", maxsize=16) as texts,
            ):
                try:
                    ack, attempt = await request(connection, build, acks, policy)
                except NoReply:
                    raise CommandTimeout(label, policy.attempts, policy.reply_timeout_s) from None
                while ack.result == MAV_RESULT_IN_PROGRESS:
                    try:
                        ack = await acks.next(policy.in_progress_timeout_s)
                    except VehicleTimeout:
                        raise CommandTimeout(label, attempt + 1, policy.in_progress_timeout_s) from None
                if ack.result != MAV_RESULT_ACCEPTED:
                    raise VehicleRejected(ack.result, label, await explanation(texts, grace_s=0.5))
                return ack

    # ---- actions ---------------------------------------------------------------------------------------

    async def arm(self, *, force: bool = False, timeout_s: float = 10.0) -> None:
        """Arm and wait until the heartbeat says armed. ``force`` skips the pre-arm checks: never in flight code."""
        await self._until_seen(
            self.long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, [1, _FORCE_ARM_MAGIC if force else 0], label="arm()"),
            _armed,
        )
        await self.wait_armed(True, timeout_s=timeout_s)

    async def disarm(self, *, force: bool = False, timeout_s: float = 10.0) -> None:
        """Disarm and wait until the heartbeat says disarmed. ``force`` disarms even in flight: motors stop."""
        await self._until_seen(
            self.long(mavlink.MAV_CMD_COMPONENT_ARM_DISARM, [0, _FORCE_DISARM_MAGIC if force else 0], label="disarm()"),
            lambda hb: not _armed(hb),
        )
        await self.wait_armed(False, timeout_s=timeout_s)

    async def _until_seen(self, command: Awaitable[MAVLinkMessage], done: _HeartbeatPredicate) -> None:
        """Run a command whose effect the heartbeat shows. When every ACK was lost on a bad link but the
        heartbeat shows the effect, the command was carried out: a timeout then is no failure. A refusal is."""
        try:
            await command
        except CommandTimeout:
            heartbeat = self._connection.last_heartbeat
            if heartbeat is None or not done(heartbeat):
                raise
            log.warning("no COMMAND_ACK came back, but the heartbeat shows the command took effect")

    async def wait_armed(self, armed: bool, *, timeout_s: float) -> None:
        def matches(heartbeat: MAVLinkMessage) -> bool:
            return _armed(heartbeat) is armed

        await self._wait_heartbeat(matches, timeout_s, "armed" if armed else "disarmed")

    async def set_mode(self, name: str, *, timeout_s: float = 5.0) -> None:
        """Switch flight mode by name (``GUIDED``, ``AUTO``, ``RTL``...) and wait for the heartbeat to show it."""
        vehicle = self._require_vehicle()
        number = mode_number(vehicle.mav_type, name)
        await self._until_seen(
            self.long(
                mavlink.MAV_CMD_DO_SET_MODE,
                [mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, number],
                label=f"set_mode({name.upper()})",
            ),
            lambda hb: hb.custom_mode == number,
        )
        await self._wait_heartbeat(lambda hb: hb.custom_mode == number, timeout_s, f"mode {name.upper()}")

    def current_mode(self) -> str | None:
        heartbeat = self._connection.last_heartbeat
        vehicle = self._connection.vehicle
        if heartbeat is None or vehicle is None:
            return None
        return mode_name(vehicle.mav_type, heartbeat.custom_mode)

    async def takeoff(self, alt_m: float) -> None:
        """Take off to ``alt_m`` above home (Copter: in GUIDED, armed). Returns once accepted, not at altitude."""
        await self.long(mavlink.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, float("nan"), float("nan"), float("nan"), alt_m])

    async def land(self) -> None:
        await self.long(mavlink.MAV_CMD_NAV_LAND, [0, 0, 0, float("nan"), float("nan"), float("nan"), 0])

    async def return_to_launch(self) -> None:
        await self.long(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH)

    async def reposition(self, target: Location, *, ground_speed_m_s: float = -1.0) -> None:
        """Fly to ``target`` (GUIDED), via DO_REPOSITION in COMMAND_INT so the position keeps full precision."""
        await self.int_(
            mavlink.MAV_CMD_DO_REPOSITION,
            frame=target.frame.value,
            params=[ground_speed_m_s, mavlink.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE, 0, float("nan")],
            x=target.lat_e7,
            y=target.lon_e7,
            z=target.alt_m,
        )

    async def set_message_interval(self, message: str, rate_hz: float) -> None:
        """Ask for ``message`` at ``rate_hz`` (0 stops it)."""
        interval_us = -1.0 if rate_hz <= 0 else 1_000_000.0 / rate_hz
        await self.long(
            mavlink.MAV_CMD_SET_MESSAGE_INTERVAL,
            [message_id(message), interval_us],
            label=f"set_message_interval({message}, {rate_hz:g} Hz)",
        )

    async def request_message(self, message: str) -> None:
        await self.long(mavlink.MAV_CMD_REQUEST_MESSAGE, [message_id(message)], label=f"request_message({message})")

    async def _wait_heartbeat(self, predicate: _HeartbeatPredicate, timeout_s: float, what: str) -> None:
        last = self._connection.last_heartbeat
        if last is not None and predicate(last):
            return
        vehicle = self._require_vehicle()

        def from_autopilot(heartbeat: MAVLinkMessage) -> bool:
            return bool(heartbeat.get_srcComponent() == vehicle.component_id and predicate(heartbeat))

        try:
            await self._connection.wait_message("HEARTBEAT", from_autopilot, timeout_s=timeout_s, what=what)
        except VehicleTimeout:
            raise ConditionTimeout(f"vehicle not {what} within {timeout_s:g} s") from None

    def _require_vehicle(self) -> VehicleIdentity:
        vehicle = self._connection.vehicle
        if vehicle is None:
            raise NotConnected("no vehicle heartbeat heard yet: connect and wait_vehicle() first")
        return vehicle
