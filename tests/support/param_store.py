"""A scripted peer's parameter table, encoded on the wire as the autopilot would (for parameter and sequencer tests)."""

from __future__ import annotations

import asyncio

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.vehicle.params import ParamEncoding, decode_value, encode_value
from tests.support.peer import ScriptedPeer

INT32 = mavlink.MAV_PARAM_TYPE_INT32
REAL32 = mavlink.MAV_PARAM_TYPE_REAL32
INT8 = mavlink.MAV_PARAM_TYPE_INT8


class ParamStore:
    """The peer's parameter table, kept as real values and encoded on the wire like the autopilot would."""

    def __init__(self, peer: ScriptedPeer, values: dict[str, tuple[float, int]], encoding: ParamEncoding) -> None:
        self.peer, self.values, self.encoding = peer, dict(values), encoding
        self.names = list(values)
        self.drop_indices: set[int] = set()
        self.drop_on_first_list: set[int] = set()  # lost on the first pass of the list only
        self.lists_sent = 0
        self.clamp: dict[str, float] = {}
        self.list_period_s = 0.0  # > 0: the list comes one value at a time, this far apart (a busy radio)
        peer.on("PARAM_SET", self.on_set)
        peer.on("PARAM_REQUEST_READ", self.on_read)
        peer.on("PARAM_REQUEST_LIST", self.on_list)

    def value_message(self, name: str, index: int) -> MAVLinkMessage:
        value, kind = self.values[name]
        raw = encode_value(value, kind, self.encoding)
        return mavlink.MAVLink_param_value_message(name.encode(), raw, kind, len(self.names), index)

    def on_set(self, message: MAVLinkMessage) -> None:
        name = message.param_id
        kind = self.values[name][1]
        value = decode_value(message.param_value, kind, self.encoding)
        self.values[name] = (self.clamp.get(name, value), kind)
        self.peer.send(self.value_message(name, 65535))

    def on_read(self, message: MAVLinkMessage) -> None:
        if message.param_index >= 0:
            self.peer.send(self.value_message(self.names[message.param_index], message.param_index))
        elif message.param_id in self.values:
            self.peer.send(self.value_message(message.param_id, self.names.index(message.param_id)))

    def on_list(self, _message: MAVLinkMessage) -> None:
        lost = self.drop_indices | (self.drop_on_first_list if self.lists_sent == 0 else set())
        self.lists_sent += 1
        listed = [(index, name) for index, name in enumerate(self.names) if index not in lost]
        if self.list_period_s <= 0:
            for index, name in listed:
                self.peer.send(self.value_message(name, index))
            return

        async def trickle() -> None:
            for index, name in listed:
                self.peer.send(self.value_message(name, index))
                await asyncio.sleep(self.list_period_s)

        self._trickling = asyncio.get_running_loop().create_task(trickle())
