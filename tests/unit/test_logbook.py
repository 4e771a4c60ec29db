"""The operator's logbook as data, and as the registry keeps it on SQLite: a flight's record from its journal,
the hash chain and what checking it finds after an edit, a deletion or a swap, the totals, the database refusing
to change or drop a record, the crew's defects and repairs, and `flightctl logbook`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flightctl.cli import app
from flightctl.delivery.events import CheckStage, DeliveryState, EventKind, Observation
from flightctl.delivery.flight_record import flight_record
from flightctl.delivery.journal import JournalEvent
from flightctl.geo import AltFrame, Location
from flightctl.ground.logbook import (
    GENESIS,
    LogbookGround,
    MaintenanceEntry,
    NotOpen,
    check_repair,
    next_row,
    open_defects,
    totals,
    verify,
)
from flightctl.ground.registry import Registry
from flightctl.mqtt.messages import FlightRecordData

HOME = Location(58.9582, -2.9609, 20.0, AltFrame.ABSOLUTE)
DROP = Location(58.9536, -2.9364, 20.0, AltFrame.ABSOLUTE)
GROUND = LogbookGround(operator_id="GBR-OP-4711", remote_pilot="A. Flett", operation="BVLOS",
                       registrations={"drone-a": "UAS-KWL-0007"})  # fmt: skip


def journal(*steps: tuple[str, EventKind, str, dict[str, Any]]) -> list[JournalEvent]:
    state = DeliveryState.PREFLIGHT
    events = []
    for n, (at, kind, name, detail) in enumerate(steps):
        if kind is EventKind.STATE:
            state = DeliveryState(name)
        events.append(JournalEvent(n + 1, "KWL-9", f"2026-12-01T{at}Z", None, kind, state, name, detail))
    return events


S, C, OBS = EventKind.STATE, EventKind.CHECK, EventKind.OBSERVATION
PREFLIGHT = [
    ("10:00:00", S, "PREFLIGHT", {}),
    ("10:00:01", C, "gps", {"ok": True, "stage": CheckStage.PREFLIGHT.value, "line": "GO gps"}),
    ("10:00:01", C, "battery", {"ok": True, "stage": CheckStage.PREFLIGHT.value, "line": "GO battery"}),
    ("10:00:05", S, "UPLOADING", {}),
    ("10:00:09", S, "ARMING", {}),
    ("10:00:10", OBS, Observation.ENERGY_AT_START.value, {"consumed_wh": 1.5}),
]
ABORTED_FLIGHT = journal(
    *PREFLIGHT,
    ("10:00:12", S, "ENROUTE", {"outbound_time_s": 120}),
    ("10:03:00", OBS, Observation.LINK_LOST.value, {"plan": "..."}),
    ("10:04:00", S, "ABORTING", {"reason": "battery 13.9 V below the abort voltage", "with_parcel": True}),
    ("10:12:42", S, "LANDED", {"released": False, "consumed_wh": 61.5}),
)


def test_a_flight_record_holds_what_the_aircraft_knows_of_the_amc1_fields() -> None:
    record = flight_record(ABORTED_FLIGHT, took_off_at=HOME, landed_at=HOME)
    assert record is not None
    assert record == {
        "takeoff_utc": "2026-12-01T10:00:12Z",
        "landing_utc": "2026-12-01T10:12:42Z",
        "duration_s": 750.0,
        "takeoff_lat_deg": HOME.lat_deg,
        "takeoff_lon_deg": HOME.lon_deg,
        "landing_lat_deg": HOME.lat_deg,
        "landing_lon_deg": HOME.lon_deg,
        "outcome": "LANDED",
        "delivered": False,
        "preflight": "GO: gps, battery",
        "occurrences": ["autopilot link lost", "ABORTING: battery 13.9 V below the abort voltage"],
        "energy_used_wh": 60.0,
    }
    FlightRecordData.model_validate(record)  # what the contract carries


def test_no_record_for_an_order_that_never_took_off_or_has_not_ended() -> None:
    nogo = journal(*PREFLIGHT[:3], ("10:00:02", S, "FAILED", {"reason": "NO-GO"}))
    assert flight_record(nogo, took_off_at=HOME, landed_at=HOME) is None
    flying = journal(*PREFLIGHT, ("10:00:12", S, "ENROUTE", {}))
    assert flight_record(flying, took_off_at=HOME, landed_at=DROP) is None


def chain(count: int, drone: str = "drone-a") -> list[Any]:
    rows, last = [], None
    for n in range(count):
        record = {"takeoff_utc": f"2026-12-0{n + 1}T10:00:00Z", "landing_utc": f"2026-12-0{n + 1}T10:30:00Z",
                  "duration_s": 1800.0, "delivered": n % 2 == 0}  # fmt: skip
        row = next_row(last, drone_id=drone, seq=10 * (n + 1), order_id=f"KWL-{n + 1}",
                       recorded_utc=f"2026-12-0{n + 1}T10:31:00Z", record=record,
                       ground=GROUND.for_drone(drone))  # fmt: skip
        rows.append(row)
        last = (row.n, row.sha256)
    return rows


def test_the_chain_holds_and_an_edit_a_deletion_or_a_swap_is_named() -> None:
    rows = chain(4) + chain(2, "drone-b")
    assert rows[0].prev_sha256 == GENESIS
    assert rows[1].prev_sha256 == rows[0].sha256
    assert verify(rows) == []
    edited = list(rows)
    edited[2] = replace(rows[2], record=rows[2].record.replace('"duration_s":1800.0', '"duration_s":60.0'))
    assert [b.text() for b in verify(edited)] == [
        "drone-a record 3 (order KWL-3): edited: its content no longer matches its hash"
    ]
    deleted = rows[:1] + rows[2:]
    assert [b.text() for b in verify(deleted)] == [
        "drone-a record 3 (order KWL-3): the chain is broken before it (record 2 is missing: deleted or moved)"
    ]
    swapped = list(rows)
    swapped[1], swapped[2] = replace(rows[2], n=2), replace(rows[1], n=3)  # their places exchanged
    assert [(b.drone_id, b.n) for b in verify(swapped)] == [("drone-a", 2)]


def test_totals_are_each_aircrafts_flights_hours_and_cycles() -> None:
    (a, b) = totals(chain(4) + chain(2, "drone-b"))
    assert (a.drone_id, a.flights, a.hours, a.cycles, a.delivered) == ("drone-a", 4, 2.0, 4, 2)
    assert (b.drone_id, b.flights, b.hours, b.cycles) == ("drone-b", 2, 1.0, 2)
    assert a.last_landing_utc == "2026-12-04T10:30:00Z"


async def keep_flights(path: Path, count: int) -> None:
    record = flight_record(ABORTED_FLIGHT, took_off_at=HOME, landed_at=HOME)
    assert record is not None
    async with await Registry.open(str(path)) as registry:
        for n in range(count):
            assert await registry.record(
                "drone-a", 100 + n, f"KWL-{n + 1}", None, (record, GROUND.for_drone("drone-a"))
            )
        assert not await registry.record("drone-a", 100, "KWL-1", None, (record, GROUND.for_drone("drone-a")))


def logbook(*arguments: str) -> Any:
    return CliRunner().invoke(app, ["logbook", *arguments], env={"COLUMNS": "200"})


def test_the_registry_chains_records_refuses_to_change_them_and_verify_names_tampering(tmp_path: Path) -> None:
    """Test the logbook on SQLite: records chain once each (a re-sent event adds none), the database refuses an
    UPDATE or a DELETE of a record younger than three years, and with its triggers dropped, an edit, a deletion
    and a swap made with SQL behind the relay's back are each found by `flightctl logbook verify`, naming the
    record."""
    path = tmp_path / "registry.sqlite"
    asyncio.run(keep_flights(path, 4))  # the CLI below runs its own loop
    assert logbook("verify", "--registry", str(path)).exit_code == 0
    listed = json.loads(logbook("list", "--registry", str(path), "--json").output)
    assert listed == [{"drone_id": "drone-a", "flights": 4, "hours": round(4 * 750 / 3600, 3), "cycles": 4,
                       "delivered": 0, "last_landing_utc": "2026-12-01T10:12:42Z", "open_defects": []}]  # fmt: skip
    exported = list(csv.DictReader(io.StringIO(logbook("export", "--csv", "--registry", str(path)).output)))
    assert [row["order_id"] for row in exported] == ["KWL-1", "KWL-2", "KWL-3", "KWL-4"]
    assert exported[0]["registration"] == "UAS-KWL-0007"
    assert exported[0]["operation"] == "BVLOS"
    assert exported[0]["remote_pilot"] == "A. Flett"
    assert exported[0]["duration_s"] == "750.0"
    assert "customer" not in ",".join(exported[0])

    db = sqlite3.connect(path)
    for statement in ("UPDATE logbook SET record = '{}' WHERE n = 2", "DELETE FROM logbook WHERE n = 2"):
        with pytest.raises(sqlite3.IntegrityError, match="logbook records are never changed, and kept three years"):
            db.execute(statement)
    db.close()
    tamper(path, "UPDATE logbook SET record = replace(record, '750.0', '75.0') WHERE n = 3")
    edited = logbook("verify", "--registry", str(path))
    assert edited.exit_code == 2
    assert "BROKEN drone-a record 3 (order KWL-3): edited" in " ".join(edited.output.split())
    tamper(path, "UPDATE logbook SET record = replace(record, '75.0', '750.0') WHERE n = 3")  # put back
    assert logbook("verify", "--registry", str(path)).exit_code == 0
    tamper(path, "DELETE FROM logbook WHERE n = 2")
    deleted = logbook("verify", "--registry", str(path), "--json")
    assert deleted.exit_code == 2
    (found,) = json.loads(deleted.output)["breaks"]
    assert (found["n"], found["order_id"]) == (3, "KWL-3")
    assert "record 2 is missing" in found["problem"]


def tamper(path: Path, *statements: str) -> None:
    """SQL behind the relay's back, by someone who owns the database: the triggers dropped first (opening the
    registry makes them again)."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER IF EXISTS logbook_unchanged")
    db.execute("DROP TRIGGER IF EXISTS logbook_kept")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def test_a_registry_swapped_behind_the_relays_back_is_named(tmp_path: Path) -> None:
    path = tmp_path / "registry.sqlite"
    asyncio.run(keep_flights(path, 3))
    tamper(path, "UPDATE logbook SET n = -1 WHERE n = 1", "UPDATE logbook SET n = 1 WHERE n = 2",
           "UPDATE logbook SET n = 2 WHERE n = -1")  # fmt: skip
    swapped = logbook("verify", "--registry", str(path), "--json")
    assert swapped.exit_code == 2
    (found,) = json.loads(swapped.output)["breaks"]
    assert found["n"] == 1


def test_export_wants_a_format() -> None:
    result = logbook("export")
    assert result.exit_code == 1
    assert "give --csv or --json" in result.output


def test_the_shipped_relay_config_names_the_operators_part_and_a_wrong_one_is_refused() -> None:
    from pydantic import ValidationError

    from flightctl.config import configs_dir, read_toml
    from flightctl.ground.relay_settings import RelayConfig

    shipped = read_toml(configs_dir() / "relay" / "relay.toml")
    config = RelayConfig.model_validate(shipped)
    assert config.logbook is not None
    assert config.logbook.for_drone("orkney-07")["registration"] == "UAS-ORK-0007"
    assert config.logbook.for_drone("orkney-99")["registration"] is None
    wrong = {**shipped, "logbook": {**shipped["logbook"], "operation": "IFR"}}  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match=r"logbook\.operation"):
        RelayConfig.model_validate(wrong)


def crew_entry(last: Any, n: int, entry: str, text: str, defect_n: int | None = None) -> Any:
    kept = MaintenanceEntry.model_validate(
        {"entry": entry, "text": text, "by": "J. Rendall", "at_utc": f"2026-12-0{n}T12:00:00Z", "defect_n": defect_n}
    )
    return next_row((last.n, last.sha256), drone_id=last.drone_id, seq=0, order_id=None,
                    recorded_utc=kept.at_utc, record=kept.model_dump(exclude_none=True), ground={})  # fmt: skip


def test_defects_and_repairs_are_rows_of_the_chain_and_only_flights_count_as_hours() -> None:
    rows = chain(2)
    rows.append(crew_entry(rows[-1], 3, "defect", "front-left prop chipped"))
    rows.append(crew_entry(rows[-1], 4, "defect", "gripper slow to close"))
    assert open_defects(rows) == [3, 4]
    check_repair(rows, MaintenanceEntry(entry="repair", text="x", by="y", at_utc="2026-12-05T00:00:00Z", defect_n=3))
    with pytest.raises(NotOpen, match="record 2 of drone-a is not an open defect \\(open: 3, 4\\)"):
        check_repair(rows, MaintenanceEntry(entry="repair", text="x", by="y", at_utc="2026-12-05T00:00:00Z",
                                            defect_n=2))  # a flight  # fmt: skip
    rows.append(crew_entry(rows[-1], 5, "repair", "prop replaced, balanced", defect_n=3))
    assert open_defects(rows) == [4]
    with pytest.raises(NotOpen, match="open: 4"):
        check_repair(rows, MaintenanceEntry(entry="repair", text="x", by="y", at_utc="2026-12-06T00:00:00Z",
                                            defect_n=3))  # mended already  # fmt: skip
    assert verify(rows) == []
    (a,) = totals(rows)
    assert (a.flights, a.hours, a.cycles, a.open_defects) == (2, 1.0, 2, [4])
    assert [row.entry for row in rows] == ["flight", "flight", "defect", "defect", "repair"]
    assert rows[2].fields()["entry"] == "defect"
    assert rows[0].fields()["entry"] == "flight"
    edited = list(rows)
    edited[2] = replace(rows[2], record=rows[2].record.replace("chipped", "fine"))
    assert [b.text() for b in verify(edited)] == [
        "drone-a record 3 (order -): edited: its content no longer matches its hash"
    ]


@pytest.mark.parametrize(
    ("text", "by", "says"),
    [
        ("prop cracked\nBROKEN drone-b record 1", "J. Rendall", "--text: one line of printable text"),
        ("ok", "J. Rendall\x1b[31m", "--by: one line of printable text"),
        ("  ", "J. Rendall", "--text: String should have at least 1 character"),
        ("x" * 2001, "J. Rendall", "--text: String should have at most 2000 characters"),
        ("ok", "", "--by: String should have at least 1 character"),
    ],
)
def test_a_mistaken_or_hostile_entry_is_refused_saying_why_and_changes_nothing(
    tmp_path: Path, text: str, by: str, says: str
) -> None:
    path = tmp_path / "registry.sqlite"
    asyncio.run(keep_flights(path, 1))
    refused = logbook("defect", "drone-a", "--text", text, "--by", by, "--registry", str(path))
    assert refused.exit_code == 1
    assert f"defect not entered: {says}" in " ".join(refused.output.split())
    assert "Traceback" not in refused.output
    unchanged = logbook("defect", "drone a/../b", "--text", "ok", "--by", "x", "--registry", str(path))
    assert unchanged.exit_code == 1
    assert "drone id 'drone a/../b' is not one" in " ".join(unchanged.output.split())
    assert [row["n"] for row in json.loads(logbook("show", "drone-a", "--registry", str(path), "--json").output)] == [1]


def test_the_crew_enters_a_defect_and_its_repair_and_the_logbook_keeps_both(tmp_path: Path) -> None:
    """Test `flightctl logbook defect` and `repair` on SQLite: each a row of the aircraft's chain (verify still
    intact), the open defect in `list`, a repair of a record that is not an open defect refused naming the open
    ones, the repair closing it, both in the CSV export, and an edited defect named by verify."""
    path = tmp_path / "registry.sqlite"
    registry = ["--registry", str(path)]
    asyncio.run(keep_flights(path, 2))
    entered = logbook("defect", "drone-a", "--text", "front-left prop chipped", "--by", "J. Rendall", *registry,
                      "--json")  # fmt: skip
    assert entered.exit_code == 0, entered.output
    defect = json.loads(entered.output)
    assert (defect["n"], defect["entry"], defect["text"], defect["by"]) == (3, "defect", "front-left prop chipped",
                                                                            "J. Rendall")  # fmt: skip
    (listed,) = json.loads(logbook("list", *registry, "--json").output)
    assert (listed["flights"], listed["open_defects"]) == (2, [3])
    assert "3" in logbook("list", *registry).output.splitlines()[-2]  # the table's open defects column

    wrong = logbook("repair", "drone-a", "--defect", "2", "--text", "prop replaced", "--by", "J. Rendall", *registry)
    assert wrong.exit_code == 1
    assert "repair not entered: record 2 of drone-a is not an open defect (open: 3)" in " ".join(wrong.output.split())
    mended = logbook("repair", "drone-a", "--defect", "3", "--text", "prop replaced", "--by", "J. Rendall", *registry)
    assert mended.exit_code == 0, mended.output
    assert "drone-a record 4: repair entered" in mended.output
    (listed,) = json.loads(logbook("list", *registry, "--json").output)
    assert listed["open_defects"] == []
    again = logbook("repair", "drone-a", "--defect", "3", "--text", "twice", "--by", "J. Rendall", *registry)
    assert again.exit_code == 1

    assert logbook("verify", *registry).exit_code == 0
    exported = list(csv.DictReader(io.StringIO(logbook("export", "--csv", *registry).output)))
    assert [(row["n"], row["entry"], row["text"], row["defect_n"]) for row in exported] == [
        ("1", "flight", "", ""), ("2", "flight", "", ""), ("3", "defect", "front-left prop chipped", ""),
        ("4", "repair", "prop replaced", "3"),
    ]  # fmt: skip
    tamper(path, "UPDATE logbook SET record = replace(record, 'chipped', 'fine') WHERE n = 3")
    broken = logbook("verify", *registry, "--json")
    assert broken.exit_code == 2
    (found,) = json.loads(broken.output)["breaks"]
    assert (found["n"], found["order_id"]) == (3, None)
