"""QGroundControl ``.plan`` files (JSON): mission items, geofence polygons/circles/return point, rally points.

Simple items map one to one. Of QGC's complex items, the transect-style ones (survey, corridor scan) carry
their waypoints already expanded under ``TransectStyleComplexItem.Items``, which we take as they are. Items
QGC only computes when it uploads (landing patterns) cannot be reproduced faithfully and are refused with a
message saying so, rather than guessed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from flightctl.dialect import mavlink
from flightctl.errors import ConfigError
from flightctl.missions.formats.errors import MissionFileError, degrees_to_e7, number, whole_number
from flightctl.missions.geofence import (
    FenceCircle,
    FencePolygon,
    FenceShapes,
    fence_items,
    fence_shapes,
    return_point_from_e7,
)
from flightctl.missions.model import MissionItem, MissionPlan

_FIRMWARE_ARDUPILOT = 3  # MAV_AUTOPILOT_ARDUPILOTMEGA
_VEHICLE_QUAD = 2  # MAV_TYPE_QUADROTOR


def _require(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ValueError(f"{where}: missing {key!r}")
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _simple_item(raw: Any, where: str) -> MissionItem:
    command = whole_number(_require(raw, "command", (int, float), where), f"{where}.command", lowest=0, highest=65_535)
    frame = whole_number(_require(raw, "frame", (int, float), where), f"{where}.frame")
    params = _require(raw, "params", list, where)
    if len(params) != 7:
        raise ValueError(f"{where}.params: expected 7 values, found {len(params)}")
    p = [number(value) for value in params]
    item = MissionItem(command, frame, p[0], p[1], p[2], p[3], autocontinue=bool(raw.get("autoContinue", True)))
    if item.has_location:
        if params[4] is None or params[5] is None:
            x = y = 0  # QGC writes null for "no position" (e.g. a takeoff where the vehicle stands)
        else:
            x, y = degrees_to_e7(params[4]), degrees_to_e7(params[5])
    else:
        x = 0 if params[4] is None else whole_number(params[4], f"{where}.params[4]")
        y = 0 if params[5] is None else whole_number(params[5], f"{where}.params[5]")
    return MissionItem(command, frame, p[0], p[1], p[2], p[3], x, y, p[6], item.autocontinue)


def _mission_items(raw_items: list[Any]) -> list[MissionItem]:
    items: list[MissionItem] = []
    for index, raw in enumerate(raw_items):
        where = f"mission.items[{index}]"
        kind = raw.get("type") if isinstance(raw, dict) else None
        if kind == "SimpleItem":
            items.append(_simple_item(raw, where))
        elif kind == "ComplexItem":
            transect = raw.get("TransectStyleComplexItem")
            expanded = transect.get("Items") if isinstance(transect, dict) else None
            if not isinstance(expanded, list):
                raise ValueError(
                    f"{where}: complex item {raw.get('complexItemType')!r} has no expanded items; QGroundControl "
                    "computes it only when uploading. Convert it to waypoints in QGC and save again"
                )
            items += [
                _simple_item(sub, f"{where}.TransectStyleComplexItem.Items[{n}]") for n, sub in enumerate(expanded)
            ]
        else:
            raise ValueError(f"{where}: unknown item type {kind!r}")
    return items


def _home(mission: dict[str, Any]) -> MissionItem:
    home = _require(mission, "plannedHomePosition", list, "mission")
    if len(home) != 3:
        raise ValueError("mission.plannedHomePosition: expected [lat, lon, alt]")
    return MissionItem.home_e7(degrees_to_e7(home[0]), degrees_to_e7(home[1]), number(home[2]))


def _point_e7(raw: Any, where: str) -> tuple[int, int]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise ValueError(f"{where}: expected [lat, lon]")
    return degrees_to_e7(raw[0]), degrees_to_e7(raw[1])


def _fence(raw: Any) -> list[MissionItem]:
    if raw is None:
        return []
    shapes = FenceShapes([], [])
    for index, polygon in enumerate(raw.get("polygons", [])):
        where = f"geoFence.polygons[{index}]"
        points = _require(polygon, "polygon", list, where)
        shapes.polygons.append(
            FencePolygon(bool(polygon.get("inclusion", True)), tuple(_point_e7(p, f"{where}.polygon") for p in points))
        )
    for index, circle in enumerate(raw.get("circles", [])):
        where = f"geoFence.circles[{index}]"
        body = _require(circle, "circle", dict, where)
        center = _point_e7(_require(body, "center", list, f"{where}.circle"), f"{where}.circle.center")
        radius = number(_require(body, "radius", (int, float), f"{where}.circle"))
        shapes.circles.append(FenceCircle(bool(circle.get("inclusion", True)), center, radius))
    breach = raw.get("breachReturn")
    if isinstance(breach, list) and len(breach) == 3:
        lat, lon = _point_e7(breach, "geoFence.breachReturn")
        shapes.return_point = return_point_from_e7(lat, lon, number(breach[2]))
    return fence_items(shapes)


def _rally(raw: Any) -> list[MissionItem]:
    if raw is None:
        return []
    items = []
    for index, point in enumerate(raw.get("points", [])):
        if not isinstance(point, list) or len(point) != 3:
            raise ValueError(f"rallyPoints.points[{index}]: expected [lat, lon, alt]")
        lat, lon = _point_e7(point, f"rallyPoints.points[{index}]")
        items.append(
            MissionItem(
                mavlink.MAV_CMD_NAV_RALLY_POINT,
                mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
                x=lat,
                y=lon,
                z=number(point[2]),
            )
        )
    return items


def _require_plan(document: Any) -> None:
    if not isinstance(document, dict) or document.get("fileType") != "Plan":
        raise ValueError('not a QGroundControl plan ("fileType" is not "Plan")')


def parse_qgc_plan(text: str, path: Path | str = "<text>") -> MissionPlan:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MissionFileError(path, f"line {exc.lineno} column {exc.colno}", f"not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise MissionFileError(path, "", "not a mission plan: JSON nested deeper than any plan is") from None
    try:
        _require_plan(document)
        mission = _require(document, "mission", dict, "plan")
        items = [_home(mission), *_mission_items(_require(mission, "items", list, "mission"))]
        fence = _fence(document.get("geoFence"))
        rally = _rally(document.get("rallyPoints"))
    except (ValueError, ConfigError) as exc:
        where, _, reason = str(exc).partition(": ")
        raise MissionFileError(path, where if reason else "", reason or where) from None
    return MissionPlan(items, fence, rally, name=Path(str(path)).stem)


def _json_number(value: float) -> float | int | None:
    if math.isnan(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _degrees(e7: int) -> float:
    return e7 / 1e7  # JSON numbers are doubles: e7 / 1e7 reads back to the same 1e7 integer


def format_qgc_plan(plan: MissionPlan) -> str:
    if not plan.mission:
        raise ConfigError("a QGroundControl plan needs at least the home item")
    home = plan.mission[0]
    items = []
    for jump_id, item in enumerate(plan.mission[1:], start=1):
        x: float | int = _degrees(item.x) if item.has_location else item.x
        y: float | int = _degrees(item.y) if item.has_location else item.y
        items.append(
            {
                "autoContinue": item.autocontinue,
                "command": item.command,
                "doJumpId": jump_id,
                "frame": item.frame,
                "params": [*(_json_number(v) for v in item.params), x, y, _json_number(item.z)],
                "type": "SimpleItem",
            }
        )
    shapes = fence_shapes(plan.fence)
    fence: dict[str, Any] = {
        "circles": [
            {"circle": {"center": [_degrees(c.center_e7[0]), _degrees(c.center_e7[1])], "radius": c.radius_m},
             "inclusion": c.inclusion, "version": 1}
            for c in shapes.circles
        ],
        "polygons": [
            {"inclusion": p.inclusion, "polygon": [[_degrees(a), _degrees(o)] for a, o in p.vertices_e7], "version": 1}
            for p in shapes.polygons
        ],
        "version": 2,
    }  # fmt: skip
    if shapes.return_point is not None:
        point = shapes.return_point
        fence["breachReturn"] = [_degrees(point.x), _degrees(point.y), point.z]
    document = {
        "fileType": "Plan",
        "geoFence": fence,
        "groundStation": "flightctl",
        "mission": {
            "cruiseSpeed": 15,
            "firmwareType": _FIRMWARE_ARDUPILOT,
            "hoverSpeed": 5,
            "items": items,
            "plannedHomePosition": [_degrees(home.x), _degrees(home.y), home.z],
            "vehicleType": _VEHICLE_QUAD,
            "version": 2,
        },
        "rallyPoints": {"points": [[_degrees(r.x), _degrees(r.y), r.z] for r in plan.rally], "version": 2},
        "version": 1,
    }
    return json.dumps(document, indent=4) + "\n"
