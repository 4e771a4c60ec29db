"""Routes that keep out of no-fly zones and inside the operating area.

Geometry is done in metres on a local azimuthal-equidistant projection centred on the depot (pyproj), where
shapely's planar operations are accurate for the few kilometres a delivery spans. The route is the shortest
path through the visibility graph of the buffered no-fly polygons' corners (networkx).
"""

from __future__ import annotations

import functools
import itertools
import threading

import networkx as nx
from pyproj import CRS, Transformer
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import unary_union

from flightctl.delivery.order import LatLon
from flightctl.errors import ConfigError
from flightctl.geo import AltFrame, Location


class PlanningError(ConfigError):
    """No acceptable route or plan exists for this order; nothing was uploaded."""


@functools.lru_cache(maxsize=16)
def _transformers(lat_deg: float, lon_deg: float, _thread: int) -> tuple[Transformer, Transformer]:
    """The projection's two transformers, made once per origin: making them takes 26-38 ms (pyproj parses both
    CRSs), and a daemon plans from the same depot every order, on its event loop, where a telemetry sample
    waited it out. Kept per thread too: a pyproj Transformer is not to be shared between threads."""
    local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat_deg} +lon_0={lon_deg} +datum=WGS84 +units=m")
    forward = Transformer.from_crs(CRS.from_epsg(4326), local, always_xy=True)
    return forward, Transformer.from_crs(local, CRS.from_epsg(4326), always_xy=True)


class LocalFrame:
    """Metres east (x) and north (y) of an origin."""

    def __init__(self, origin: Location) -> None:
        self._forward, self._inverse = _transformers(origin.lat_deg, origin.lon_deg, threading.get_ident())

    def xy(self, lat_deg: float, lon_deg: float) -> tuple[float, float]:
        x, y = self._forward.transform(lon_deg, lat_deg)
        return float(x), float(y)

    def polygon(self, points: list[LatLon]) -> Polygon:
        return Polygon([self.xy(p.lat, p.lon) for p in points])

    def location(self, x: float, y: float, alt_m: float, frame: AltFrame) -> Location:
        lon, lat = self._inverse.transform(x, y)
        return Location(float(lat), float(lon), alt_m, frame)


def plan_route(
    start: Location,
    end: Location,
    *,
    no_fly: list[list[LatLon]],
    operating_area: list[LatLon],
    margin_m: float,
    alt_m: float,
) -> list[Location]:
    """Waypoints (excluding ``start`` and ``end``) of the shortest path that stays ``margin_m`` clear of every
    no-fly zone and inside the operating area. ``PlanningError`` if the end is unreachable."""
    frame = LocalFrame(start)
    area = frame.polygon(operating_area)
    allowed = area.buffer(-margin_m)
    keep_out = unary_union([frame.polygon(zone).buffer(margin_m, join_style="mitre") for zone in no_fly])
    a, b = Point(frame.xy(start.lat_deg, start.lon_deg)), Point(frame.xy(end.lat_deg, end.lon_deg))
    for point, name in ((a, "start"), (b, "drop point")):
        if not area.contains(point):
            raise PlanningError(f"the {name} is outside the operating area")
        if not keep_out.is_empty and keep_out.contains(point):
            raise PlanningError(f"the {name} is inside a no-fly zone (or within {margin_m:g} m of one)")
    # A leg may run along a buffered edge but not through a zone: test against a slightly shrunk keep-out.
    solid = keep_out.buffer(-0.5) if not keep_out.is_empty else keep_out

    def clear(p: tuple[float, float], q: tuple[float, float]) -> bool:
        leg = LineString([p, q])
        return (solid.is_empty or not leg.intersects(solid)) and area.contains(leg)

    start_xy, end_xy = (a.x, a.y), (b.x, b.y)
    if clear(start_xy, end_xy):
        return []
    corners: list[tuple[float, float]] = []
    geometries = getattr(keep_out, "geoms", [keep_out])
    for geometry in geometries:
        corners += [c for c in geometry.exterior.coords[:-1] if allowed.contains(Point(c))]
    graph: nx.Graph[tuple[float, float]] = nx.Graph()
    nodes = [start_xy, end_xy, *corners]
    for p, q in itertools.combinations(nodes, 2):
        if clear(p, q):
            graph.add_edge(p, q, weight=Point(p).distance(Point(q)))
    try:
        path = nx.shortest_path(graph, start_xy, end_xy, weight="weight")
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        raise PlanningError("no route from the depot to the drop point avoids the no-fly zones") from None
    return [frame.location(x, y, alt_m, AltFrame.RELATIVE) for x, y in path[1:-1]]
