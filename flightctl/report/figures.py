"""The report's pictures, drawn with matplotlib (Agg: no display needed) into PNG bytes.

- ``route_map``: the coastline (GSHHG, shipped in a package), the operating area and no-fly zones, the planned
  route, the flown track, the depot or airstrips, the rally points, and for a drop the zone, target and release.
- ``drop_map``: the last metres around the drop point, where the release distance is read.
- ``time_plots``: altitude, ground speed, battery volts and amps, energy against the budget, wind, and mode,
  with the delivery's phases marked on each.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after the backend is chosen
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from flightctl.report.coastline import shores
from flightctl.report.flight import FlightReport

SEA, LAND, LAKE = "#dbe9f4", "#f2efe6", "#c7dcef"
PLANNED, FLOWN = "#1f5fbf", "#e0681a"
MAP_MARGIN = 0.15  # of the flight's extent, around it
MIN_SPAN_DEG = 0.01
DROP_VIEW_M = 40.0  # half-width of the drop map


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _points(report: FlightReport, *, with_area: bool) -> list[tuple[float, float]]:
    """(lat, lon) of everything a map must show: the flight, and with ``with_area`` its operating area too."""
    plan = report.plan or {}
    found = [(p[0], p[1]) for p in plan.get("route", [])]
    found += [(p["lat"], p["lon"]) for p in plan.get("places", [])]
    found += [(lat, lon) for _t, lat, lon, _alt in report.samples.position]
    if plan.get("home"):
        found.append((plan["home"][0], plan["home"][1]))
    if with_area:
        found += [(p[0], p[1]) for p in plan.get("rally", [])]
        found += [(p[0], p[1]) for ring in plan.get("operating_area", []) for p in ring]
    return found


def _bounds(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    """(west, south, east, north) around ``points``, with a margin, never narrower than MIN_SPAN_DEG."""
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    span = max(max(lats) - min(lats), max(lons) - min(lons), MIN_SPAN_DEG)
    margin = span * MAP_MARGIN
    return min(lons) - margin, min(lats) - margin, max(lons) + margin, max(lats) + margin


def _aspect(axes: Axes, lat_deg: float) -> None:
    # Degrees of longitude shrink with latitude: this keeps a kilometre the same length both ways.
    axes.set_aspect(1 / max(0.05, math.cos(math.radians(lat_deg))))


def _fill(axes: Axes, shape: BaseGeometry, **style: Any) -> None:
    polygons: Iterable[BaseGeometry] = shape.geoms if isinstance(shape, MultiPolygon) else [shape]
    for polygon in polygons:
        if isinstance(polygon, Polygon) and not polygon.is_empty:
            xs, ys = polygon.exterior.xy
            axes.fill(xs, ys, **style)


def _ring(axes: Axes, ring: list[list[float]], **style: Any) -> None:
    closed = [*ring, ring[0]]
    axes.plot([p[1] for p in closed], [p[0] for p in closed], **style)


def route_map(report: FlightReport) -> bytes | None:
    """Two maps side by side: the flight within its operating area, and the flight itself, closer."""
    area, flight = _points(report, with_area=True), _points(report, with_area=False)
    if not area:
        return None
    figure, (whole, close) = plt.subplots(1, 2, figsize=(14, 7))
    _draw_map(report, whole, _bounds(area), "in its operating area")
    _draw_map(report, close, _bounds(flight), "planned and flown")
    whole.get_legend().remove()
    figure.suptitle(report.order_id)
    figure.tight_layout()
    return png(figure)


def _draw_map(report: FlightReport, axes: Axes, bounds: tuple[float, float, float, float], title: str) -> None:
    west, south, east, north = bounds
    axes.set_facecolor(SEA)
    axes.ticklabel_format(useOffset=False)
    for shore in shores(west, south, east, north):
        _fill(axes, shore.shape, color=LAND if shore.land else LAKE, linewidth=0.4, edgecolor="#8c8672")
    plan = report.plan or {}
    for number, ring in enumerate(plan.get("operating_area", [])):
        _ring(
            axes, ring, color="#2e8b57", linestyle="--", linewidth=1.2, label="operating area" if not number else None
        )
    for number, ring in enumerate(plan.get("no_fly", [])):
        closed = [*ring, ring[0]]
        axes.fill(
            [p[1] for p in closed], [p[0] for p in closed], facecolor="#d62728", alpha=0.25, edgecolor="#d62728",
            hatch="//", label="no-fly zone" if not number else None,
        )  # fmt: skip
    route = plan.get("route", [])
    if route:
        home = plan.get("home") or route[0]
        path = [home, *route]
        axes.plot(
            [p[1] for p in path],
            [p[0] for p in path],
            color=PLANNED,
            linestyle="--",
            marker=".",
            label="planned",
            zorder=3,
        )
    track = report.samples.position
    if track:
        axes.plot([p[2] for p in track], [p[1] for p in track], color=FLOWN, linewidth=1.6, label="flown")
    for place in plan.get("places", []):
        axes.plot(place["lon"], place["lat"], marker="s", color="black", markersize=6)
        axes.annotate(
            place["name"], (place["lon"], place["lat"]), textcoords="offset points", xytext=(6, 6), fontsize=8
        )
    rally = plan.get("rally", [])
    if rally:
        axes.plot([p[1] for p in rally], [p[0] for p in rally], "^", color="#7b3fa0", label="rally points")
    drop = plan.get("drop")
    if drop:
        _ring(axes, drop["zone"], color="#2ca02c", linewidth=1.2, label="drop zone")
        axes.plot(drop["lon"], drop["lat"], "x", color="#2ca02c", markersize=8, label="drop target")
    release = report.release
    if release is not None:
        axes.plot(release.lon, release.lat, "*", color="#d62728", markersize=12, label=_release_label(report))
    axes.set_xlim(west, east)
    axes.set_ylim(south, north)
    _aspect(axes, (south + north) / 2)
    axes.set_xlabel("longitude (°)")
    axes.set_ylabel("latitude (°)")
    axes.set_title(title)
    axes.locator_params(axis="x", nbins=5)  # longitudes are long numbers: fewer of them, or they overlap
    axes.legend(loc="best", fontsize=8, framealpha=0.9)


def _release_label(report: FlightReport) -> str:
    release = report.release
    assert release is not None
    distance = release.distance_m if release.distance_m is not None else release.journal_distance_m
    return "release" if distance is None else f"release, {distance:.1f} m from the target"


def drop_map(report: FlightReport) -> bytes | None:
    """The drop zone close up: the zone, the target, the track through it and the release point."""
    drop = (report.plan or {}).get("drop")
    if not drop:
        return None
    lat0, lon0 = drop["lat"], drop["lon"]
    metres_per_deg_lat = 111_320.0
    metres_per_deg_lon = metres_per_deg_lat * math.cos(math.radians(lat0))

    def east_north(lat: float, lon: float) -> tuple[float, float]:
        return (lon - lon0) * metres_per_deg_lon, (lat - lat0) * metres_per_deg_lat

    figure, axes = plt.subplots(figsize=(5.5, 5.5))
    zone = [east_north(lat, lon) for lat, lon in drop["zone"]]
    zone.append(zone[0])
    axes.fill([p[0] for p in zone], [p[1] for p in zone], color="#2ca02c", alpha=0.2, label="drop zone")
    axes.plot(0, 0, "x", color="#2ca02c", markersize=10, label="target")
    near = [east_north(lat, lon) for _t, lat, lon, _alt in report.samples.position]
    near = [p for p in near if abs(p[0]) < DROP_VIEW_M * 1.5 and abs(p[1]) < DROP_VIEW_M * 1.5]
    if near:
        axes.plot([p[0] for p in near], [p[1] for p in near], ".", color=FLOWN, markersize=2, label="flown")
    at = None if report.release is None else report.release.track_at_release
    if at is not None:
        e, n = east_north(*at)
        axes.plot(e, n, "o", color=FLOWN, markersize=7, fillstyle="none", label="track at the release")
    if report.release is not None:
        e, n = east_north(report.release.lat, report.release.lon)
        axes.plot(e, n, "*", color="#d62728", markersize=14, label=_release_label(report))
    axes.set_xlim(-DROP_VIEW_M, DROP_VIEW_M)
    axes.set_ylim(-DROP_VIEW_M, DROP_VIEW_M)
    axes.set_aspect("equal")
    axes.grid(True, linewidth=0.3)
    axes.set_xlabel("east of the target (m)")
    axes.set_ylabel("north of the target (m)")
    axes.set_title("at the drop")
    axes.legend(loc="upper right", fontsize=7)
    return png(figure)


def time_plots(report: FlightReport) -> bytes | None:
    samples = report.samples
    if samples.empty:
        return None
    figure, axes = plt.subplots(6, 1, figsize=(10, 14), sharex=True)
    alt, speed, power, energy, wind, mode = axes
    t = report.t
    if samples.position:
        alt.plot([t(p[0]) for p in samples.position], [p[3] for p in samples.position], color=FLOWN)
    alt.set_ylabel("altitude above home (m)")
    if samples.ground_speed:
        speed.plot([t(p[0]) for p in samples.ground_speed], [p[1] for p in samples.ground_speed], color=FLOWN)
    speed.set_ylabel("ground speed (m/s)")
    if samples.battery:
        power.plot([t(p[0]) for p in samples.battery], [p[1] for p in samples.battery], color="#1f77b4", label="V")
        amps = power.twinx()
        amps.plot([t(p[0]) for p in samples.battery], [p[2] for p in samples.battery], color="#d62728", label="A")
        amps.set_ylabel("current (A)", color="#d62728")
    power.set_ylabel("battery (V)", color="#1f77b4")
    _energy_plot(report, energy)
    if samples.wind:
        wind.plot([t(p[0]) for p in samples.wind], [p[1] for p in samples.wind], color="#444", label="estimated aloft")
    if report.ground_wind_m_s is not None:
        wind.axhline(report.ground_wind_m_s, color="#2ca02c", linestyle=":", label="measured at the depot")
    wind.set_ylabel("wind (m/s)")
    wind.legend(loc="upper right", fontsize=7)
    _mode_plot(report, mode)
    mode.set_xlabel("time since the order started (s, autopilot clock)")
    for ax in axes:
        _phase_marks(report, ax)
        ax.grid(True, linewidth=0.3)
    figure.suptitle(f"{report.order_id}: {report.outcome.verdict}")
    figure.tight_layout()
    return png(figure)


def _energy_plot(report: FlightReport, axes: Axes) -> None:
    samples, budget = report.samples, report.energy
    if samples.consumed:
        axes.plot(
            [report.t(p[0]) for p in samples.consumed], [p[1] for p in samples.consumed], label="used (autopilot)"
        )
    if budget.needed_wh is not None:
        axes.axhline(budget.needed_wh, color="#2e8b57", linestyle="--", label="planned need")
    if budget.available_wh is not None and budget.reserve_wh is not None:
        axes.axhline(budget.available_wh - budget.reserve_wh, color="#d62728", linestyle=":", label="usable to reserve")
    axes.set_ylabel("energy (Wh)")
    axes.legend(loc="upper left", fontsize=7)


def _mode_plot(report: FlightReport, axes: Axes) -> None:
    modes = report.samples.modes
    names = sorted({name for _t, name in modes})
    if modes:
        times = [report.t(t) for t, _name in modes]
        levels = [names.index(name) for _t, name in modes]
        end = report.t(report.samples.position[-1][0]) if report.samples.position else times[-1]
        axes.step([*times, end], [*levels, levels[-1]], where="post", color="#444")
    axes.set_yticks(range(len(names)), names)
    axes.set_ylabel("mode")


def _phase_marks(report: FlightReport, axes: Axes) -> None:
    for t, state in report.phases:
        axes.axvline(t, color="#999", linewidth=0.6, linestyle="-")
        if state in ("ENROUTE", "RELEASED", "RETURNING", "ABORTING", "LANDED", "ARRIVED"):
            axes.annotate(state, (t, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=6, va="top")
