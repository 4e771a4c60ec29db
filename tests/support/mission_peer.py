"""The vehicle's side of the mission protocol, scripted on a ScriptedPeer for loss/NACK/duplicate tests.

It follows what ArduPilot's MissionItemProtocol does (re-request after silence, abandon after longer
silence, INVALID_SEQUENCE for an unexpected item, ERROR for an item outside a transfer, DENIED for a second
uploader), at a tenth of ArduPilot's timings, and stores items as sent. Tests that need ArduPilot's real
storage rules run against SITL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from flightctl.dialect import MAVLinkMessage, mavlink
from tests.support.peer import ScriptedPeer


@dataclass
class _Receiving:
    sender: tuple[int, int]
    count: int
    items: list[MAVLinkMessage] = field(default_factory=list)
    last_heard: float = 0.0
    last_request: float = 0.0


class MissionPeer:
    def __init__(self, peer: ScriptedPeer, *, rerequest_s: float = 0.03, abandon_s: float = 0.5) -> None:
        self.peer = peer
        self.rerequest_s = rerequest_s
        self.abandon_s = abandon_s
        self.stored: dict[int, list[MAVLinkMessage]] = {0: [], 1: [], 2: []}
        self.receiving: dict[int, _Receiving] = {}
        self.use_old_request = False  # ask with MISSION_REQUEST, as ArduPilot does
        self.nack_at: dict[int, int] = {}  # item seq -> MAV_MISSION_RESULT to answer instead of storing
        self.no_space_for_first_counts = 0
        self.lose_final_acks = 0
        self.uploads_completed = 0
        for name, handler in {
            "MISSION_COUNT": self._count,
            "MISSION_ITEM_INT": self._item,
            "MISSION_REQUEST_LIST": self._request_list,
            "MISSION_REQUEST_INT": self._request_int,
            "MISSION_CLEAR_ALL": self._clear,
            "MISSION_ACK": lambda _m: None,
        }.items():
            peer.on(name, handler)
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    def stop(self) -> None:
        self._ticker.cancel()

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _ack(self, to: MAVLinkMessage | tuple[int, int], result: int, mission_type: int) -> None:
        target = (to.get_srcSystem(), to.get_srcComponent()) if isinstance(to, MAVLinkMessage) else to
        self.peer.send(mavlink.MAVLink_mission_ack_message(target[0], target[1], result, mission_type))

    def _request(self, state: _Receiving, mission_type: int) -> None:
        seq = len(state.items)
        kind = (
            mavlink.MAVLink_mission_request_message
            if self.use_old_request
            else mavlink.MAVLink_mission_request_int_message
        )
        self.peer.send(kind(state.sender[0], state.sender[1], seq, mission_type))
        state.last_request = self._now()

    def _count(self, message: MAVLinkMessage) -> None:
        mission_type = message.mission_type
        sender = (message.get_srcSystem(), message.get_srcComponent())
        current = self.receiving.get(mission_type)
        if current is not None and current.sender != sender:
            self._ack(message, mavlink.MAV_MISSION_DENIED, mission_type)
            return
        if self.no_space_for_first_counts > 0:
            self.no_space_for_first_counts -= 1
            self._ack(message, mavlink.MAV_MISSION_NO_SPACE, mission_type)
            return
        if message.count == 0:
            self.stored[mission_type] = []
            self.receiving.pop(mission_type, None)
            self._ack(message, mavlink.MAV_MISSION_ACCEPTED, mission_type)
            return
        state = _Receiving(sender, message.count, last_heard=self._now())
        self.receiving[mission_type] = state
        self._request(state, mission_type)

    def _item(self, message: MAVLinkMessage) -> None:
        mission_type = message.mission_type
        state = self.receiving.get(mission_type)
        if state is None:
            self._ack(message, mavlink.MAV_MISSION_ERROR, mission_type)
            return
        if message.seq != len(state.items):
            self._ack(message, mavlink.MAV_MISSION_INVALID_SEQUENCE, mission_type)
            return
        if message.seq in self.nack_at:
            del self.receiving[mission_type]
            self._ack(message, self.nack_at.pop(message.seq), mission_type)
            return
        state.items.append(message)
        state.last_heard = self._now()
        if len(state.items) == state.count:
            self.stored[mission_type] = state.items
            del self.receiving[mission_type]
            self.uploads_completed += 1
            if self.lose_final_acks > 0:
                self.lose_final_acks -= 1
                return
            self._ack(message, mavlink.MAV_MISSION_ACCEPTED, mission_type)
            return
        self._request(state, mission_type)

    def _request_list(self, message: MAVLinkMessage) -> None:
        mission_type = message.mission_type
        if mission_type in self.receiving:
            self._ack(message, mavlink.MAV_MISSION_DENIED, mission_type)
            return
        self.peer.send(
            mavlink.MAVLink_mission_count_message(
                message.get_srcSystem(), message.get_srcComponent(), len(self.stored[mission_type]), mission_type
            )
        )

    def _request_int(self, message: MAVLinkMessage) -> None:
        mission_type = message.mission_type
        if mission_type in self.receiving:
            self._ack(message, mavlink.MAV_MISSION_DENIED, mission_type)
            return
        items = self.stored[mission_type]
        if not 0 <= message.seq < len(items):
            self._request_list(message)
            self._ack(message, mavlink.MAV_MISSION_INVALID_SEQUENCE, mission_type)
            return
        stored = items[message.seq]
        self.peer.send(
            mavlink.MAVLink_mission_item_int_message(
                message.get_srcSystem(), message.get_srcComponent(), message.seq, stored.frame, stored.command, 0,
                stored.autocontinue, stored.param1, stored.param2, stored.param3, stored.param4,
                stored.x, stored.y, stored.z, mission_type,
            )
        )  # fmt: skip

    def _clear(self, message: MAVLinkMessage) -> None:
        self.receiving.pop(message.mission_type, None)
        self.stored[message.mission_type] = []
        self._ack(message, mavlink.MAV_MISSION_ACCEPTED, message.mission_type)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.rerequest_s / 3)
            now = self._now()
            for mission_type, state in list(self.receiving.items()):
                if now - state.last_heard > self.abandon_s:
                    del self.receiving[mission_type]
                    self._ack(state.sender, mavlink.MAV_MISSION_OPERATION_CANCELLED, mission_type)
                elif now - state.last_request > self.rerequest_s:
                    self._request(state, mission_type)
