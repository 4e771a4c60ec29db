"""The operator's logbook, as data: each aircraft's flight records chained by hash, and what checking the chain
finds. Pure: the registry stores the rows (``registry_store``), the relay adds them, ``flightctl logbook`` reads.

UK CAA AMC1 UAS.SPEC.050(1)(g) asks a Specific-category operator to keep a record of every flight for three
years, protected from alteration. Each row carries the SHA-256 of the row before it for the same aircraft, and
its own SHA-256 over everything it holds (its place in the chain included). So an edited row no longer matches
its hash, a deleted one leaves the next row pointing at a hash that is not there, and two rows swapped break the
chain where they stand; ``verify`` names the first row of each aircraft's chain that is not what was written.
The aircraft's part of a row (``record``) is what it sent (``FlightRecordData``); the ground's part (``ground``:
operator, remote pilot, registration, VLOS or BVLOS) comes from the relay's config, never from the aircraft.

AMC1 also asks for the aircraft's defects and repairs. No aircraft knows those: the crew enters them
(``flightctl logbook defect`` and ``repair``) as rows of the same chain, so they are as tamper-evident as the
flights and read in the order they happened. Such a row's ``record`` is a ``MaintenanceEntry`` (its ``entry``
key says which); a flight's never has that key, because the relay keeps only the contract's fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from flightctl.config import StrictModel
from flightctl.errors import ConfigError

GENESIS = "0" * 64  # the "previous hash" of an aircraft's first record
RETENTION_YEARS = 3


def canonical(value: Mapping[str, Any]) -> str:
    """The one JSON text of a mapping that is hashed and stored: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class LogbookRow:
    drone_id: str
    n: int  # its place in the aircraft's chain, from 1
    seq: int  # the drone's event sequence number it came as
    order_id: str | None
    recorded_utc: str
    record: str  # canonical JSON: the aircraft's part
    ground: str  # canonical JSON: the operator's part
    prev_sha256: str
    sha256: str

    def computed_sha256(self) -> str:
        fields = (self.drone_id, str(self.n), str(self.seq), self.order_id or "", self.recorded_utc, self.record,
                  self.ground, self.prev_sha256)  # fmt: skip
        return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.drone_id, self.n, self.seq, self.order_id, self.recorded_utc, self.record, self.ground,
                self.prev_sha256, self.sha256)  # fmt: skip

    def kept(self) -> dict[str, Any]:
        """What the row holds (the aircraft's part, or a maintenance entry), read back."""
        kept: dict[str, Any] = json.loads(self.record)
        return kept

    @property
    def entry(self) -> str:
        """``flight``, ``defect`` or ``repair``."""
        return str(self.kept().get("entry", "flight"))

    def fields(self) -> dict[str, Any]:
        """The row for people and CSV: the aircraft's fields and the ground's, side by side."""
        return {
            "drone_id": self.drone_id,
            "n": self.n,
            "entry": "flight",
            "order_id": self.order_id,
            **self.kept(),
            **json.loads(self.ground),
            "recorded_utc": self.recorded_utc,
            "sha256": self.sha256,
        }


def next_row(
    last: tuple[int, str] | None,
    *,
    drone_id: str,
    seq: int,
    order_id: str | None,
    recorded_utc: str,
    record: Mapping[str, Any],
    ground: Mapping[str, Any],
) -> LogbookRow:
    """The row after ``last`` (its ``n`` and ``sha256``; None for the aircraft's first), hashed."""
    n, prev = (1, GENESIS) if last is None else (last[0] + 1, last[1])
    unhashed = LogbookRow(drone_id, n, seq, order_id, recorded_utc, canonical(record), canonical(ground), prev, "")
    return LogbookRow(**{**unhashed.__dict__, "sha256": unhashed.computed_sha256()})


@dataclass(frozen=True)
class Break:
    """Where an aircraft's chain is not what was written: the first row found wrong, and how."""

    drone_id: str
    n: int
    order_id: str | None
    problem: str

    def text(self) -> str:
        return f"{self.drone_id} record {self.n} (order {self.order_id or '-'}): {self.problem}"


def verify(rows: Iterable[LogbookRow]) -> list[Break]:
    """Every aircraft's chain checked from its first record: one ``Break`` for each aircraft whose chain breaks,
    at the first row that does not hold. ``rows`` in any order."""
    by_drone: dict[str, list[LogbookRow]] = {}
    for row in rows:
        by_drone.setdefault(row.drone_id, []).append(row)
    breaks = []
    for _drone, chain in sorted(by_drone.items()):
        found = _first_break(sorted(chain, key=lambda r: r.n))
        if found is not None:
            breaks.append(found)
    return breaks


def _first_break(chain: Sequence[LogbookRow]) -> Break | None:
    prev, expected_n = GENESIS, 1
    for row in chain:
        if row.computed_sha256() != row.sha256:
            return Break(row.drone_id, row.n, row.order_id, "edited: its content no longer matches its hash")
        if row.n != expected_n or row.prev_sha256 != prev:
            gap = f"record {expected_n} is missing" if row.n != expected_n else "it follows another record"
            return Break(row.drone_id, row.n, row.order_id, f"the chain is broken before it ({gap}: deleted or moved)")
        prev, expected_n = row.sha256, row.n + 1
    return None


@dataclass(frozen=True)
class Totals:
    drone_id: str
    flights: int
    hours: float
    cycles: int  # take-off and landing: one a flight
    delivered: int
    last_landing_utc: str | None
    open_defects: list[int]  # the record numbers of its defects no repair has closed


def totals(rows: Iterable[LogbookRow]) -> list[Totals]:
    """Each aircraft's flights, hours and cycles, from its flight records, and its open defects."""
    by_drone: dict[str, list[LogbookRow]] = {}
    for row in rows:
        by_drone.setdefault(row.drone_id, []).append(row)
    summed = []
    for drone_id, chain in sorted(by_drone.items()):
        flights = [row.kept() for row in chain if row.entry == "flight"]
        summed.append(
            Totals(
                drone_id,
                flights=len(flights),
                hours=round(sum(float(r.get("duration_s") or 0.0) for r in flights) / 3600.0, 3),
                cycles=len(flights),
                delivered=sum(1 for r in flights if r.get("delivered")),
                last_landing_utc=max((str(r.get("landing_utc")) for r in flights), default=None),
                open_defects=open_defects(chain),
            )
        )
    return summed


# ---- defects and repairs: the crew's entries -------------------------------------------------------------------

# Printable text on one line: a defect's words end up in CSV files, terminals and logs, where a control character
# could forge a line or a colour.
ONE_LINE = r"^[^\x00-\x1f\x7f\x85\u2028\u2029]*$"
OneLine = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, pattern=ONE_LINE)]


class MaintenanceEntry(StrictModel):
    """A defect found on an aircraft, or the repair that closes one: what the crew enters, as a logbook row."""

    entry: Literal["defect", "repair"]
    text: Annotated[OneLine, StringConstraints(max_length=2000)] = Field(description="what was found, or done")
    by: Annotated[OneLine, StringConstraints(max_length=80)] = Field(description="who found it, or did it")
    at_utc: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")]
    defect_n: int | None = Field(default=None, ge=1, le=2**62, description="the defect's record a repair closes")

    @model_validator(mode="after")
    def _a_repair_names_its_defect(self) -> MaintenanceEntry:
        if (self.entry == "repair") != (self.defect_n is not None):
            raise ValueError("a repair names the defect it closes (its record number), and only a repair does")
        return self


class NotOpen(ConfigError):
    """A repair of a record that is not an open defect of that aircraft."""


def open_defects(chain: Iterable[LogbookRow]) -> list[int]:
    """The record numbers of one aircraft's defects that no repair has closed, in order."""
    found: list[int] = []
    closed: set[int] = set()
    for row in chain:
        kept = row.kept()
        if row.entry == "defect":
            found.append(row.n)
        elif row.entry == "repair" and isinstance(kept.get("defect_n"), int):
            closed.add(kept["defect_n"])
    return [n for n in found if n not in closed]


def check_repair(chain: Sequence[LogbookRow], entry: MaintenanceEntry) -> None:
    """Raise ``NotOpen`` unless ``entry`` (a repair) closes an open defect in ``chain``, one aircraft's rows."""
    if entry.defect_n is None:
        return
    if entry.defect_n not in open_defects(chain):
        drone = chain[0].drone_id if chain else "this aircraft"
        raise NotOpen(f"repair not entered: record {entry.defect_n} of {drone} is not an open defect (open: "
                      f"{', '.join(map(str, open_defects(chain))) or 'none'})")  # fmt: skip


class LogbookGround(StrictModel):
    """The operator's part of every logbook record, which no aircraft knows: the relay's config ``[logbook]``."""

    operator_id: str = Field(min_length=1, max_length=40, description="the CAA operator registration number")
    remote_pilot: str = Field(min_length=1, max_length=80, description="who is the remote pilot in command")
    operation: Literal["VLOS", "BVLOS"]
    # Each drone id's aircraft registration (or serial number), as the CAA knows it.
    registrations: dict[str, str] = Field(default_factory=dict, max_length=10_000)

    def for_drone(self, drone_id: str) -> dict[str, Any]:
        return {
            "operator_id": self.operator_id,
            "remote_pilot": self.remote_pilot,
            "operation": self.operation,
            "registration": self.registrations.get(drone_id),
        }


# What a record says of the operator when the relay has no [logbook] section: it is kept, and says so.
NO_GROUND_DATA = {"operator_id": None, "remote_pilot": None, "operation": None, "registration": None}
