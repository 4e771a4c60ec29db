"""Parameters: read one, set one (confirmed by the PARAM_VALUE echo), fetch all with gap re-requests.

PARAM_VALUE carries every value in a float field. How an integer parameter travels in it depends on the
autopilot (https://mavlink.io/en/services/parameter.html#parameter-encoding): ArduPilot converts it to a
float ("C cast", exact up to 2**24), PX4 copies its bytes into the float ("bytewise"). We follow whichever
the vehicle declares in AUTOPILOT_VERSION.capabilities, ArduPilot's by default.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

from flightctl.dialect import MAVLinkMessage, enum_name, float32, mavlink
from flightctl.errors import ParamError, ParamTimeout, VehicleTimeout
from flightctl.link.connection import MavConnection
from flightctl.link.inbox import Inbox
from flightctl.link.request import NoReply, RetryPolicy, request

log = logging.getLogger(__name__)

# When reads by name go unanswered: the whole list, this many times. A list is followed for as long as it keeps
# coming (it is over once no PARAM_VALUE has come for LIST_QUIET_S), never by a fixed clock: ArduPilot's ~1400
# parameters take about 7 s over a clean 57.6 kbaud radio, but ArduPilot sends the list only in the bandwidth its
# telemetry streams leave, and a lossy radio slows it further (a fixed 15 s once cut a list off before the name
# came). LIST_DEADLINE_S caps one list. A parameter the vehicle does not have is declared missing only after
# reads and lists have all gone by: nothing asks for one to find out if it exists.
LIST_ATTEMPTS = 2
LIST_QUIET_S = 3.0
LIST_DEADLINE_S = 120.0

_INT_FORMATS = {
    mavlink.MAV_PARAM_TYPE_UINT8: "<B",
    mavlink.MAV_PARAM_TYPE_INT8: "<b",
    mavlink.MAV_PARAM_TYPE_UINT16: "<H",
    mavlink.MAV_PARAM_TYPE_INT16: "<h",
    mavlink.MAV_PARAM_TYPE_UINT32: "<I",
    mavlink.MAV_PARAM_TYPE_INT32: "<i",
}
_NAME_LENGTH = 16

ProgressCallback = Callable[[int, int], None]


class ParamEncoding(enum.Enum):
    C_CAST = "c_cast"
    BYTEWISE = "bytewise"

    @classmethod
    def from_capabilities(cls, capabilities: int) -> ParamEncoding:
        if capabilities & mavlink.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE:
            return cls.BYTEWISE
        return cls.C_CAST


def is_integer_type(param_type: int) -> bool:
    return param_type in _INT_FORMATS


def encode_value(value: float, param_type: int, encoding: ParamEncoding) -> float:
    """The float to put in PARAM_SET.param_value."""
    if not is_integer_type(param_type):
        return float(value)
    if not float(value).is_integer():
        raise ParamError(
            f"{value!r} is not a whole number, and the parameter is {enum_name('MAV_PARAM_TYPE', param_type)}"
        )
    number = int(value)
    fmt = _INT_FORMATS[param_type]
    try:
        packed = struct.pack(fmt, number)
    except struct.error:
        raise ParamError(f"{number} does not fit {enum_name('MAV_PARAM_TYPE', param_type)}") from None
    if encoding is ParamEncoding.BYTEWISE:
        return float(struct.unpack("<f", packed.ljust(4, b"\0"))[0])
    if abs(number) > 2**24:
        raise ParamError(f"{number} cannot travel exactly as a C-cast float (more than 2**24)")
    return float(number)


def decode_value(raw: float, param_type: int, encoding: ParamEncoding) -> float | int:
    """The parameter's real value from PARAM_VALUE.param_value."""
    if not is_integer_type(param_type):
        return float(raw)
    if encoding is ParamEncoding.BYTEWISE:
        fmt = _INT_FORMATS[param_type]
        size = struct.calcsize(fmt)
        return int(struct.unpack(fmt, struct.pack("<f", raw)[:size])[0])
    return round(raw)


@dataclass(frozen=True)
class Param:
    name: str
    value: float | int
    param_type: int
    index: int  # 65535 (-1 as int16) when the vehicle sent it outside a list transfer
    count: int

    @property
    def type_name(self) -> str:
        return enum_name("MAV_PARAM_TYPE", self.param_type).removeprefix("MAV_PARAM_TYPE_")


def _check_name(name: str) -> str:
    if not name or len(name) > _NAME_LENGTH or not name.isascii():
        raise ParamError(f"{name!r} is not a parameter name (1-{_NAME_LENGTH} ASCII characters)")
    return name


class Params:
    """``vehicle.params``. Every PARAM_VALUE seen (ours or another GCS's) refreshes ``cache``."""

    def __init__(
        self,
        connection: MavConnection,
        *,
        encoding: ParamEncoding = ParamEncoding.C_CAST,
        policy: RetryPolicy | None = None,
        list_quiet_s: float = LIST_QUIET_S,
        list_deadline_s: float = LIST_DEADLINE_S,
    ) -> None:
        self._connection = connection
        self.encoding = encoding
        self.policy = policy or RetryPolicy(reply_timeout_s=1.5, attempts=8)
        self.list_quiet_s = list_quiet_s
        self.list_deadline_s = list_deadline_s
        self.cache: dict[str, Param] = {}
        self._lock = asyncio.Lock()
        connection.add_listener("PARAM_VALUE", self._remember)

    def _to_param(self, message: MAVLinkMessage) -> Param:
        return Param(
            name=str(message.param_id),
            value=decode_value(message.param_value, message.param_type, self.encoding),
            param_type=int(message.param_type),
            index=int(message.param_index),
            count=int(message.param_count),
        )

    def _remember(self, message: MAVLinkMessage) -> None:
        if self._connection.is_from_vehicle(message):
            param = self._to_param(message)
            self.cache[param.name] = param

    async def get(self, name: str, *, list_fallback: bool = True) -> Param:
        """Read one parameter from the vehicle (not from the cache). ``list_fallback=False``: a parameter that
        may not exist on this build (an optional feature's) fails after the reads by name, without fetching the
        whole list (a thousand messages over a radio) to look for it."""
        _check_name(name)
        connection = self._connection
        message = mavlink.MAVLink_param_request_read_message(
            connection.target_system, connection.target_component, name.encode("ascii"), -1
        )
        with connection.inbox("PARAM_VALUE", lambda m: m.param_id == name, what=f"param {name}") as values:
            try:
                return self._to_param((await request(connection, message, values, self.policy))[0])
            except NoReply:
                if not list_fallback:
                    raise ParamTimeout(f"param {name}: no PARAM_VALUE after {self.policy.attempts} requests") from None
        # ArduPilot answers reads from one queue shared by all its links: a reply waiting for a link with no room
        # to send (a SITL TCP port whose client went away) holds up every reply behind it. The list is sent per
        # link, so it still brings the value (as fetch_all's fallback does).
        log.warning("param %s: no answer to reads by name; asking for the whole list", name)
        with connection.inbox("PARAM_VALUE", what=f"parameter list for {name}", maxsize=100_000) as listed:
            for _ in range(LIST_ATTEMPTS):
                connection.send(
                    mavlink.MAVLink_param_request_list_message(connection.target_system, connection.target_component)
                )
                found = await self._from_the_list(name, listed)
                if found is not None:
                    return found
        raise ParamTimeout(
            f"param {name}: no PARAM_VALUE after {self.policy.attempts} requests and {LIST_ATTEMPTS} lists "
            "(does it exist?)"
        )

    async def _from_the_list(self, name: str, listed: Inbox) -> Param | None:
        """``name`` as the list brings it; None once the list went quiet (or ran past its deadline) without it."""
        try:
            async with asyncio.timeout(self.list_deadline_s):
                while True:
                    message = await listed.next(self.list_quiet_s)
                    if message.param_id == name:
                        return self._to_param(message)
        except (VehicleTimeout, TimeoutError):
            return None

    async def set(self, name: str, value: float, *, param_type: int | None = None) -> Param:
        """Set a parameter and return it as the vehicle echoed it; ``ParamError`` if it kept another value."""
        _check_name(name)
        if param_type is None:
            known = self.cache.get(name) or await self.get(name)
            param_type = known.param_type
        raw = encode_value(value, param_type, self.encoding)
        connection = self._connection
        message = mavlink.MAVLink_param_set_message(
            connection.target_system, connection.target_component, name.encode("ascii"), raw, param_type
        )
        with connection.inbox("PARAM_VALUE", lambda m: m.param_id == name, what=f"param {name}") as values:
            try:
                echoed = self._to_param((await request(connection, message, values, self.policy))[0])
            except NoReply:
                raise ParamTimeout(
                    f"param {name}: set to {value!r} not confirmed after {self.policy.attempts} attempts"
                ) from None
        if not self._same_value(echoed.value, value, param_type):
            raise ParamError(f"param {name}: set to {value!r}, vehicle kept {echoed.value!r}")
        return echoed

    @staticmethod
    def _same_value(echoed: float, wanted: float, param_type: int) -> bool:
        if is_integer_type(param_type):
            return int(echoed) == int(wanted)
        if math.isnan(wanted):
            return math.isnan(echoed)
        return float32(echoed) == float32(wanted)

    async def set_many(self, values: dict[str, float]) -> dict[str, Param]:
        return {name: await self.set(name, value) for name, value in values.items()}

    async def fetch_all(
        self, *, progress: ProgressCallback | None = None, quiet_s: float = 1.0, rounds: int = 10
    ) -> dict[str, Param]:
        """Every parameter. Gaps in the indices are asked for one by one until none remain.

        ``quiet_s`` is how long the list may stay silent before we decide the rest was lost. A round of requests
        by index that brings nothing asks for the whole list again instead: ArduPilot answers reads by index
        from one queue shared by all its links, and a reply waiting for a link with no room to send (a SITL TCP
        port whose client went away) holds up every reply behind it, while the list is sent per link.
        """
        connection = self._connection
        by_index: dict[int, Param] = {}
        total: int | None = None

        def ask_for_the_list() -> None:
            connection.send(
                mavlink.MAVLink_param_request_list_message(connection.target_system, connection.target_component)
            )

        async with self._lock:
            with connection.inbox("PARAM_VALUE", what="parameter list", maxsize=100_000) as values:
                ask_for_the_list()
                asked_by_index = False
                for round_number in range(rounds + 1):
                    had = len(by_index)
                    while True:
                        try:
                            param = self._to_param(await values.next(quiet_s))
                        except VehicleTimeout:
                            break
                        if param.index < 0 or param.index >= param.count:
                            continue  # an echo of a set, not part of the list
                        total = param.count
                        if param.index not in by_index:
                            by_index[param.index] = param
                            if progress is not None:
                                progress(len(by_index), total)
                        if len(by_index) == total:
                            break
                    if total is not None and len(by_index) == total:
                        return {param.name: param for param in by_index.values()}
                    if round_number == rounds:
                        break
                    if total is None or (asked_by_index and len(by_index) == had):
                        log.info("parameter list: asking for the whole list again (round %d)", round_number + 1)
                        ask_for_the_list()
                        asked_by_index = False
                        continue
                    missing = [index for index in range(total) if index not in by_index]
                    log.info("parameter list: %d missing, asking again (round %d)", len(missing), round_number + 1)
                    for index in missing[:64]:  # a burst the radio can take; the rest next round
                        connection.send(
                            mavlink.MAVLink_param_request_read_message(
                                connection.target_system, connection.target_component, b"", index
                            )
                        )
                    asked_by_index = True
        if total is None:
            raise ParamTimeout("parameter list: the vehicle sent no PARAM_VALUE at all")
        raise ParamTimeout(f"parameter list: {total - len(by_index)} of {total} still missing after {rounds} rounds")
