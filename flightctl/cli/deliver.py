"""``flightctl deliver``: one delivery, from order file to the vehicle back on the ground."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from flightctl.cli.common import (
    DEFAULT_TIMEOUT_S,
    ConnectOption,
    DepotWindOption,
    JsonOption,
    RemoteIdOption,
    SigningOption,
    TimeoutOption,
    connect_vehicle,
    console,
    depot_wind_or_exit,
    fail,
    load_or_exit,
    run,
)
from flightctl.console import format_number

if TYPE_CHECKING:  # imported where used: `flightctl --help` must not pay for shapely, pyproj or pymavlink
    from flightctl.delivery.decide_leg import LegDelivery
    from flightctl.delivery.outcome import DeliveryOutcome
    from flightctl.delivery.planner import DeliveryPlan
    from flightctl.delivery.progress import DeliveryProgress
    from flightctl.delivery.wind import GroundWind
    from flightctl.vehicle.vehicle import Vehicle

OrderArgument = Annotated[str, typer.Argument(help="Order file, or a name in configs/orders/.")]
SiteOption = Annotated[str, typer.Option("--site", help="Site file, or a name in configs/sites/.")]
ProfileOption = Annotated[str, typer.Option("--profile", help="Vehicle profile file, or a name in configs/profiles/.")]
JournalOption = Annotated[Path, typer.Option("--journal", help="SQLite journal (resumes an interrupted delivery).")]
LinkTimeoutOption = Annotated[
    float,
    typer.Option(
        "--link-lost-timeout",
        min=1,
        max=86_400,
        help="Seconds to wait for a lost autopilot link to come back before ending with the outcome unknown "
        "(exit 2; run again with the same --journal to pick the delivery up).",
    ),
]
DEFAULT_LINK_LOST_TIMEOUT_S = 300.0
NOT_DELIVERED_EXIT = 2


def load_plan_or_exit(order: str, site: str, profile: str) -> DeliveryPlan:
    """Read, check and plan before touching the vehicle: a bad order or an impossible route sends nothing."""
    from flightctl.config import named_config, read_yaml_model
    from flightctl.delivery.intake import intake_problems
    from flightctl.delivery.order import DeliveryOrder, Site, VehicleProfile
    from flightctl.delivery.planner import plan_delivery
    from flightctl.delivery.routing import PlanningError
    from flightctl.errors import ConfigError, FlightctlError

    order_path = named_config("orders", order)
    try:
        the_order = read_yaml_model(order_path, DeliveryOrder)
        the_site = read_yaml_model(named_config("sites", site), Site)
        the_profile = read_yaml_model(named_config("profiles", profile), VehicleProfile)
        problems = intake_problems(the_order, the_site, the_profile, datetime.now(UTC))
        if problems:
            raise ConfigError(f"{order_path}: " + "; ".join(problems))
        try:
            return plan_delivery(the_order, the_site, the_profile)
        except PlanningError as exc:
            raise ConfigError(f"{order_path}: {exc}") from None
    except FlightctlError as exc:
        raise fail(exc) from None


def _progress_line(progress: DeliveryProgress) -> Text:
    return Text.assemble(
        (f"{progress.state.value:<11}", "bold cyan"),
        f"  to go {format_number(progress.distance_to_go_m, ' m'):>8}",
        f"  alt {format_number(progress.relative_alt_m, ' m', 1):>7}",
        f"  battery {format_number(progress.battery_v, ' V', 2)} {format_number(progress.battery_pct, '%')}",
        f"  item {format_number(progress.mission_seq, '')}",
    )


def summary_table(outcome: DeliveryOutcome) -> Table:
    record = outcome.as_json()
    table = Table(title=f"delivery {outcome.order_id}: {record['outcome'].upper()}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("final state", outcome.state.value)
    if outcome.abort_reason:
        table.add_row("abort reason", outcome.abort_reason)
    for line in outcome.nogo:
        table.add_row("NO-GO", line)
    if outcome.release_point is not None:
        table.add_row(
            "release point",
            f"{outcome.release_point.lat_deg:.7f}, {outcome.release_point.lon_deg:.7f} "
            f"({outcome.release_error_m:.1f} m from the target)",
        )
    for phase, seconds in record["phase_times_s"].items():
        table.add_row(f"time {phase}", f"{seconds:.0f} s")
    if outcome.energy_used_wh is not None:
        table.add_row("energy used", f"{outcome.energy_used_wh:.1f} Wh")
    return table


async def run_delivery(
    vehicle: Vehicle,
    plan: DeliveryPlan | LegDelivery,
    journal_path: Path,
    *,
    as_json: bool,
    ground_wind: GroundWind | None,
    link_lost_timeout_s: float = DEFAULT_LINK_LOST_TIMEOUT_S,
    report: bool = False,
) -> DeliveryOutcome:
    """Fly ``plan``, journaled in ``journal_path`` with a tlog beside it, and print how it ended; with
    ``report``, also draw the flight report there (``flightctl report``) and print its path."""
    from flightctl.delivery.decide import Limits
    from flightctl.delivery.journal import Journal
    from flightctl.delivery.sequencer import DeliverySequencer
    from flightctl.link.tlog import recording, tlog_path

    limits = Limits(link_lost_give_up_s=link_lost_timeout_s)
    tlog = tlog_path(journal_path.parent, plan.order_id)  # what the link heard, beside the journal
    async with await Journal.open(journal_path) as journal, recording(vehicle.connection, tlog):
        if as_json:
            outcome = await DeliverySequencer(vehicle, plan, journal, limits=limits, ground_wind=ground_wind).run()
        else:
            with Live(Text("starting"), console=console, refresh_per_second=4, transient=False) as live:
                outcome = await DeliverySequencer(
                    vehicle,
                    plan,
                    journal,
                    on_progress=lambda p: live.update(_progress_line(p)),
                    limits=limits,
                    ground_wind=ground_wind,
                ).run()
    drawn = await _report(journal_path, plan.order_id) if report else {}
    if as_json:
        sys.stdout.write(json.dumps(outcome.as_json() | {"tlog": str(tlog)} | drawn) + "\n")
    else:
        console.print(summary_table(outcome))
        console.print(Text(f"telemetry log: {tlog}"))
        for what, where in drawn.items():
            console.print(Text(f"{what.replace('_', ' ')}: {where}"))
    return outcome


async def _report(journal_path: Path, order_id: str) -> dict[str, str]:
    """The flight report's path, drawn off the event loop; a report that cannot be drawn costs the report (said
    in its place), never the delivery's outcome."""
    import asyncio
    import logging

    from flightctl.report.build import load, write

    try:
        files = await asyncio.to_thread(write, await load(journal_path, order_id, None), journal_path.parent)
    except Exception as exc:  # the flight is over and journaled: whatever the drawing sets off is the report's
        logging.getLogger(__name__).exception("the flight report could not be drawn")
        return {"report_error": f"{type(exc).__name__}: {exc} (draw it again with: flightctl report {journal_path})"}
    return {"report": str(files.html)}


def deliver(
    order: OrderArgument,
    connect: ConnectOption,
    site: SiteOption = "kirkwall",
    profile: ProfileOption = "sitl-quad",
    journal: JournalOption = Path("flightctl-journal.sqlite"),
    as_json: JsonOption = False,
    signing_key: SigningOption = None,
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    link_lost_timeout_s: LinkTimeoutOption = DEFAULT_LINK_LOST_TIMEOUT_S,
    depot_wind: DepotWindOption = None,
    remote_id: RemoteIdOption = None,
) -> None:
    """Fly one delivery: go/no-go, upload and verify, fly, drop, return. Exit 0 delivered, 2 not delivered
    (or outcome unknown after the link was lost)."""
    from flightctl.daemon.settings import load_remote_id

    plan = load_plan_or_exit(order, site, profile)
    wind = depot_wind_or_exit(depot_wind)
    operator = None if remote_id is None else load_or_exit(load_remote_id, remote_id)

    async def go() -> DeliveryOutcome:
        async with (
            connect_vehicle(connect, signing_key, timeout_s=timeout_s) as vehicle,
            vehicle.remote_id.broadcasting(operator),
        ):
            return await run_delivery(
                vehicle,
                plan,
                journal,
                as_json=as_json,
                ground_wind=wind,
                link_lost_timeout_s=link_lost_timeout_s,
            )

    if not run(go).delivered:
        raise typer.Exit(NOT_DELIVERED_EXIT)
