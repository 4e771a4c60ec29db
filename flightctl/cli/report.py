"""``flightctl report``: one flight as a self-contained HTML page (map, plots, timeline) and the same as JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from flightctl.cli.common import JsonOption, console, fail, run
from flightctl.errors import FlightctlError

if TYPE_CHECKING:
    from flightctl.report.build import ReportFiles

JournalArgument = Annotated[Path, typer.Argument(help="The flight's journal (SQLite); read-only, never locked.")]
OrderOption = Annotated[
    str | None, typer.Option("--order", help="The order to report; the journal's latest without it.")
]
TlogOption = Annotated[
    list[Path] | None,
    typer.Option("--tlog", help="Telemetry log(s), oldest first; without it, the order's tlogs beside the journal."),
]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Folder for the report; the journal's folder without it.")
]


def make_report(journal: Path, order_id: str | None, tlogs: list[Path] | None, out: Path | None) -> ReportFiles:
    from flightctl.report.build import load, write

    try:
        report = run(lambda: load(journal, order_id, tlogs))
        return write(report, out or journal.parent)
    except (FlightctlError, OSError) as exc:
        raise fail(exc) from None


def report(
    journal: JournalArgument,
    order: OrderOption = None,
    tlog: TlogOption = None,
    out: OutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Draw one flight from its journal and tlog: where it flew against the plan, the release, the battery and
    energy against the budget, wind, modes, every go/no-go and abort line. Works for aborted, NO-GO and
    interrupted flights too, saying what is missing."""
    started = time.monotonic()
    files = make_report(journal, order, tlog or None, out)
    took_s = time.monotonic() - started
    if as_json:
        sys.stdout.write(json.dumps(files.report.as_json() | {"html": str(files.html)}, default=str) + "\n")
        return
    console.print(Text(f"report: {files.html} ({files.report.outcome.verdict}; drawn in {took_s:.1f} s)"))
    console.print(Text(f"data:   {files.json}"))
    for line in files.report.missing:
        console.print(Text(f"missing: {line}", style="yellow"))
