"""What `flightctl sim fleet` shows: the live view (each aircraft's state and the fleet's counts, redrawn about
once a second) and the fleet report's tables. Pure: a progress or a report in, rich renderables out."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from sitl.fleet import FaultRecord, FleetProgress, FleetReport


def live_view(progress: FleetProgress) -> Group:
    tally = progress.tally
    aircraft = Table(title=None, expand=False)
    for column in ("aircraft", "state", "order", "events", "broker", "speedup"):
        aircraft.add_column(column, justify="right" if column in ("events", "speedup") else "left")
    for view in tally.aircraft.values():
        speedup = view.speedup()
        aircraft.add_row(
            view.drone,
            view.state or ("waiting for telemetry" if view.gps_first is None else "ready"),
            view.holding or "",
            str(view.events),
            view.broker or "",
            "" if speedup is None else f"{speedup:.1f}x",
        )
    counts = tally.counts()
    minutes = f"{progress.sim_elapsed_s / 60:.1f} of {progress.sim_s / 60:.0f} simulated min"
    line = Text(
        f"{progress.phase}: {minutes}; orders {counts['dispatched']} dispatched, {counts['flying']} flying, "
        f"{counts['delivered']} delivered, {counts['aborted']} aborted, {counts['refused']} refused, "
        f"{progress.queued} waiting for an aircraft"
    )
    parts: list[Text | Table] = [line, aircraft]
    if progress.ops_url:
        parts.append(Text(f"ops page: {progress.ops_url}", style="dim"))
    return Group(*parts)


def report_tables(report: FleetReport) -> Group:
    counts = report.counts
    summary = Text(
        f"{report.sim_s / 60:.0f} simulated min in {report.wall_s:.0f} s; speedup asked {report.speedup_asked:g}, "
        f"achieved {report.speedup_achieved if report.speedup_achieved is not None else 'unknown'}\n"
        f"orders: {counts['dispatched']} dispatched, {counts['delivered']} delivered, {counts['aborted']} aborted, "
        f"{counts['refused']} refused, {counts['unsent']} unsent, {counts['sent'] + counts['flying']} unfinished; "
        f"{report.unserved} unserved (no aircraft free, or able, in time)\n"
        + f"{latency_line(report)}\n"
        + ("holds: every journaled event in the registry once, no aircraft with two orders, every order ended"
           if report.holds() else "DOES NOT HOLD: see the rows below")
    )  # fmt: skip
    aircraft = Table()
    for column in ("aircraft", "profile", "orders", "journaled", "in registry", "missing", "two orders", "speedup"):
        aircraft.add_column(column, justify="left" if column in ("aircraft", "profile") else "right")
    for a in report.aircraft:
        aircraft.add_row(
            a.drone, a.profile, str(a.orders), str(a.journaled), str(a.in_registry),
            str(len(a.missing) + len(a.unknown)), str(len(a.overlaps)),
            "" if a.speedup is None else f"{a.speedup:.1f}x",
        )  # fmt: skip
    costs = Table()
    for column in ("process", "kind", "CPU (one core)", "memory"):
        costs.add_column(column, justify="left" if column in ("process", "kind") else "right")
    for cost in report.costs:
        costs.add_row(cost.name, cost.kind, f"{100 * cost.cpu_share:.1f} %", f"{cost.rss_mb:.0f} MB")
    struck = Table()
    for column in ("simulated min", "fault", "aircraft", "its order", "that order ended", "note"):
        struck.add_column(column)
    for fault in report.faults:
        struck.add_row(
            f"{fault.at_min:g}", fault.kind, fault.aircraft or (f"broker {fault.broker}" if fault.broker else "fleet"),
            fault.held_order or "", fault.outcome or "", fault_note(fault),
        )  # fmt: skip
    parts: list[Text | Table] = [summary, aircraft, costs, *([struck] if report.faults else [])]
    return Group(*parts, Text(f"report: {report.folder}/fleet-report.json, plots in {report.folder}/plots"))


def latency_line(report: FleetReport) -> str:
    shown = report.latency
    if shown is None or shown.count == 0:
        return "event latency to the tracking page: no status reached a page"
    missed = f"; {shown.never_shown} statuses never shown" if shown.never_shown else ""
    return (
        f"event latency, broker to tracking page: p50 {shown.p50_s:.2f} s, p99 {shown.p99_s:.2f} s, "
        f"worst {shown.max_s:.2f} s over {shown.count} statuses{missed}"
    )


def fault_note(fault: FaultRecord) -> str:
    parts = [fault.note] if fault.note else []
    if fault.took_s is not None:
        parts.append(f"every aircraft on the other broker after {fault.took_s:.1f} s")
    if fault.pages_updated is not None:
        parts.append(f"{fault.pages_updated} page updates meanwhile")
    return "; ".join(parts)


def save_view_svg(view: RenderableType, path: Path, *, title: str, width: int = 110) -> str:
    """``view`` drawn as an SVG picture at ``path`` (rich's own export); the path."""
    recorder = Console(record=True, width=width, file=io.StringIO())
    recorder.print(view)
    path.write_text(recorder.export_svg(title=title))
    return str(path)
