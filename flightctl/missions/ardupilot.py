"""What ArduPilot stores of a mission item, and so what it sends back when the item is read.

ArduPilot does not keep MISSION_ITEM_INT as sent: AP_Mission packs each command into a 15-byte record
(``AP_Mission::mavlink_int_to_mission_cmd`` / ``mission_cmd_to_mavlink_int`` in libraries/AP_Mission/
AP_Mission.cpp), fences into AC_PolyFenceItem and rally points into RallyLocation
(libraries/GCS_MAVLink/MissionItemProtocol_{Fence,Rally}.cpp). Params land in uint8/int16/float fields,
altitudes in centimetres, frames collapse to GLOBAL / GLOBAL_RELATIVE_ALT / GLOBAL_TERRAIN_ALT, and unused
fields come back as zero (or as fixed values, e.g. LOITER_TIME's direction).

``stored_form`` reproduces those conversions with C's float32 arithmetic and truncation, so a read-back can
be compared *exactly* with what the autopilot could hold: verification never passes a real difference and
never fails on a normalisation. Items ArduPilot would refuse raise ``Unstorable`` with the MAV_MISSION_RESULT
it would answer, before anything is sent. A command this table does not model is compared field by field
as sent (fail closed: it may fail verification, never pass wrongly).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import replace

from flightctl.dialect import command_name, enum_name, float32, mavlink
from flightctl.errors import ConfigError
from flightctl.missions.model import LOCATION_COMMANDS, MissionItem, MissionType

m = mavlink

LOCATION_ALT_MAX_M = 83000  # AP_Common/Location.h: the altitude must fit Location's 24-bit centimetre field


class Firmware(enum.Enum):
    COPTER = "copter"
    PLANE = "plane"

    @classmethod
    def from_mav_type(cls, mav_type: int) -> Firmware:
        return cls.PLANE if mav_type == m.MAV_TYPE_FIXED_WING else cls.COPTER


class Unstorable(ConfigError):
    """ArduPilot would refuse this item (``result`` is the MAV_MISSION_RESULT it would answer)."""

    def __init__(self, result: int, reason: str) -> None:
        self.result = result
        self.result_name = enum_name("MAV_MISSION_RESULT", result)
        super().__init__(f"{reason} (ArduPilot would answer {self.result_name})")


def c_int(value: float, bits: int, *, signed: bool, what: str) -> int:
    """C's float-to-integer conversion (truncation). Out of range is undefined in C: we refuse it."""
    if math.isnan(value) or math.isinf(value):
        raise Unstorable(m.MAV_MISSION_ERROR, f"{what} is {value}, not a number the autopilot can store")
    number = math.trunc(value)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not low <= number <= high:
        kind = f"{'int' if signed else 'uint'}{bits}"
        raise Unstorable(m.MAV_MISSION_ERROR, f"{what} = {value:g} does not fit the autopilot's {kind} field")
    return number


# ---- per-parameter storage kinds ------------------------------------------------------------------------

Slot = Callable[[float, str], float]


def _float(value: float, _what: str) -> float:
    return float32(value)


def _int(bits: int, signed: bool) -> Slot:
    return lambda value, what: float(c_int(float32(value), bits, signed=signed, what=what))


def _unused(_value: float, _what: str) -> float:
    return 0.0


U8, I8, U16, I16 = _int(8, False), _int(8, True), _int(16, False), _int(16, True)
F32, ZERO = _float, _unused

# command -> how param1..param4 are stored (and so come back)
_SIMPLE: dict[int, tuple[Slot, Slot, Slot, Slot]] = {
    m.MAV_CMD_NAV_RETURN_TO_LAUNCH: (ZERO, ZERO, ZERO, ZERO),
    m.MAV_CMD_NAV_TAKEOFF: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_NAV_CONTINUE_AND_CHANGE_ALT: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_NAV_GUIDED_ENABLE: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_NAV_DELAY: (F32, I8, I8, I8),
    m.MAV_CMD_NAV_ALTITUDE_WAIT: (F32, F32, U8, ZERO),
    m.MAV_CMD_NAV_VTOL_TAKEOFF: (ZERO, ZERO, ZERO, ZERO),
    m.MAV_CMD_NAV_VTOL_LAND: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_NAV_SET_YAW_SPEED: (F32, F32, U8, ZERO),
    m.MAV_CMD_CONDITION_DELAY: (F32, ZERO, ZERO, ZERO),
    m.MAV_CMD_CONDITION_DISTANCE: (F32, ZERO, ZERO, ZERO),
    m.MAV_CMD_CONDITION_YAW: (F32, F32, I8, U8),
    m.MAV_CMD_DO_JUMP: (U16, I16, ZERO, ZERO),
    m.MAV_CMD_JUMP_TAG: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_JUMP_TAG: (U16, I16, ZERO, ZERO),
    m.MAV_CMD_DO_CHANGE_SPEED: (U8, F32, F32, ZERO),
    m.MAV_CMD_DO_SET_HOME: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_SET_RELAY: (U8, U8, ZERO, ZERO),
    m.MAV_CMD_DO_REPEAT_RELAY: (U8, I16, F32, ZERO),
    m.MAV_CMD_DO_SET_SERVO: (U8, U16, ZERO, ZERO),
    m.MAV_CMD_DO_REPEAT_SERVO: (U8, U16, I16, F32),
    m.MAV_CMD_DO_RETURN_PATH_START: (ZERO, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_LAND_START: (ZERO, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_GO_AROUND: (ZERO, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_SET_ROI_LOCATION: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_SET_ROI_NONE: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_SET_ROI: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_SET_CAM_TRIGG_DIST: (F32, ZERO, U8, ZERO),
    m.MAV_CMD_DO_FENCE_ENABLE: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_PARACHUTE: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_SPRAYER: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_AUX_FUNCTION: (U16, U8, ZERO, ZERO),
    m.MAV_CMD_DO_INVERTED_FLIGHT: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_GRIPPER: (U8, U8, ZERO, ZERO),
    m.MAV_CMD_DO_GUIDED_LIMITS: (U16, F32, F32, F32),
    m.MAV_CMD_DO_AUTOTUNE_ENABLE: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_SET_REVERSE: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_VTOL_TRANSITION: (U8, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_WINCH: (U8, U8, F32, F32),
    m.MAV_CMD_DO_SET_RESUME_REPEAT_DIST: (U16, ZERO, ZERO, ZERO),
    m.MAV_CMD_DO_PAUSE_CONTINUE: (U16, ZERO, ZERO, ZERO),
}

# AP_Mission::sanity_check_params: which params may be NaN ("no value") for which command.
_NAN_ALLOWED: dict[int, frozenset[int]] = {
    m.MAV_CMD_NAV_WAYPOINT: frozenset({4}),
    m.MAV_CMD_NAV_LOITER_UNLIM: frozenset({4}),
    m.MAV_CMD_NAV_LAND: frozenset({4}),
    m.MAV_CMD_NAV_TAKEOFF: frozenset({4}),
    m.MAV_CMD_NAV_VTOL_TAKEOFF: frozenset({4}),
    m.MAV_CMD_NAV_VTOL_LAND: frozenset({3, 4}),
}
_INVALID_PARAM = {
    1: m.MAV_MISSION_INVALID_PARAM1,
    2: m.MAV_MISSION_INVALID_PARAM2,
    3: m.MAV_MISSION_INVALID_PARAM3,
    4: m.MAV_MISSION_INVALID_PARAM4,
}
_GLOBAL_FRAMES = {
    m.MAV_FRAME_GLOBAL: m.MAV_FRAME_GLOBAL,
    m.MAV_FRAME_GLOBAL_INT: m.MAV_FRAME_GLOBAL,
    m.MAV_FRAME_GLOBAL_RELATIVE_ALT: m.MAV_FRAME_GLOBAL_RELATIVE_ALT,
    m.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT: m.MAV_FRAME_GLOBAL_RELATIVE_ALT,
    m.MAV_FRAME_GLOBAL_TERRAIN_ALT: m.MAV_FRAME_GLOBAL_TERRAIN_ALT,
    m.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT: m.MAV_FRAME_GLOBAL_TERRAIN_ALT,
}
# A mission location may also be given in MAV_FRAME_MISSION, which ArduPilot takes as absolute.
_MISSION_LOCATION_FRAMES = {**_GLOBAL_FRAMES, m.MAV_FRAME_MISSION: m.MAV_FRAME_GLOBAL}
_FENCE_COMMANDS = {
    m.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
    m.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
    m.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
    m.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
    m.MAV_CMD_NAV_FENCE_RETURN_POINT,
}


def _what(item: MissionItem, seq: int, field: str) -> str:
    return f"item {seq} {item.name} {field}"


def _check_lat_lon(item: MissionItem, seq: int) -> None:
    if abs(item.x) > 900_000_000:
        raise Unstorable(
            m.MAV_MISSION_INVALID_PARAM5_X, f"{_what(item, seq, 'latitude')} {item.x / 1e7} is not -90..90"
        )
    if abs(item.y) > 1_800_000_000:
        raise Unstorable(
            m.MAV_MISSION_INVALID_PARAM6_Y, f"{_what(item, seq, 'longitude')} {item.y / 1e7} is not -180..180"
        )


def _stored_frame(item: MissionItem, seq: int, frames: dict[int, int]) -> int:
    """The frame ArduPilot returns for ``item``'s frame; UNSUPPORTED_FRAME if it does not take it."""
    frame = frames.get(item.frame)
    if frame is None:
        raise Unstorable(
            m.MAV_MISSION_UNSUPPORTED_FRAME, f"{_what(item, seq, 'frame')} {enum_name('MAV_FRAME', item.frame)}"
        )
    _check_lat_lon(item, seq)
    return frame


def _stored_location(item: MissionItem, seq: int) -> MissionItem:
    """x/y kept, altitude through Location's int32 centimetres, frame collapsed to its float variant."""
    frame = _stored_frame(item, seq, _MISSION_LOCATION_FRAMES)
    z = float32(item.z)
    if math.isnan(z) or abs(z) >= LOCATION_ALT_MAX_M:
        raise Unstorable(
            m.MAV_MISSION_INVALID_PARAM7, f"{_what(item, seq, 'altitude')} {item.z} is not a usable altitude"
        )
    alt_cm = math.trunc(float32(z * float32(100.0)))
    return replace(item, frame=frame, z=float32(float(alt_cm) * float32(0.01)))


def _check_nan(item: MissionItem, seq: int) -> None:
    allowed = _NAN_ALLOWED.get(item.command, frozenset())
    for number, value in enumerate(item.params, start=1):
        if math.isinf(value) or (math.isnan(value) and number not in allowed):
            raise Unstorable(_INVALID_PARAM[number], f"{_what(item, seq, f'param{number}')} is {value}")


def _mission_params(item: MissionItem, seq: int, firmware: Firmware) -> tuple[float, float, float, float]:
    p1, p2, p3, p4 = (float32(value) for value in item.params)
    command = item.command
    if command == m.MAV_CMD_NAV_WAYPOINT:
        if firmware is Firmware.PLANE:  # acceptance radius and pass-by distance share one uint16 as two bytes
            acceptance = min(255, c_int(p2, 16, signed=False, what=_what(item, seq, "param2")))
            pass_by = min(255, c_int(p3, 16, signed=False, what=_what(item, seq, "param3")))
            return 0.0, float(acceptance), float(pass_by), 0.0
        return float(c_int(p1, 16, signed=False, what=_what(item, seq, "param1"))), 0.0, 0.0, 0.0
    if command == m.MAV_CMD_NAV_SPLINE_WAYPOINT:
        if firmware is Firmware.PLANE:
            raise Unstorable(m.MAV_MISSION_UNSUPPORTED, f"item {seq} {item.name} is not supported by ArduPlane")
        return float(c_int(p1, 16, signed=False, what=_what(item, seq, "param1"))), 0.0, 0.0, 0.0
    if command == m.MAV_CMD_NAV_LOITER_UNLIM:
        radius = c_int(abs(p3), 16, signed=False, what=_what(item, seq, "radius"))
        return 0.0, 0.0, float(-radius if p3 < 0 else radius), 0.0
    if command == m.MAV_CMD_NAV_LOITER_TIME:
        seconds = c_int(p1, 16, signed=False, what=_what(item, seq, "time"))
        return float(seconds), 0.0, -1.0 if p3 < 0 else 1.0, 1.0 if p4 > 0 else 0.0
    if command == m.MAV_CMD_NAV_LOITER_TO_ALT:
        radius = c_int(abs(p2), 16, signed=False, what=_what(item, seq, "radius"))
        return 0.0, float(-radius if p2 < 0 else radius), 0.0, 1.0 if p4 > 0 else 0.0
    if command == m.MAV_CMD_NAV_LOITER_TURNS:
        return _loiter_turns(item, seq, p1, p3, p4)
    if command == m.MAV_CMD_NAV_LAND:
        abort_alt = c_int(p1, 16, signed=False, what=_what(item, seq, "param1"))
        return float(abort_alt), 0.0, 0.0, -1.0 if (not math.isnan(p4) and p4 < 0) else 1.0
    if command == m.MAV_CMD_NAV_PAYLOAD_PLACE:
        max_descent_cm = c_int(float32(p1 * float32(100.0)), 16, signed=False, what=_what(item, seq, "max descent"))
        return float32(float(max_descent_cm) * float32(0.01)), 0.0, 0.0, 0.0
    if command == m.MAV_CMD_DO_MOUNT_CONTROL:
        return p1, p2, p3, 0.0
    slots = _SIMPLE.get(command)
    if slots is None:
        return p1, p2, p3, p4  # not modelled: compared as sent
    values = [
        slot(value, _what(item, seq, f"param{n}"))
        for n, (slot, value) in enumerate(zip(slots, item.params, strict=True), 1)
    ]
    return values[0], values[1], values[2], values[3]


def _loiter_turns(item: MissionItem, seq: int, p1: float, p3: float, p4: float) -> tuple[float, float, float, float]:
    # Turns in the low byte (fractions below 1 stored x256), radius in the high byte (over 255 m stored /10).
    turns_times_256 = 0 < p1 < 1
    turns = float32(p1 * float32(256.0)) if turns_times_256 else p1
    low = c_int(min(255.0, turns), 16, signed=False, what=_what(item, seq, "turns")) & 0xFF
    radius = abs(p3)
    radius_tens = radius > 255
    high = c_int(min(255.0, radius * 0.1) if radius_tens else radius, 8, signed=False, what=_what(item, seq, "radius"))
    out_turns = float32(low / 256.0) if turns_times_256 else float(low)
    out_radius = float(-high if p3 < 0 else high)
    if radius_tens:
        out_radius = float32(out_radius * 10)
    return out_turns, 0.0, out_radius, 1.0 if p4 > 0 else 0.0


def _stored_mission_item(item: MissionItem, seq: int, firmware: Firmware) -> MissionItem:
    if item.command in (0, 1):
        raise Unstorable(m.MAV_MISSION_INVALID, f"item {seq}: command {item.command} is reserved")
    _check_nan(item, seq)
    p1, p2, p3, p4 = _mission_params(item, seq, firmware)
    stored = MissionItem(item.command, m.MAV_FRAME_GLOBAL, p1, p2, p3, p4, 0, 0, 0.0, True)
    if item.command in LOCATION_COMMANDS:
        return replace(_stored_location(item, seq), param1=p1, param2=p2, param3=p3, param4=p4, autocontinue=True)
    if item.command == m.MAV_CMD_DO_MOUNT_CONTROL:
        return replace(stored, z=float(m.MAV_MOUNT_MODE_MAVLINK_TARGETING))
    if item.command not in _SIMPLE:
        return replace(stored, frame=item.frame, x=item.x, y=item.y, z=float32(item.z), autocontinue=item.autocontinue)
    return stored


def _stored_fence_item(item: MissionItem, seq: int) -> MissionItem:
    _stored_frame(item, seq, _GLOBAL_FRAMES)
    if item.command not in _FENCE_COMMANDS:
        raise Unstorable(m.MAV_MISSION_UNSUPPORTED, f"item {seq}: {item.name} is not a fence item")
    param1 = 0.0
    if item.command in (m.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION, m.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION):
        if float32(item.param1) > 255:
            raise Unstorable(m.MAV_MISSION_INVALID_PARAM1, f"{_what(item, seq, 'vertex count')} {item.param1} > 255")
        param1 = float(c_int(float32(item.param1), 8, signed=False, what=_what(item, seq, "vertex count")))
    elif item.command in (m.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, m.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION):
        param1 = float32(item.param1)
    return MissionItem(item.command, m.MAV_FRAME_GLOBAL, param1, 0.0, 0.0, 0.0, item.x, item.y, 0.0, False)


def _stored_rally_item(item: MissionItem, seq: int) -> MissionItem:
    if item.command != m.MAV_CMD_NAV_RALLY_POINT:
        raise Unstorable(m.MAV_MISSION_UNSUPPORTED, f"item {seq}: {item.name} is not a rally point")
    frame = _stored_frame(item, seq, _GLOBAL_FRAMES)
    z = float32(item.z)
    if math.isnan(z) or not -32768 <= z <= 32767:
        raise Unstorable(m.MAV_MISSION_INVALID_PARAM7, f"{_what(item, seq, 'altitude')} {item.z} does not fit int16 m")
    return MissionItem(item.command, frame, 0.0, 0.0, 0.0, 0.0, item.x, item.y, float(math.trunc(z)), False)


def stored_form(item: MissionItem, seq: int, mission_type: MissionType, firmware: Firmware) -> MissionItem:
    """The item exactly as ArduPilot will return it on download; ``Unstorable`` if it would refuse it."""
    if mission_type is MissionType.FENCE:
        return _stored_fence_item(item, seq)
    if mission_type is MissionType.RALLY:
        return _stored_rally_item(item, seq)
    return _stored_mission_item(item, seq, firmware)


def describe_difference(expected: MissionItem, actual: MissionItem) -> str:
    """Which fields differ, for an error message a person can act on."""
    fields = ("command", "frame", "param1", "param2", "param3", "param4", "x", "y", "z", "autocontinue")
    parts = []
    for name in fields:
        want, got = getattr(expected, name), getattr(actual, name)
        both_nan = isinstance(want, float) and isinstance(got, float) and math.isnan(want) and math.isnan(got)
        if want != got and not both_nan:
            parts.append(f"{name} {want!r} -> {got!r}")
    label = command_name(expected.command)
    return f"{label}: " + ", ".join(parts) if parts else f"{label}: identical"
