"""``flightctl mission ...``: show, upload, download and clear mission files."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from flightctl.cli.common import (
    DEFAULT_TIMEOUT_S,
    ConnectOption,
    JsonOption,
    SigningOption,
    TimeoutOption,
    connect_vehicle,
    console,
    errors,
    fail,
    load_or_exit,
    report,
    run,
)
from flightctl.errors import FlightctlError

if TYPE_CHECKING:  # imported where used: `flightctl --help` must not pay for pymavlink, pyproj or shapely
    from flightctl.missions.model import MissionPlan, MissionType
    from flightctl.vehicle.mission_transfer import Progress as ProgressCallback

mission_app = typer.Typer(no_args_is_help=True, help="Missions, geofences and rally points.")


class TypeChoice(enum.StrEnum):
    mission = "mission"
    fence = "fence"
    rally = "rally"
    all = "all"


def selected_types(choice: TypeChoice | None, plan: MissionPlan | None = None) -> list[MissionType]:
    from flightctl.missions.model import MissionType

    if choice is TypeChoice.all:
        return list(MissionType)
    if choice is not None:
        return [MissionType[choice.name.upper()]]
    if plan is None:
        return list(MissionType)
    # By default a file's empty lists leave the vehicle's alone; --type all replaces (clears) them too.
    return [MissionType.MISSION, *(t for t in (MissionType.FENCE, MissionType.RALLY) if plan.items(t))]


class TransferBars:
    """One progress bar per stage and mission type."""

    def __init__(self, out: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=out
        )
        self._tasks: dict[tuple[str, MissionType], TaskID] = {}

    def stage(self, name: str) -> ProgressCallback:
        def update(mission_type: MissionType, done: int, total: int) -> None:
            key = (name, mission_type)
            if key not in self._tasks:
                self._tasks[key] = self.progress.add_task(f"{mission_type.label} {name}", total=total)
            self.progress.update(self._tasks[key], completed=done, total=total)

        return update


def plan_table(plan: MissionPlan, title: str) -> Table:
    """Every mission item, with the length of each leg and the distance flown so far."""
    from flightctl.geo import distance_m

    table = Table(title=Text(title))
    for column in ("#", "command", "frame", "params", "lat", "lon", "alt m", "leg m", "total m"):
        table.add_column(column, justify="right" if column in ("#", "alt m", "leg m", "total m") else "left")
    previous = plan.home
    total = 0.0
    for seq, item in enumerate(plan.mission):
        location = item.location()
        leg = ""
        if seq > 0 and location is not None and previous is not None:
            step = distance_m(previous, location)
            total += step
            leg = f"{step:.0f}"
            previous = location
        positioned = item.has_location or seq == 0
        table.add_row(
            str(seq),
            "HOME" if seq == 0 else item.name,
            str(item.frame),
            ", ".join(f"{value:g}" for value in item.params) if any(item.params) else "",
            f"{item.x / 1e7:.7f}" if positioned else "",
            f"{item.y / 1e7:.7f}" if positioned else "",
            f"{item.z:g}" if positioned else "",
            leg,
            f"{total:.0f}" if leg else "",
        )
    return table


def fence_summary(plan: MissionPlan) -> str:
    from flightctl.missions.geofence import fence_shapes

    shapes = fence_shapes(plan.fence)
    parts = [
        f"{'inclusion' if p.inclusion else 'exclusion'} polygon, {len(p.vertices_e7)} vertices" for p in shapes.polygons
    ]
    parts += [f"{'inclusion' if c.inclusion else 'exclusion'} circle r={c.radius_m:g} m" for c in shapes.circles]
    if shapes.return_point is not None:
        parts.append("breach return point")
    return "; ".join(parts) or "none"


@mission_app.command("show")
def show(
    file: Annotated[Path, typer.Argument(help="Mission file (.waypoints, .txt, .plan, .yaml).")],
    as_json: JsonOption = False,
) -> None:
    """Show a mission file as a table with leg lengths, plus its fence and rally points."""
    from flightctl.missions.formats import load_plan

    plan = load_or_exit(load_plan, file)
    if as_json:
        record = {
            "file": str(file),
            "mission_items": len(plan.mission),
            "fence_items": len(plan.fence),
            "rally_points": len(plan.rally),
            "fence": fence_summary(plan),
            "content_hash": plan.content_hash(),
        }
        report(True, record, "")
        return
    console.print(plan_table(plan, f"{file.name}: {len(plan.mission)} items (0 = home)"))
    console.print(f"fence: {fence_summary(plan)}", markup=False)
    console.print(f"rally points: {len(plan.rally)}", markup=False)
    console.print(f"content hash: {plan.content_hash()}", markup=False)


@mission_app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(help="Mission file to upload.")],
    connect: ConnectOption,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check what the vehicle holds.")] = True,
    kind: Annotated[TypeChoice | None, typer.Option("--type", help="Which lists (default: those in the file).")] = None,
    mavftp: Annotated[
        bool,
        typer.Option(
            "--mavftp/--no-mavftp",
            help="Write ArduPilot's @MISSION files over MAVFTP when the vehicle offers it (six items per round "
            "trip); --no-mavftp uses the mission protocol alone.",
        ),
    ] = True,
    signing_key: SigningOption = None,
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Upload a plan, then check that the vehicle holds it as ArduPilot can hold it: by the checksum ArduPilot
    works out of its mission file where it offers one, else by reading every item back."""
    from flightctl.missions.formats import load_plan

    plan = load_or_exit(load_plan, file)  # a bad file stops here: nothing is sent
    types = selected_types(kind, plan)

    async def go() -> None:
        async with connect_vehicle(connect, signing_key, timeout_s=timeout_s, telemetry=False) as vehicle:
            vehicle.mission.policy = dataclasses.replace(vehicle.mission.policy, use_ftp=mavftp)
            bars = TransferBars(errors if as_json else console)
            with bars.progress:
                uploaded = await vehicle.mission.upload_plan(
                    plan,
                    firmware=vehicle.firmware,
                    verify=verify,
                    types=types,
                    progress=bars.stage("upload"),
                    verify_progress=bars.stage("verify"),
                )
        counts = ", ".join(f"{t.label} {n}" for t, n in uploaded.items.items())
        verdict = "verified on the vehicle" if verify else "NOT verified (--no-verify)"
        record = {
            "uploaded": {t.label: n for t, n in uploaded.items.items()},
            "verified": verify,
            "stored_hash": uploaded.stored_hash,
        }
        report(as_json, record, f"uploaded {counts}: {verdict}. Stored hash {uploaded.stored_hash[:16]}")

    run(go)


@mission_app.command("download")
def download(
    connect: ConnectOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write; the format follows its extension.")],
    kind: Annotated[TypeChoice, typer.Option("--type", help="Which lists to read.")] = TypeChoice.all,
    signing_key: SigningOption = None,
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Read the vehicle's lists into a file (.waypoints holds the mission only)."""
    from flightctl.missions.formats import MissionFileError, check_destination, save_plan

    types = selected_types(kind)
    try:
        check_destination(out, types)  # before connecting: a wrong extension or folder costs nothing
    except FlightctlError as exc:
        raise fail(exc) from None

    async def go() -> None:
        async with connect_vehicle(connect, signing_key, timeout_s=timeout_s, telemetry=False) as vehicle:
            bars = TransferBars(errors if as_json else console)
            with bars.progress:
                plan = await vehicle.mission.download_plan(types, progress=bars.stage("download"))
        plan.name = out.stem
        try:
            await asyncio.to_thread(save_plan, plan, out)
        except MissionFileError as exc:
            # The download is not lost with the destination: keep it where a file can always be written.
            kept = Path(tempfile.gettempdir()) / f"flightctl-download-{time.strftime('%Y%m%d-%H%M%S')}.yaml"
            await asyncio.to_thread(save_plan, plan, kept)
            raise MissionFileError(out, "", f"{exc.reason}; the download was kept in {kept}") from None
        counts = {"mission": len(plan.mission), "fence": len(plan.fence), "rally": len(plan.rally)}
        words = ", ".join(f"{label} {n}" for label, n in counts.items())
        report(as_json, {"file": str(out), **counts}, f"wrote {out}: {words}")

    run(go)


@mission_app.command("clear")
def clear(
    connect: ConnectOption,
    kind: Annotated[TypeChoice, typer.Option("--type", help="Which lists to clear.")] = TypeChoice.mission,
    signing_key: SigningOption = None,
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    as_json: JsonOption = False,
) -> None:
    """Clear the vehicle's mission (or its fence, rally points, or all three)."""

    async def go() -> None:
        cleared = []
        async with connect_vehicle(connect, signing_key, timeout_s=timeout_s, telemetry=False) as vehicle:
            for mission_type in selected_types(kind):
                await vehicle.mission.clear(mission_type)
                cleared.append(mission_type.label)
        report(as_json, {"cleared": cleared}, f"cleared {', '.join(cleared)}")

    run(go)
