"""Release interlocks and the journal (durability, and what a restart reads from it)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.events import Command, DeliveryState, Observation
from flightctl.delivery.history import History
from flightctl.delivery.interlocks import release_interlocks
from flightctl.delivery.journal import Journal, JournalError
from flightctl.delivery.order import DeliveryOrder, VehicleProfile
from flightctl.geo import AltFrame, offset
from flightctl.vehicle.telemetry import VehicleState

ORDER = read_yaml_model(named_config("orders", "kirkwall-1500m-place"), DeliveryOrder)
PROFILE = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)


def hovering(distance_m: float = 0.5, speed: float = 0.2, alt: float = 20.0) -> VehicleState:
    position = offset(ORDER.drop_location(), bearing_deg=45, distance_m=distance_m).with_alt(40, AltFrame.ABSOLUTE)
    return VehicleState(armed=True, mode="AUTO", position=position, groundspeed_m_s=speed, relative_alt_m=alt)


def test_interlocks_pass_in_a_steady_hover_over_the_drop() -> None:
    """Test that a steady hover inside the zone at the expected altitude allows the release."""
    result = release_interlocks(ORDER, PROFILE, hovering(), expected_alt_m=20)
    assert result.ok, result.describe()


@pytest.mark.parametrize(
    ("state", "failure"),
    [
        (hovering(distance_m=7.0), "outside the drop zone (7.0 m from the drop point)"),
        (hovering(speed=2.5), "ground speed 2.50 m/s > 1 m/s"),
        (hovering(alt=25.0), "altitude 25.0 m, expected 20 +- 2 m"),
        (VehicleState(armed=True, mode="AUTO", groundspeed_m_s=0.1, relative_alt_m=20), "no position"),
        (
            VehicleState(armed=True, mode="RTL", position=hovering().position, groundspeed_m_s=0.1, relative_alt_m=20),
            "mode RTL",
        ),
    ],
)
def test_each_interlock_blocks_the_release(state: VehicleState, failure: str) -> None:
    """Test that each violated condition alone blocks the release and is named."""
    result = release_interlocks(ORDER, PROFILE, state, expected_alt_m=20)
    assert not result.ok
    assert failure in result.describe()


async def test_journal_survives_reopening_and_is_in_wal_mode(tmp_path: Path) -> None:
    """Test that events are on disk once record() returns (read by a second connection), in order, WAL mode."""
    path = tmp_path / "journal.sqlite"
    journal = await Journal.open(path)
    await journal.record_state("KWL-1", DeliveryState.PREFLIGHT, vehicle_ms=None)
    await journal.record_command("KWL-1", DeliveryState.ARMING, Command.ARM, {"why": "go"}, vehicle_ms=1234)
    await journal.record_state("KWL-2", DeliveryState.PREFLIGHT, vehicle_ms=None)
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert other.execute("SELECT name FROM events WHERE order_id = 'KWL-1' ORDER BY id").fetchall() == [
        ("PREFLIGHT",),
        ("arm",),
    ]
    other.close()
    await journal.close()
    async with await Journal.open(path) as again:
        events = await again.events("KWL-1")
    assert [(e.kind, e.name, e.vehicle_ms, e.detail) for e in events] == [
        ("state", "PREFLIGHT", None, {}),
        ("command", "arm", 1234, {"why": "go"}),
    ]


async def test_journal_writes_do_not_block_the_event_loop(tmp_path: Path) -> None:
    """Test that while the journal writes (fsync on every commit) other tasks keep running."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    async with await Journal.open(tmp_path / "j.sqlite") as journal:
        for n in range(20):
            await journal.record_observation(
                "KWL-1", DeliveryState.ENROUTE, Observation.STEP_FAILED, {"n": n}, vehicle_ms=n
            )
    task.cancel()
    assert ticks > 20


async def test_unwritable_journal_is_an_error_not_a_silent_loss(tmp_path: Path) -> None:
    """Test that a journal that cannot be opened raises JournalError naming it (no flight without a journal)."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(JournalError, match=r"journal .*file/journal\.sqlite"):
        await Journal.open(blocker / "journal.sqlite")


async def test_history_tells_what_must_not_happen_twice(tmp_path: Path) -> None:
    """Test that the journal read back after a crash says: the release was authorised (never again), which
    mission hash is ours, and the last state."""
    async with await Journal.open(tmp_path / "j.sqlite") as journal:
        await journal.record_state("KWL-1", DeliveryState.PREFLIGHT, vehicle_ms=None)
        await journal.record_observation(
            "KWL-1", DeliveryState.UPLOADING, Observation.UPLOADED, {"mission_hash": "abc"}, vehicle_ms=None
        )
        await journal.record_state("KWL-1", DeliveryState.ENROUTE, vehicle_ms=None)
        await journal.record_state("KWL-1", DeliveryState.ON_STATION, vehicle_ms=None)
        await journal.record_command(
            "KWL-1", DeliveryState.ON_STATION, Command.RELEASE_AUTHORISED, {"set_current": 6}, vehicle_ms=None
        )
        history = History.of(await journal.events("KWL-1"))
    assert history.state is DeliveryState.ON_STATION
    assert history.mission_hash == "abc"
    assert history.release_authorised
    assert not history.released


def _old_journal(path: Path) -> None:
    """A journal as the first flightctl wrote it: the same table, bare strings, no schema stamp."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT NOT NULL, at_utc TEXT NOT NULL, vehicle_ms INTEGER,
            kind TEXT NOT NULL CHECK (kind IN ('state', 'command', 'observation', 'check')),
            state TEXT NOT NULL, name TEXT NOT NULL, detail TEXT NOT NULL);
        INSERT INTO events VALUES (1, 'KWL-1', 't', 1000, 'state', 'ENROUTE', 'ENROUTE', '{}');
        INSERT INTO events VALUES (2, 'KWL-1', 't', 2000, 'state', 'ON_STATION', 'ON_STATION', '{}');
        INSERT INTO events VALUES (3, 'KWL-1', 't', 3000, 'command', 'ON_STATION', 'gripper_release', '{}');
        """
    )
    db.commit()
    db.close()


async def test_a_journal_written_before_the_typed_names_reads_the_same(tmp_path: Path) -> None:
    """Test that an unstamped journal of the first version opens, reads typed, and keeps 'released from the gate'
    as a release that must not happen again."""
    path = tmp_path / "old.sqlite"
    _old_journal(path)
    async with await Journal.open(path) as journal:
        events = await journal.events("KWL-1")
    assert [e.command for e in events] == [None, None, Command.GRIPPER_RELEASE]
    assert events[1].entered is DeliveryState.ON_STATION
    history = History.of(events)
    assert history.release_authorised
    assert history.commanded(Command.GRIPPER_RELEASE)


async def test_a_journal_from_a_newer_flightctl_is_refused(tmp_path: Path) -> None:
    """Test that a journal stamped with a newer schema is refused with a message, not misread."""
    path = tmp_path / "new.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(JournalError, match="schema version 99, newer than this flightctl reads"):
        await Journal.open(path)


async def test_a_database_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    """Test that pointing --journal at another SQLite database (or any other file) is an error naming it."""
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE customers (id INTEGER)")
    db.close()
    with pytest.raises(JournalError, match=r"not a flightctl journal \(tables \['customers'\]\)"):
        await Journal.open(other)
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all " * 100)
    with pytest.raises(JournalError, match=r"notes\.txt"):
        await Journal.open(text)


async def test_an_event_name_outside_the_vocabulary_is_refused_on_read(tmp_path: Path) -> None:
    """Test that a state the vocabulary does not know (a hand-edited or corrupt journal) is an error, not a guess."""
    path = tmp_path / "edited.sqlite"
    _old_journal(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET name = 'RELESED', state = 'RELESED' WHERE id = 2")
    db.commit()
    db.close()
    async with await Journal.open(path) as journal:
        with pytest.raises(JournalError, match="event 2 is not one this flightctl understands"):
            await journal.events("KWL-1")
