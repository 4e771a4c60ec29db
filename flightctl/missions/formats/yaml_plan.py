"""Our own readable plan format (YAML). Every item is written by name, with only the fields that matter:

    name: kirkwall-to-st-ola
    home: {lat: 58.9582, lon: -2.9609, alt_m: 20}
    mission:
      - {command: NAV_TAKEOFF, frame: GLOBAL_RELATIVE_ALT_INT, alt_m: 30}
      - {command: NAV_WAYPOINT, frame: GLOBAL_RELATIVE_ALT_INT, lat: 58.9601, lon: -2.9527, alt_m: 40}
      - {command: DO_CHANGE_SPEED, params: [1, 10, -1, 0]}
    fence:
      - {polygon: [[58.95, -2.97], [58.97, -2.97], [58.97, -2.94], [58.95, -2.94]], inclusion: true}
      - {circle: [58.96, -2.955], radius_m: 40, inclusion: false}
    rally:
      - {lat: 58.9590, lon: -2.9600, alt_m: 30}

Latitudes and longitudes are written with exactly 7 decimals and read through decimal arithmetic, so a file
round-trips at the 1e7 integer level. ``null`` is "no value" (NaN on the wire).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from flightctl.dialect import enum_value, mavlink
from flightctl.errors import ConfigError
from flightctl.missions.formats.errors import MissionFileError, degrees_to_e7, e7_to_degrees_text
from flightctl.missions.geofence import (
    FenceCircle,
    FencePolygon,
    FenceShapes,
    fence_items,
    fence_shapes,
    return_point_from_e7,
)
from flightctl.missions.model import MissionItem, MissionPlan


def _enum_number(prefix: str) -> Any:
    def parse(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return enum_value(prefix + value.upper().removeprefix(prefix))
            except KeyError:
                raise ValueError(f"unknown {prefix.rstrip('_')} {value!r}") from None
        raise ValueError(f"expected a {prefix.rstrip('_')} name or number, got {value!r}")

    return BeforeValidator(parse)


def _degrees(value: object) -> int:
    try:
        return degrees_to_e7(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


Command = Annotated[int, _enum_number("MAV_CMD_")]
Frame = Annotated[int, _enum_number("MAV_FRAME_")]
DegreesE7 = Annotated[int, BeforeValidator(_degrees)]
Param = Annotated[float, BeforeValidator(lambda v: math.nan if v is None else v)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Item(_Strict):
    command: Command
    frame: Frame = mavlink.MAV_FRAME_MISSION
    params: list[Param] = Field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0], min_length=4, max_length=4)
    lat: DegreesE7 | None = None
    lon: DegreesE7 | None = None
    x: int | None = None
    y: int | None = None
    alt_m: Param = 0.0
    autocontinue: bool = True

    @model_validator(mode="after")
    def _one_position_form(self) -> _Item:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        if self.lat is not None and (self.x is not None or self.y is not None):
            raise ValueError("give a position as lat/lon or as x/y, not both")
        return self

    def item(self) -> MissionItem:
        x = self.lat if self.lat is not None else (self.x or 0)
        y = self.lon if self.lon is not None else (self.y or 0)
        p1, p2, p3, p4 = self.params
        return MissionItem(self.command, self.frame, p1, p2, p3, p4, x, y, self.alt_m, self.autocontinue)


class _Home(_Strict):
    lat: DegreesE7
    lon: DegreesE7
    alt_m: float


class _Polygon(_Strict):
    polygon: list[tuple[DegreesE7, DegreesE7]]
    inclusion: bool = True


class _Circle(_Strict):
    circle: tuple[DegreesE7, DegreesE7]
    radius_m: float = Field(gt=0)
    inclusion: bool = True


class _ReturnPoint(_Strict):
    return_point: tuple[DegreesE7, DegreesE7]
    alt_m: float


def _fence_kind(entry: Any) -> str | None:
    """Which shape a fence entry is, by the key that names it: errors then speak of that shape alone."""
    if isinstance(entry, dict):
        for key in ("polygon", "circle", "return_point"):
            if key in entry:
                return key
    return None


_FenceEntry = Annotated[
    Annotated[_Polygon, Tag("polygon")]
    | Annotated[_Circle, Tag("circle")]
    | Annotated[_ReturnPoint, Tag("return_point")],
    Discriminator(
        _fence_kind,
        custom_error_type="fence_shape",
        custom_error_message="a fence entry is one of polygon, circle (with radius_m) or return_point",
    ),
]


class _Rally(_Strict):
    lat: DegreesE7
    lon: DegreesE7
    alt_m: float
    frame: Frame = mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT


class _Plan(_Strict):
    name: str = ""
    home: _Home
    mission: list[_Item] = Field(default_factory=list)
    fence: list[_FenceEntry] = Field(default_factory=list)
    rally: list[_Rally] = Field(default_factory=list)


def _location_text(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"] if not str(part).startswith("_")) or "plan"


def parse_yaml_plan(text: str, path: Path | str = "<text>") -> MissionPlan:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise MissionFileError(path, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        plan = _Plan.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise MissionFileError(path, _location_text(dict(first)), first["msg"] + more) from None
    home = MissionItem(
        mavlink.MAV_CMD_NAV_WAYPOINT, mavlink.MAV_FRAME_GLOBAL, x=plan.home.lat, y=plan.home.lon, z=plan.home.alt_m
    )
    shapes = FenceShapes([], [])
    for entry in plan.fence:
        if isinstance(entry, _Polygon):
            shapes.polygons.append(FencePolygon(entry.inclusion, tuple(entry.polygon)))
        elif isinstance(entry, _Circle):
            shapes.circles.append(FenceCircle(entry.inclusion, entry.circle, entry.radius_m))
        else:
            lat, lon = entry.return_point
            shapes.return_point = return_point_from_e7(lat, lon, entry.alt_m)
    try:
        fence = fence_items(shapes)
    except ConfigError as exc:
        raise MissionFileError(path, "fence", str(exc)) from None
    rally = [MissionItem(mavlink.MAV_CMD_NAV_RALLY_POINT, r.frame, x=r.lat, y=r.lon, z=r.alt_m) for r in plan.rally]
    return MissionPlan(
        [home, *(entry.item() for entry in plan.mission)], fence, rally, name=plan.name or Path(str(path)).stem
    )


# ---- writing ---------------------------------------------------------------------------------------------


class _Degrees(str):
    """A latitude/longitude written as a plain YAML number with exactly 7 decimals."""


def _represent_degrees(dumper: yaml.SafeDumper, value: _Degrees) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:float", str(value))


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Degrees, _represent_degrees)


def _deg(e7: int) -> _Degrees:
    return _Degrees(e7_to_degrees_text(e7))


def _param(value: float) -> float | int | None:
    if math.isnan(value):
        return None
    return int(value) if value.is_integer() else value


def _short_name(prefix: str, value: int) -> str | int:
    entry = mavlink.enums["MAV_CMD" if prefix == "MAV_CMD_" else "MAV_FRAME"].get(value)
    return str(entry.name).removeprefix(prefix) if entry is not None else value


def _item_dict(item: MissionItem) -> dict[str, Any]:
    entry: dict[str, Any] = {"command": _short_name("MAV_CMD_", item.command)}
    if item.frame != mavlink.MAV_FRAME_MISSION:
        entry["frame"] = _short_name("MAV_FRAME_", item.frame)
    if any(value != 0.0 or math.isnan(value) for value in item.params):
        entry["params"] = [_param(value) for value in item.params]
    if item.has_location:
        if item.x or item.y:
            entry["lat"], entry["lon"] = _deg(item.x), _deg(item.y)
    elif item.x or item.y:
        entry["x"], entry["y"] = item.x, item.y
    if item.z != 0.0 or math.isnan(item.z):
        entry["alt_m"] = _param(item.z)
    if not item.autocontinue:
        entry["autocontinue"] = False
    return entry


def format_yaml_plan(plan: MissionPlan) -> str:
    if not plan.mission:
        raise ConfigError("a plan needs at least the home item")
    home = plan.mission[0]
    shapes = fence_shapes(plan.fence)
    fence: list[dict[str, Any]] = [
        {"polygon": [[_deg(lat), _deg(lon)] for lat, lon in polygon.vertices_e7], "inclusion": polygon.inclusion}
        for polygon in shapes.polygons
    ]
    fence += [
        {"circle": [_deg(c.center_e7[0]), _deg(c.center_e7[1])], "radius_m": c.radius_m, "inclusion": c.inclusion}
        for c in shapes.circles
    ]
    if shapes.return_point is not None:
        point = shapes.return_point
        fence.append({"return_point": [_deg(point.x), _deg(point.y)], "alt_m": point.z})
    document = {
        "name": plan.name,
        "home": {"lat": _deg(home.x), "lon": _deg(home.y), "alt_m": home.z},
        "mission": [_item_dict(item) for item in plan.mission[1:]],
        "fence": fence,
        "rally": [
            {"lat": _deg(r.x), "lon": _deg(r.y), "alt_m": r.z, "frame": _short_name("MAV_FRAME_", r.frame)}
            for r in plan.rally
        ],
    }
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=120)
