"""``flightctl sim install``: progress for people, the build log for when it fails."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import cast, get_args

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from flightctl.cli.common import console, errors, fail, report
from flightctl.errors import FlightctlError
from sitl.ardupilot_source import PINNED_COMMIT, resolve_source
from sitl.install import default_prefix, install
from sitl.paths import VehicleKind


def parse_vehicles(text: str) -> list[VehicleKind]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = get_args(VehicleKind)
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise typer.BadParameter(f"{text!r}: choose from {', '.join(known)} (comma-separated)", param_hint="--vehicles")
    return [cast(VehicleKind, name) for name in dict.fromkeys(names)]


def run_install(
    source_text: str | None,
    vehicles_text: str,
    prefix: Path | None,
    jobs: int | None,
    *,
    force: bool,
    system_packages: bool,
    as_json: bool = False,
) -> None:
    vehicles = parse_vehicles(vehicles_text)
    checkout = Path(__file__).resolve().parents[2]
    started = time.monotonic()
    try:
        source = resolve_source(source_text, [checkout, Path.cwd()])
        with Progress(
            TextColumn("{task.description:<13}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors if as_json else console,
            transient=True,
        ) as bar:
            task = bar.add_task("checking", total=None)

            def show(phase: str, done: int, total: int) -> None:
                bar.update(task, description=phase, completed=done, total=total or None)

            result = install(
                source,
                vehicles,
                prefix or default_prefix(),
                jobs=jobs or os.cpu_count() or 2,
                force=force,
                install_packages=system_packages,
                progress=show,
            )
    except FlightctlError as exc:
        raise fail(exc) from None
    if as_json:
        record = {
            "version": result.stamp.version,
            "pinned": PINNED_COMMIT,
            "built": result.built,
            "prefix": str(result.prefix),
            "vehicles": list(result.stamp.vehicles),
            "binaries": [str(binary) for binary in result.binaries()],
            "build_log": None if result.log is None else str(result.log),
        }
        report(True, record, "")
        return
    what = f"ArduPilot {result.stamp.version}"
    if result.stamp.version != PINNED_COMMIT:
        what += f" (flightctl is tested against {PINNED_COMMIT})"
    if result.built:
        console.print(Text(f"built {what} in {time.monotonic() - started:.0f} s: {', '.join(result.stamp.vehicles)}"))
        console.print(Text(f"  build log: {result.log}"))
    else:
        console.print(Text(f"{what} is already built in {result.prefix}: nothing to do"))
    for binary in result.binaries():
        console.print(Text(f"  {binary}"))
