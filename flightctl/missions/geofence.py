"""Geofence shapes <-> fence mission items, with shapely checking the polygons are real polygons.

A polygon travels as one MAV_CMD_NAV_FENCE_POLYGON_VERTEX_* item per vertex, each carrying the vertex
count in param1; circles are one item with the radius in param1; the breach return point is one item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flightctl.dialect import mavlink
from flightctl.errors import ConfigError
from flightctl.geo import Location
from flightctl.missions.model import MissionItem

if TYPE_CHECKING:  # shapely (and numpy under it) is imported when a polygon is checked, not by every plan reader
    from shapely.geometry import Polygon

_VERTEX = {
    True: mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
    False: mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION,
}
_CIRCLE = {True: mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, False: mavlink.MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION}
_FENCE_FRAME = mavlink.MAV_FRAME_GLOBAL_INT


@dataclass(frozen=True)
class FencePolygon:
    inclusion: bool
    vertices_e7: tuple[tuple[int, int], ...]  # (lat, lon) * 1e7

    def shape(self) -> Polygon:
        """In (lon, lat) degrees, the order shapely's x/y expects."""
        from shapely.geometry import Polygon

        return Polygon([(lon / 1e7, lat / 1e7) for lat, lon in self.vertices_e7])


@dataclass(frozen=True)
class FenceCircle:
    inclusion: bool
    center_e7: tuple[int, int]
    radius_m: float


@dataclass
class FenceShapes:
    polygons: list[FencePolygon]
    circles: list[FenceCircle]
    return_point: MissionItem | None = None


def check_polygon(polygon: FencePolygon, where: str) -> None:
    if len(polygon.vertices_e7) < 3:
        raise ConfigError(f"{where}: a fence polygon needs at least 3 vertices, it has {len(polygon.vertices_e7)}")
    if len(polygon.vertices_e7) > 255:
        raise ConfigError(f"{where}: a fence polygon may have at most 255 vertices")
    from shapely.validation import explain_validity

    shape = polygon.shape()
    if not shape.is_valid:
        raise ConfigError(f"{where}: fence polygon is not a simple polygon ({explain_validity(shape)})")


def polygon_items(polygon: FencePolygon, where: str = "fence polygon") -> list[MissionItem]:
    check_polygon(polygon, where)
    count = len(polygon.vertices_e7)
    return [
        MissionItem(_VERTEX[polygon.inclusion], _FENCE_FRAME, param1=count, x=lat, y=lon, autocontinue=False)
        for lat, lon in polygon.vertices_e7
    ]


def circle_item(circle: FenceCircle, where: str = "fence circle") -> MissionItem:
    if not circle.radius_m > 0:
        raise ConfigError(f"{where}: radius must be positive, got {circle.radius_m}")
    lat, lon = circle.center_e7
    return MissionItem(
        _CIRCLE[circle.inclusion], _FENCE_FRAME, param1=circle.radius_m, x=lat, y=lon, autocontinue=False
    )


def return_point_item(location: Location) -> MissionItem:
    return MissionItem(mavlink.MAV_CMD_NAV_FENCE_RETURN_POINT, autocontinue=False).with_location(location)


def return_point_from_e7(lat_e7: int, lon_e7: int, alt_m: float) -> MissionItem:
    """The breach return point as the files give it: a position and an altitude above home."""
    return MissionItem(
        mavlink.MAV_CMD_NAV_FENCE_RETURN_POINT,
        mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
        x=lat_e7,
        y=lon_e7,
        z=alt_m,
        autocontinue=False,
    )


def fence_items(shapes: FenceShapes) -> list[MissionItem]:
    items: list[MissionItem] = []
    for number, polygon in enumerate(shapes.polygons):
        items += polygon_items(polygon, f"fence polygon {number}")
    for number, circle in enumerate(shapes.circles):
        items.append(circle_item(circle, f"fence circle {number}"))
    if shapes.return_point is not None:
        items.append(shapes.return_point)
    return items


def fence_shapes(items: list[MissionItem]) -> FenceShapes:
    """Group fence items back into shapes; ``ConfigError`` if vertex counts do not add up."""
    shapes = FenceShapes([], [])
    index = 0
    while index < len(items):
        item = items[index]
        inclusion = item.command in (
            mavlink.MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION,
            mavlink.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION,
        )
        if item.command in _VERTEX.values():
            count = int(item.param1)
            group = items[index : index + count]
            if count < 3 or len(group) < count or any(v.command != item.command for v in group):
                raise ConfigError(f"fence item {index}: polygon of {count} vertices is incomplete or mixed")
            shapes.polygons.append(FencePolygon(inclusion, tuple((v.x, v.y) for v in group)))
            index += count
            continue
        if item.command in _CIRCLE.values():
            shapes.circles.append(FenceCircle(inclusion, (item.x, item.y), item.param1))
        elif item.command == mavlink.MAV_CMD_NAV_FENCE_RETURN_POINT:
            shapes.return_point = item
        else:
            raise ConfigError(f"fence item {index}: {item.name} is not a fence item")
        index += 1
    return shapes
