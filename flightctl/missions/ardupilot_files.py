"""ArduPilot's mission, fence and rally lists as files (libraries/AP_Filesystem/AP_Filesystem_Mission.cpp).

A file is a 10-byte header (magic 0x763d, mission type, options, first index, item count) followed by each
item as a full-length MISSION_ITEM_INT payload, 38 bytes in MAVLink wire order. ArduPilot converts every
item with the same code the mission protocol uses, so what it stores is the same; it refuses the whole file
when the count disagrees with the length or an item is all zeros.
"""

from __future__ import annotations

import struct

from flightctl.dialect import mavlink
from flightctl.missions.formats.errors import MissionFileError
from flightctl.missions.model import MissionItem, MissionType

MAGIC = 0x763D  # AP_Filesystem_Mission.h mission_magic
_HEADER = struct.Struct("<HHHHH")  # magic, data_type, options, start, num_items
HEADER_SIZE: int = _HEADER.size
_ITEM = mavlink.MAVLink_mission_item_int_message
ITEM_SIZE: int = _ITEM.unpacker.size

PATHS = {
    MissionType.MISSION: "@MISSION/mission.dat",
    MissionType.FENCE: "@MISSION/fence.dat",
    MissionType.RALLY: "@MISSION/rally.dat",
}


def encode(items: list[MissionItem], mission_type: MissionType) -> bytes:
    """The file that makes the vehicle's ``mission_type`` list exactly ``items`` (replacing what was there)."""
    if len(items) >= 0xFFFF:
        raise MissionFileError(PATHS[mission_type], "", f"{len(items)} items do not fit an ArduPilot mission file")
    parts = [_HEADER.pack(MAGIC, int(mission_type), 0, 0, len(items))]
    for seq, item in enumerate(items):
        message = item.message(seq, mission_type)
        parts.append(_ITEM.unpacker.pack(*(getattr(message, name) for name in _ITEM.ordered_fieldnames)))
    return b"".join(parts)


def decode(data: bytes, name: str = "@MISSION file") -> tuple[MissionType, list[MissionItem]]:
    """The mission type and items a file holds; ``MissionFileError`` saying what is wrong otherwise."""
    if len(data) < _HEADER.size:
        raise MissionFileError(name, "header", f"{len(data)} bytes is shorter than the {_HEADER.size}-byte header")
    magic, data_type, _options, start, count = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise MissionFileError(name, "header", f"magic is {magic:#06x}, not {MAGIC:#06x}")
    if start != 0:
        raise MissionFileError(name, "header", f"a partial list (from item {start}) is not a whole plan")
    body = data[_HEADER.size :]
    if len(body) != count * ITEM_SIZE:
        raise MissionFileError(
            name, "header", f"says {count} items but {len(body)} bytes follow ({ITEM_SIZE} per item)"
        )
    try:
        mission_type = MissionType(data_type)
    except ValueError:
        raise MissionFileError(name, "header", f"unknown mission type {data_type}") from None
    items = []
    for seq in range(count):
        fields = _ITEM.unpacker.unpack_from(body, seq * ITEM_SIZE)
        message = _ITEM(**dict(zip(_ITEM.ordered_fieldnames, fields, strict=True)))
        items.append(MissionItem.from_message(message))
    return mission_type, items
