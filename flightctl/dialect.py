"""The one MAVLink dialect flightctl speaks: ArduPilot's, MAVLink 2.

pymavlink picks a dialect from the MAVLINK20 environment variable when ``mavutil`` is imported; we import the
generated v20 module directly instead, so MAVLink 2 extension fields (``mission_type``...) always decode.
"""

from __future__ import annotations

import struct

from pymavlink.dialects.v20 import ardupilotmega as mavlink

__all__ = ["MAVLinkMessage", "command_name", "enum_name", "enum_value", "float32", "mavlink", "message_id"]

MAVLinkMessage = mavlink.MAVLink_message


def enum_name(enum: str, value: int) -> str:
    """``enum_name("MAV_RESULT", 4)`` -> ``"MAV_RESULT_FAILED"``; unknown values stay readable."""
    entry = mavlink.enums.get(enum, {}).get(value)
    return str(entry.name) if entry is not None else f"{enum}({value})"


def command_name(command: int) -> str:
    """``command_name(22)`` -> ``"NAV_TAKEOFF"``."""
    return enum_name("MAV_CMD", command).removeprefix("MAV_CMD_")


def float32(value: float) -> float:
    """``value`` rounded to float32: what a MAVLink float field (and a C float) holds."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def enum_value(name: str) -> int:
    """``enum_value("MAV_CMD_NAV_TAKEOFF")`` -> 22; a typo raises instead of sending a wrong number."""
    value = getattr(mavlink, name, None)
    if not isinstance(value, int):
        raise KeyError(f"not a MAVLink enum entry: {name}")
    return value


def message_id(name: str) -> int:
    """``message_id("GLOBAL_POSITION_INT")`` -> 33."""
    value = getattr(mavlink, f"MAVLINK_MSG_ID_{name.upper()}", None)
    if not isinstance(value, int):
        raise KeyError(f"not a MAVLink message: {name}")
    return value
