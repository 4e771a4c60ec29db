"""Missions as data: ``MissionItem`` (one MISSION_ITEM_INT's content) and ``MissionPlan`` (the three lists).

Positions are kept as the 1e7-scaled integers MAVLink carries, so nothing is rounded between a file, the
plan and the wire. Item 0 of the mission list is home: the autopilot owns it and rewrites it, so it is
neither verified nor part of the content hash.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from flightctl.dialect import MAVLinkMessage, command_name, mavlink
from flightctl.geo import AltFrame, Location


class MissionType(enum.IntEnum):
    MISSION = mavlink.MAV_MISSION_TYPE_MISSION
    FENCE = mavlink.MAV_MISSION_TYPE_FENCE
    RALLY = mavlink.MAV_MISSION_TYPE_RALLY

    @property
    def label(self) -> str:
        return self.name.lower()


# Commands whose x/y are a latitude/longitude (ArduPilot's AP_Mission::stored_in_location plus fence/rally).
LOCATION_COMMANDS = frozenset(
    {
        mavlink.MAV_CMD_NAV_WAYPOINT,
        mavlink.MAV_CMD_NAV_LOITER_UNLIM,
        mavlink.MAV_CMD_NAV_LOITER_TURNS,
        mavlink.MAV_CMD_NAV_LOITER_TIME,
        mavlink.MAV_CMD_NAV_LAND,
        mavlink.MAV_CMD_NAV_TAKEOFF,
        mavlink.MAV_CMD_NAV_CONTINUE_AND_CHANGE_ALT,
        mavlink.MAV_CMD_NAV_LOITER_TO_ALT,
        mavlink.MAV_CMD_NAV_SPLINE_WAYPOINT,
        mavlink.MAV_CMD_NAV_GUIDED_ENABLE,
        mavlink.MAV_CMD_DO_SET_HOME,
        mavlink.MAV_CMD_DO_RETURN_PATH_START,
        mavlink.MAV_CMD_DO_LAND_START,
        mavlink.MAV_CMD_DO_GO_AROUND,
        mavlink.MAV_CMD_DO_SET_ROI_LOCATION,
        mavlink.MAV_CMD_DO_SET_ROI,
        mavlink.MAV_CMD_NAV_VTOL_TAKEOFF,
        mavlink.MAV_CMD_NAV_VTOL_LAND,
        mavlink.MAV_CMD_NAV_PAYLOAD_PLACE,
        mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION,
        mavlink.MAV_CMD_NAV_FENCE_RETURN_POINT,
        mavlink.MAV_CMD_NAV_RALLY_POINT,
    }
)

_FRAME_FOR_ALT = {
    AltFrame.ABSOLUTE: mavlink.MAV_FRAME_GLOBAL_INT,
    AltFrame.RELATIVE: mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
    AltFrame.TERRAIN: mavlink.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT,
}
_ALT_FOR_FRAME = {
    mavlink.MAV_FRAME_GLOBAL: AltFrame.ABSOLUTE,
    mavlink.MAV_FRAME_GLOBAL_INT: AltFrame.ABSOLUTE,
    mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT: AltFrame.RELATIVE,
    mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT: AltFrame.RELATIVE,
    mavlink.MAV_FRAME_GLOBAL_TERRAIN_ALT: AltFrame.TERRAIN,
    mavlink.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT: AltFrame.TERRAIN,
}


def frame_alt(frame: int) -> AltFrame | None:
    """The altitude reference a MAV_FRAME stands for (float and _INT variants alike)."""
    return _ALT_FOR_FRAME.get(frame)


@dataclass(frozen=True, eq=False)
class MissionItem:
    """The content of one MISSION_ITEM_INT, without its sequence number (that is its place in a list).

    Two items are equal when they would put the same bytes on the wire: params and z compare as float32,
    and NaN ("no value") equals NaN.
    """

    command: int
    frame: int = mavlink.MAV_FRAME_MISSION
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: int = 0  # latitude * 1e7 for location commands
    y: int = 0  # longitude * 1e7 for location commands
    z: float = 0.0  # altitude in metres, in the frame's reference
    autocontinue: bool = True

    def __post_init__(self) -> None:
        # Builders and files hand us ints where MAVLink has floats (and the reverse): store one type each.
        for name in ("param1", "param2", "param3", "param4", "z"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("command", "frame", "x", "y"):
            value = getattr(self, name)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{name} must be a whole number, got {value}")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "autocontinue", bool(self.autocontinue))

    @property
    def name(self) -> str:
        return command_name(self.command)

    def message(self, seq: int, mission_type: int, target_system: int = 0, target_component: int = 0) -> MAVLinkMessage:
        """The MISSION_ITEM_INT that carries this item as number ``seq`` (``current`` unset: ArduPilot
        ignores it, and set-current is its own command)."""
        return mavlink.MAVLink_mission_item_int_message(
            target_system, target_component, seq, self.frame, self.command, 0, int(self.autocontinue),
            self.param1, self.param2, self.param3, self.param4, self.x, self.y, self.z, mission_type,
        )  # fmt: skip

    @classmethod
    def from_message(cls, message: MAVLinkMessage) -> MissionItem:
        """The content of a MISSION_ITEM_INT (or anything with its fields)."""
        return cls(
            message.command, message.frame, message.param1, message.param2, message.param3, message.param4,
            message.x, message.y, message.z, bool(message.autocontinue),
        )  # fmt: skip

    @property
    def params(self) -> tuple[float, float, float, float]:
        return (self.param1, self.param2, self.param3, self.param4)

    @property
    def has_location(self) -> bool:
        return self.command in LOCATION_COMMANDS

    def location(self) -> Location | None:
        """Where this item is, if it is somewhere (lat/lon not both zero, a frame with an altitude reference)."""
        alt_frame = frame_alt(self.frame)
        if not self.has_location or alt_frame is None or (self.x == 0 and self.y == 0) or math.isnan(self.z):
            return None
        return Location(self.x / 1e7, self.y / 1e7, self.z, alt_frame)

    def with_location(self, location: Location) -> MissionItem:
        return replace(
            self, x=location.lat_e7, y=location.lon_e7, z=location.alt_m, frame=_FRAME_FOR_ALT[location.frame]
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MissionItem):
            return NotImplemented
        return self.canonical() == other.canonical()

    def __hash__(self) -> int:
        return hash(self.canonical())

    def canonical(self) -> tuple[object, ...]:
        """Fields in a form that hashes identically for identical MAVLink content (float32 bit patterns)."""
        return (
            self.command,
            self.frame,
            *(_f32_bits(value) for value in self.params),
            self.x,
            self.y,
            _f32_bits(self.z),
            int(self.autocontinue),
        )

    # ---- builders for the commands flightctl plans -------------------------------------------------------

    @classmethod
    def at(cls, command: int, location: Location, *params: float) -> MissionItem:
        padded = [*params, 0.0, 0.0, 0.0, 0.0][:4]
        return cls(command, param1=padded[0], param2=padded[1], param3=padded[2], param4=padded[3]).with_location(
            location
        )

    @classmethod
    def takeoff(cls, alt_m: float) -> MissionItem:
        """Climb straight up to ``alt_m`` above home (Copter ignores lat/lon 0,0 and takes off where it is)."""
        return cls(mavlink.MAV_CMD_NAV_TAKEOFF, frame=mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, z=alt_m)

    @classmethod
    def waypoint(cls, location: Location, *, hold_s: float = 0.0) -> MissionItem:
        return cls.at(mavlink.MAV_CMD_NAV_WAYPOINT, location, hold_s)

    @classmethod
    def land(cls, location: Location) -> MissionItem:
        return cls.at(mavlink.MAV_CMD_NAV_LAND, location)

    @classmethod
    def return_to_launch(cls) -> MissionItem:
        return cls(mavlink.MAV_CMD_NAV_RETURN_TO_LAUNCH)

    @classmethod
    def payload_place(cls, location: Location, *, max_descent_m: float) -> MissionItem:
        return cls.at(mavlink.MAV_CMD_NAV_PAYLOAD_PLACE, location, max_descent_m)

    @classmethod
    def winch(cls, action: int, *, length_m: float = 0.0, rate_m_s: float = 0.0, winch: int = 1) -> MissionItem:
        return cls(mavlink.MAV_CMD_DO_WINCH, param1=winch, param2=action, param3=length_m, param4=rate_m_s)

    @classmethod
    def change_speed(cls, ground_speed_m_s: float) -> MissionItem:
        return cls(mavlink.MAV_CMD_DO_CHANGE_SPEED, param1=1, param2=ground_speed_m_s, param3=-1)

    @classmethod
    def loiter_time(cls, location: Location, seconds: float) -> MissionItem:
        return cls.at(mavlink.MAV_CMD_NAV_LOITER_TIME, location, seconds)

    @classmethod
    def rally_point(cls, location: Location) -> MissionItem:
        return cls.at(mavlink.MAV_CMD_NAV_RALLY_POINT, location)

    @classmethod
    def home(cls, location: Location) -> MissionItem:
        """Item 0 of a mission: a placeholder the vehicle replaces with its own home."""
        location = location.require_frame(AltFrame.ABSOLUTE)
        return cls.home_e7(location.lat_e7, location.lon_e7, location.alt_m)

    @classmethod
    def home_e7(cls, lat_e7: int, lon_e7: int, alt_msl_m: float) -> MissionItem:
        """The home item from 1e7 integers (file readers convert degrees exactly, as text): frame GLOBAL, as
        every ground station and ArduPilot itself write it."""
        return cls(mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_FRAME_GLOBAL, x=lat_e7, y=lon_e7, z=alt_msl_m)


def _f32_bits(value: float) -> int:
    """A float as MAVLink carries it (float32), NaN folded to one pattern so 'no value' hashes alike."""
    if math.isnan(value):
        return 0x7FC00000
    return int(struct.unpack("<I", struct.pack("<f", value))[0])


@dataclass
class MissionPlan:
    """What should be on the vehicle: the mission (item 0 = home), the geofence and the rally points."""

    mission: list[MissionItem] = field(default_factory=list)
    fence: list[MissionItem] = field(default_factory=list)
    rally: list[MissionItem] = field(default_factory=list)
    name: str = ""

    def items(self, mission_type: MissionType) -> list[MissionItem]:
        return {MissionType.MISSION: self.mission, MissionType.FENCE: self.fence, MissionType.RALLY: self.rally}[
            mission_type
        ]

    def with_items(self, mission_type: MissionType, items: list[MissionItem]) -> MissionPlan:
        lists = {MissionType.MISSION: self.mission, MissionType.FENCE: self.fence, MissionType.RALLY: self.rally}
        lists[mission_type] = items
        return MissionPlan(lists[MissionType.MISSION], lists[MissionType.FENCE], lists[MissionType.RALLY], self.name)

    @property
    def home(self) -> Location | None:
        return self.mission[0].location() if self.mission else None

    def route(self) -> Iterator[tuple[int, MissionItem, Location]]:
        """(seq, item, location) of each mission item that is somewhere, after home."""
        for seq, item in enumerate(self.mission):
            location = item.location()
            if seq > 0 and location is not None:
                yield seq, item, location

    def content_hash(self) -> str:
        """SHA-256 over every item but home, in order, per type: equal plans hash equal, any change differs."""
        digest = hashlib.sha256()
        for mission_type in MissionType:
            items: Iterable[MissionItem] = self.items(mission_type)
            if mission_type is MissionType.MISSION:
                items = self.mission[1:]
            digest.update(json.dumps([mission_type.label, [item.canonical() for item in items]]).encode())
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.mission) + len(self.fence) + len(self.rally)
