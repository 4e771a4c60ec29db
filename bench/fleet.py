"""How many simulated aircraft this machine flies in real time: `sim fleet` runs of growing size, side by side.

For each N (2, 4, 6, ... up to --max), one fleet of N SITL copters, each with its own `flightctl run` daemon at
1 Hz telemetry, flies the shipped demand (its rate scaled to N, so each aircraft stays as busy) for --minutes of
simulated time at speedup 1.0. Per run: the achieved speedup (the median of the aircraft's autopilot clocks
against the wall clock), each SITL's and each daemon's CPU as a share of one core and its memory, and whether
the fleet held. The largest N that kept an achieved speedup of at least 0.98 with every daemon under 5 % of a
core is the answer; the per-aircraft cost projects 200 and 500 aircraft (cores and memory, ground side apart).

    python bench/fleet.py [--min 2] [--max 12] [--minutes 3]

Needs SITL built (`flightctl sim install`) and mosquitto. Prints a table; no assertion anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from flightctl.ground.demand import load_demand
from sitl.fleet import FleetReport, FleetSpec, SimFleet

REAL_TIME = 0.98  # an achieved speedup at least this is keeping up (the clocks are sampled, not exact)
DAEMON_LIMIT = 0.05  # of one core, at 1 Hz telemetry
console = Console()


async def fly(aircraft: int, minutes: float, folder: Path) -> FleetReport:
    shipped = load_demand()
    per_aircraft_per_hour = 6.0  # about one order every ten minutes for each aircraft
    demand = shipped.model_copy(update={"orders_per_hour": per_aircraft_per_hour * aircraft})
    # The orders still flying at the end get a minute, not the quarter-hour a real day gives them: the cost and
    # the clocks are measured over the flying time, and "held" then says only whether anything was lost.
    spec = FleetSpec(
        folder / f"fleet-{aircraft}", aircraft, minutes * 60, 1.0, demand, first_instance=0, settle_sim_s=60
    )
    return await SimFleet(spec).run()


def mean_of(report: FleetReport, kind: str, what: str) -> float:
    values = [getattr(c, what) for c in report.costs if c.kind == kind]
    return statistics.fmean(values) if values else float("nan")


async def main(min_aircraft: int, max_aircraft: int, minutes: float) -> None:
    rows: list[tuple[int, FleetReport]] = []
    with tempfile.TemporaryDirectory(prefix="flightctl-fleet-bench-") as tmp:
        for aircraft in range(min_aircraft, max_aircraft + 1, 2):
            console.print(f"{aircraft} aircraft for {minutes:g} simulated minutes ...")
            report = await fly(aircraft, minutes, Path(tmp))
            rows.append((aircraft, report))
            if (report.speedup_achieved or 0) < REAL_TIME:
                break  # falling behind real time: larger fleets only fall further
    table = Table(title=f"`sim fleet` at speedup 1.0, {minutes:g} simulated minutes each (1 Hz telemetry)")
    for column in ("aircraft", "achieved", "SITL CPU", "SITL MB", "daemon CPU", "daemon max CPU", "daemon MB",
                   "orders", "ended", "lost"):  # fmt: skip
        table.add_column(column, justify="right")
    best = None
    for aircraft, report in rows:
        daemon_max = max((c.cpu_share for c in report.costs if c.kind == "daemon"), default=float("nan"))
        keeps_up = (report.speedup_achieved or 0) >= REAL_TIME and daemon_max < DAEMON_LIMIT
        best = aircraft if keeps_up else best
        table.add_row(
            str(aircraft), f"{report.speedup_achieved}x",
            f"{100 * mean_of(report, 'sitl', 'cpu_share'):.1f} %", f"{mean_of(report, 'sitl', 'rss_mb'):.0f}",
            f"{100 * mean_of(report, 'daemon', 'cpu_share'):.1f} %", f"{100 * daemon_max:.1f} %",
            f"{mean_of(report, 'daemon', 'rss_mb'):.0f}", str(report.counts["dispatched"]),
            str(report.counts["dispatched"] - report.counts["sent"] - report.counts["flying"]),
            str(sum(len(a.missing) for a in report.aircraft)),
        )  # fmt: skip
    console.print(table)
    if best is None:
        console.print("no fleet size kept real time with every daemon under 5 % of a core")
        return
    report = dict(rows)[best]
    core_each = mean_of(report, "sitl", "cpu_share") + mean_of(report, "daemon", "cpu_share")
    daemon_cores, daemon_mb = mean_of(report, "daemon", "cpu_share"), mean_of(report, "daemon", "rss_mb")
    console.print(f"largest fleet in real time here: {best} aircraft")
    for fleet in (200, 500):
        console.print(
            f"{fleet} aircraft simulated: about {fleet * core_each:.0f} cores and "
            f"{fleet * (mean_of(report, 'sitl', 'rss_mb') + daemon_mb) / 1024:.1f} GB; their daemons alone (one "
            f"per companion computer in the air) {fleet * daemon_cores:.1f} cores"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=int, default=2, help="the smallest fleet tried (then every second size)")
    parser.add_argument("--max", type=int, default=12, help="the largest fleet tried")
    parser.add_argument("--minutes", type=float, default=3.0, help="simulated minutes each fleet flies")
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(arguments.min, arguments.max, arguments.minutes))
