"""The fleet report's pictures, drawn with matplotlib from the report alone (what fleet-report.json holds):

- ``orders.png``: each aircraft's orders as bars from acceptance to end, coloured by how each ended, with every
  fault at its simulated minute;
- ``latency.png``: how long events took from the broker to the customer's page, with p50 and p99 marked;
- ``costs.png``: CPU (share of one core) and memory of each SITL and each daemon.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after the backend is chosen
from matplotlib.patches import Patch

from flightctl.report.figures import png

if TYPE_CHECKING:
    from sitl.fleet import FleetReport

OUTCOME_COLOURS = {"delivered": "#2e8b57", "aborted": "#d2691e", "refused": "#8b8b8b", "flying": "#4682b4"}
UNKNOWN_COLOUR = "#b22222"


def write_plots(report: FleetReport, folder: Path) -> list[Path]:
    """The three pictures into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (("orders.png", orders_figure), ("latency.png", latency_figure), ("costs.png", costs_figure)):
        path = folder / name
        path.write_bytes(draw(report))
        written.append(path)
    return written


def orders_figure(report: FleetReport) -> bytes:
    drones = [a.drone for a in report.aircraft]
    figure, axes = plt.subplots(figsize=(10, 1.2 + 0.5 * len(drones)))
    end_min = report.sim_s / 60
    for entry in report.timeline or []:
        if entry["drone"] not in drones:
            continue
        row = drones.index(entry["drone"])
        start = entry["accepted_min"]
        if start is None:  # refused or never answered: a tick where the answer came
            at = entry["ended_min"]
            if at is not None:
                axes.plot([at], [row], marker="|", markersize=14, color=OUTCOME_COLOURS["refused"])
            continue
        end = entry["ended_min"] if entry["ended_min"] is not None else max(end_min, start)
        colour = OUTCOME_COLOURS.get(entry["outcome"], UNKNOWN_COLOUR)
        axes.barh(row, end - start, left=start, height=0.6, color=colour, edgecolor="black", linewidth=0.5)
        axes.text(start, row, f" {entry['order_id']}", va="center", fontsize=7)
    for fault in report.faults:
        axes.axvline(fault.at_min, color="#555555", linestyle=":", linewidth=1)
        label = fault.kind + (f" {fault.aircraft}" if fault.aircraft else "")
        axes.text(fault.at_min, len(drones) - 0.4, label, rotation=90, fontsize=7, va="bottom", ha="right")
    axes.set_yticks(range(len(drones)), drones)
    axes.set_ylim(-0.6, len(drones) + 1.2)
    axes.set_xlabel("simulated minutes")
    axes.set_title("Orders by aircraft (bars: accepted to ended; dotted: faults)")
    legend = [Patch(facecolor=colour, edgecolor="black", label=outcome) for outcome, colour in OUTCOME_COLOURS.items()]
    axes.legend(handles=legend, loc="upper right", fontsize=7, ncols=len(OUTCOME_COLOURS))
    return png(figure)


def latency_figure(report: FleetReport) -> bytes:
    figure, axes = plt.subplots(figsize=(7, 3.5))
    delays = report.latencies_s or []
    if delays:
        axes.hist(delays, bins=min(40, max(5, len(delays) // 2)), color="#4682b4")
        summary = report.latency
        if summary is not None and summary.p50_s is not None and summary.p99_s is not None:
            axes.axvline(summary.p50_s, color="black", linestyle="--", label=f"p50 {summary.p50_s:.2f} s")
            axes.axvline(summary.p99_s, color=UNKNOWN_COLOUR, linestyle="--", label=f"p99 {summary.p99_s:.2f} s")
            axes.legend()
    else:
        axes.text(0.5, 0.5, "no status reached a page", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("seconds, event at the broker to status on the customer's page")
    axes.set_ylabel("statuses")
    axes.set_title(f"Event latency to the tracking page ({len(delays)} statuses)")
    return png(figure)


def costs_figure(report: FleetReport) -> bytes:
    figure, (cpu, memory) = plt.subplots(1, 2, figsize=(10, 3.5))
    for axes, field, label in ((cpu, "cpu_share", "CPU, % of one core"), (memory, "rss_mb", "memory, MB")):
        scale = 100.0 if field == "cpu_share" else 1.0
        for offset, kind, colour in ((-0.2, "sitl", "#8da0cb"), (0.2, "daemon", "#fc8d62")):
            rows = [c for c in report.costs if c.kind == kind]
            axes.bar([report_index(report, c.name) + offset for c in rows],
                     [scale * float(getattr(c, field)) for c in rows], width=0.4, color=colour, label=kind)  # fmt: skip
        axes.set_xticks(range(len(report.aircraft)), [a.drone for a in report.aircraft], rotation=45, fontsize=7)
        axes.set_ylabel(label)
        axes.legend(fontsize=7)
    figure.suptitle("Cost per SITL and per daemon over the flying time")
    return png(figure)


def report_index(report: FleetReport, drone: str) -> int:
    return next(n for n, a in enumerate(report.aircraft) if a.drone == drone)
