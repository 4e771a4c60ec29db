"""``flightctl logbook``: the operator's flight logbook, as the relays keep it in the registry: check its chain,
list each aircraft's totals, show an aircraft's flights, export them as CSV, and enter the defects the crew finds
and the repairs that close them."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from flightctl.cli.common import JsonOption, console, fail, run
from flightctl.errors import ConfigError

if TYPE_CHECKING:
    from flightctl.ground.logbook import LogbookRow

logbook_app = typer.Typer(no_args_is_help=True, help="The operator's flight logbook (AMC1 UAS.SPEC.050(1)(g)).")

BROKEN_EXIT = 2
RegistryOption = Annotated[
    str,
    typer.Option(
        "--registry",
        help="SQLite file, or postgresql://user@host/db the relays keep (no password in it: "
        "--registry-password-file, PGPASSWORD or ~/.pgpass).",
    ),
]
RegistryPasswordOption = Annotated[
    Path | None, typer.Option("--registry-password-file", help="The PostgreSQL password, in a file.")
]
DroneArgument = Annotated[str | None, typer.Argument(help="One aircraft's drone id; all of them without it.")]


def rows_of(registry: str, password_file: Path | None, drone: str | None = None) -> list[LogbookRow]:
    from flightctl.config import read_secret
    from flightctl.ground.registry import Registry

    async def read() -> list[LogbookRow]:
        password = read_secret(password_file, "--registry-password-file") if password_file else None
        async with await Registry.open(registry, password=password) as the_registry:
            return await the_registry.logbook(drone)

    return run(read)


@logbook_app.command("verify")
def verify(
    registry: RegistryOption = "flightctl-registry.sqlite",
    registry_password_file: RegistryPasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check every aircraft's chain of records from its first: exit 0 intact, 2 naming the first record of each
    chain that was edited, deleted or moved."""
    from flightctl.ground import logbook

    rows = rows_of(registry, registry_password_file)
    breaks = logbook.verify(rows)
    aircraft = len({row.drone_id for row in rows})
    if as_json:
        sys.stdout.write(json.dumps({"records": len(rows), "aircraft": aircraft,
                                     "breaks": [b.__dict__ for b in breaks]}) + "\n")  # fmt: skip
    elif breaks:
        for found in breaks:
            console.print(Text(f"BROKEN {found.text()}", style="bold red"))
    else:
        console.print(Text(f"intact: {len(rows)} records of {aircraft} aircraft, every chain whole", style="green"))
    if breaks:
        raise typer.Exit(BROKEN_EXIT)


@logbook_app.command("list")
def list_totals(
    registry: RegistryOption = "flightctl-registry.sqlite",
    registry_password_file: RegistryPasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each aircraft's flights, hours and cycles, and its last landing."""
    from flightctl.ground import logbook

    totals = logbook.totals(rows_of(registry, registry_password_file))
    if as_json:
        sys.stdout.write(json.dumps([t.__dict__ for t in totals]) + "\n")
        return
    table = Table(title="Logbook: totals per aircraft")
    for column in ("aircraft", "flights", "hours", "cycles", "delivered", "last landing (UTC)", "open defects"):
        table.add_column(column)
    for t in totals:
        table.add_row(t.drone_id, str(t.flights), f"{t.hours:.2f}", str(t.cycles), str(t.delivered),
                      t.last_landing_utc or "", ", ".join(map(str, t.open_defects)) or "none")  # fmt: skip
    console.print(table)


SHOWN = ("n", "entry", "order_id", "takeoff_utc", "landing_utc", "duration_s", "outcome", "operation",
         "remote_pilot", "text", "by", "defect_n")  # fmt: skip


@logbook_app.command("show")
def show(
    drone: Annotated[str, typer.Argument(help="The aircraft's drone id.")],
    registry: RegistryOption = "flightctl-registry.sqlite",
    registry_password_file: RegistryPasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """One aircraft's records, in order, with every field."""
    records = [row.fields() for row in rows_of(registry, registry_password_file, drone)]
    if as_json:
        sys.stdout.write(json.dumps(records) + "\n")
        return
    table = Table(title=f"Logbook of {drone}")
    for column in SHOWN:
        table.add_column(column)
    for record in records:
        table.add_row(*(_text(record.get(column)) for column in SHOWN))
    console.print(table)


# The columns of the export, in the order of AMC1 UAS.SPEC.050(1)(g)'s list, then what else a record holds.
CSV_COLUMNS = (
    "drone_id", "registration", "n", "order_id", "takeoff_utc", "takeoff_lat_deg", "takeoff_lon_deg", "landing_utc",
    "landing_lat_deg", "landing_lon_deg", "landing_airstrip", "duration_s", "operator_id", "remote_pilot",
    "operation", "preflight", "occurrences", "outcome", "delivered", "energy_used_wh", "entry", "text", "by",
    "defect_n", "recorded_utc", "sha256",
)  # fmt: skip


@logbook_app.command("export")
def export(
    drone: DroneArgument = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Comma-separated values, one record a line.")] = False,
    registry: RegistryOption = "flightctl-registry.sqlite",
    registry_password_file: RegistryPasswordOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON, one record a line.")] = False,
) -> None:
    """Every record (one aircraft's, or all) for the operator's files: --csv or --json."""
    if as_csv == as_json:
        raise fail(ConfigError("give --csv or --json: the format to export in"))
    records = [row.fields() for row in rows_of(registry, registry_password_file, drone)]
    if as_json:
        sys.stdout.write("".join(json.dumps(record) + "\n" for record in records))
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        writer.writerow({column: _text(record.get(column)) for column in CSV_COLUMNS})
    sys.stdout.write(out.getvalue())


TextOption = Annotated[str, typer.Option("--text", help="What was found, or what was done: one line.")]
ByOption = Annotated[str, typer.Option("--by", help="Who found it, or did it.")]


@logbook_app.command("defect")
def defect(
    drone: Annotated[str, typer.Argument(help="The aircraft's drone id.")],
    text: TextOption,
    by: ByOption,
    registry: RegistryOption = "flightctl-registry.sqlite",
    registry_password_file: RegistryPasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enter a defect found on an aircraft: a record of its own in the aircraft's chain, open until a repair
    names it."""
    _enter(drone, "defect", text, by, None, registry, registry_password_file, as_json)


@logbook_app.command("repair")
def repair(
    drone: Annotated[str, typer.Argument(help="The aircraft's drone id.")],
    defect_n: Annotated[int, typer.Option("--defect", help="The record number of the open defect it closes.")],
    text: TextOption,
    by: ByOption,
    registry: RegistryOption = "flightctl-registry.sqlite",
    registry_password_file: RegistryPasswordOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enter the repair that closes an aircraft's open defect."""
    _enter(drone, "repair", text, by, defect_n, registry, registry_password_file, as_json)


def _enter(
    drone: str,
    kind: Literal["defect", "repair"],
    text: str,
    by: str,
    defect_n: int | None,
    registry: str,
    password_file: Path | None,
    as_json: bool,
) -> None:
    from pydantic import ValidationError

    from flightctl.config import read_secret
    from flightctl.ground.logbook import MaintenanceEntry
    from flightctl.ground.registry import Registry

    at_utc = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        entry = MaintenanceEntry(entry=kind, text=text, by=by, at_utc=at_utc, defect_n=defect_n)
    except ValidationError as exc:
        raise fail(ConfigError(f"{kind} not entered: {'; '.join(map(_problem, exc.errors()))}")) from None

    async def add() -> LogbookRow:
        password = read_secret(password_file, "--registry-password-file") if password_file else None
        async with await Registry.open(registry, password=password) as the_registry:
            return await the_registry.add_maintenance(drone, entry)

    row = run(add)
    if as_json:
        sys.stdout.write(json.dumps(row.fields()) + "\n")
    else:
        console.print(Text(f"{drone} record {row.n}: {kind} entered", style="green"))


OPTION_OF = {"text": "--text", "by": "--by", "defect_n": "--defect"}


def _problem(error: Any) -> str:
    """A refused entry's problem, named by its option and said in words (not the pattern)."""
    where = OPTION_OF.get(str(error["loc"][0]), "entry") if error["loc"] else "entry"
    if error["type"] == "string_pattern_mismatch":
        return f"{where}: one line of printable text (no control characters or line breaks)"
    return f"{where}: {error['msg']}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return str(value)
