"""A scripted MAVLink peer: the far end of an in-memory ``Transport``, for protocol edge cases.

It is not an autopilot. A test tells it what to answer (``on``), what to lose (``loss``), and reads what
flightctl sent (``expect``), so every loss, duplicate and NACK happens exactly when the test says.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.link.codec import MavCodec, SigningKey
from flightctl.link.transport import Transport

Responder = Callable[[MAVLinkMessage], Any]


class PeerTransport(Transport):
    """What flightctl holds: bytes written go to the peer, bytes the peer sends come out of read()."""

    def __init__(self, peer: ScriptedPeer) -> None:
        super().__init__("memory:peer")
        self._peer = peer
        self.is_connected = False

    @property
    def connected(self) -> bool:
        return self.is_connected

    async def open(self) -> None:
        self.is_connected = True

    def write(self, data: bytes) -> None:
        if not self.is_connected:
            self.stats.writes_dropped += 1
            return
        self.stats.bytes_out += len(data)
        self._peer._from_flightctl(data)

    async def close(self) -> None:
        self.is_connected = False
        await super().close()


class ScriptedPeer:
    def __init__(
        self,
        *,
        system_id: int = 1,
        component_id: int = 1,
        mav_type: int = mavlink.MAV_TYPE_QUADROTOR,
        seed: int = 0,
        signing: SigningKey | None = None,
    ) -> None:
        self.transport = PeerTransport(self)
        self.codec = MavCodec(system_id, component_id, signing)
        self.mav_type = mav_type
        self.received: list[MAVLinkMessage] = []
        self.loss_to_flightctl = 0.0
        self.loss_from_flightctl = 0.0
        self.lost: list[MAVLinkMessage] = []  # what flightctl sent that loss_from_flightctl dropped
        self.duplicate_to_flightctl = 0.0  # chance a message arrives twice
        self.delay_to_flightctl = 0.0  # chance a message is held back (and so overtaken by later ones)
        self.silent = False
        self.custom_mode = 0
        self.base_mode = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
        self._rng = random.Random(seed)
        self._responders: dict[str, Responder] = {}
        self._arrived = asyncio.Condition()
        self._heartbeat_task: asyncio.Task[None] | None = None

    # ---- what flightctl sent ---------------------------------------------------------------------------

    def _from_flightctl(self, data: bytes) -> None:
        for message in self.codec.feed(data):
            if self._rng.random() < self.loss_from_flightctl:
                self.lost.append(message)  # flightctl sent it; the radio lost it
                continue
            self.received.append(message)
            responder = self._responders.get(message.get_type())
            if responder is not None:
                responder(message)
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()

    def sent(self, message_type: str) -> list[MAVLinkMessage]:
        return [m for m in self.received if m.get_type() == message_type]

    async def expect(self, message_type: str, *, count: int = 1, timeout_s: float = 2.0) -> list[MAVLinkMessage]:
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.sent(message_type)) >= count)
        return self.sent(message_type)

    def on(self, message_type: str, responder: Responder) -> None:
        self._responders[message_type] = responder

    # ---- what the peer says ----------------------------------------------------------------------------

    def send(self, message: MAVLinkMessage) -> None:
        if self.silent:
            return
        # Encoded before it is lost, as a radio loses what the vehicle sent: its sequence number goes missing.
        data = self.codec.encode(message)
        if self._rng.random() < self.loss_to_flightctl:
            return
        copies = 2 if self._rng.random() < self.duplicate_to_flightctl else 1
        for _ in range(copies):
            if self._rng.random() < self.delay_to_flightctl:
                asyncio.get_running_loop().call_later(self._rng.uniform(0.001, 0.02), self.send_bytes, data)
            else:
                self.send_bytes(data)

    def send_bytes(self, data: bytes) -> None:
        if self.transport.is_connected:
            self.transport._deliver(data)

    def heartbeat(self) -> MAVLinkMessage:
        return mavlink.MAVLink_heartbeat_message(
            self.mav_type, mavlink.MAV_AUTOPILOT_ARDUPILOTMEGA, self.base_mode, self.custom_mode, 4, 3
        )

    def start_heartbeats(self, period_s: float = 0.05) -> None:
        async def beat() -> None:
            while True:
                self.send(self.heartbeat())
                await asyncio.sleep(period_s)

        self._heartbeat_task = asyncio.get_running_loop().create_task(beat())

    def stop(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()

    def ack(self, command: MAVLinkMessage, result: int = mavlink.MAV_RESULT_ACCEPTED) -> None:
        self.send(
            mavlink.MAVLink_command_ack_message(
                command.command, result, 0, 0, command.get_srcSystem(), command.get_srcComponent()
            )
        )
