"""The delivery journal: SQLite in WAL mode, each event committed (synchronous=FULL) before the action it
records is taken or published. After a crash it is the source of truth: what was commanded, what was
confirmed, and so what must never be done twice.

SQLite calls block, so they run on one dedicated thread; the event loop only awaits them.

Writers name what they record with the enums of ``delivery.events`` (one method per kind of event), and
readers get them back typed. A file is stamped with its schema version (``PRAGMA user_version``); journals
written before the stamp have the same table and names and are read as version 1 (and gain the version 2
tables on open), and a newer version or a file that is not a journal is refused with a message saying so.

Version 2 adds what leaves the aircraft (``outbox``) and the orders the daemon was given (``orders``). Each
state transition is written to ``events`` and ``outbox`` in one transaction, so a crash can lose neither
half: the outbox's AUTOINCREMENT key is the drone's event sequence number, never reused, never going back.
Version 3 adds ``meta``: the drone a daemon's journal belongs to (a journal cloned onto another aircraft would
send its unsent events under that aircraft's name).

One process writes a journal at a time (``journal_lock``); a reader (``reader=True``: a report, a test looking
on) opens it read-only and takes no lock.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flightctl.delivery.events import Command, DeliveryState, EventKind, Observation
from flightctl.delivery.journal_lock import JournalInUse, JournalLock
from flightctl.errors import FlightctlError

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    at_utc TEXT NOT NULL,
    vehicle_ms INTEGER,
    kind TEXT NOT NULL CHECK (kind IN ('state', 'command', 'observation', 'check')),
    state TEXT NOT NULL,
    name TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_order ON events (order_id, id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_utc TEXT NOT NULL,
    time_source TEXT NOT NULL,
    order_id TEXT,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    sent_utc TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent_utc IS NULL;
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    received_utc TEXT NOT NULL,
    body TEXT NOT NULL,
    answer TEXT CHECK (answer IN ('accepted', 'rejected')),
    reasons TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
_TABLES = {"events", "sqlite_sequence", "outbox", "orders", "meta"}
OUTBOX_STATE = "state"  # the outbox type of a journaled transition


def companion_clock() -> tuple[datetime, str]:
    return datetime.now(UTC), "companion"


# What stamps outbox rows: the time and where it came from ("gps" when the autopilot's GPS-derived UTC is
# known, "companion" for the companion computer's own clock).
Clock = Callable[[], tuple[datetime, str]]


class JournalError(FlightctlError):
    """The journal could not be written or read: the controller must not act without it."""


@dataclass(frozen=True)
class JournalEvent:
    id: int
    order_id: str
    at_utc: str
    vehicle_ms: int | None
    kind: EventKind
    state: DeliveryState
    name: str
    detail: dict[str, Any]

    @property
    def entered(self) -> DeliveryState | None:
        """The state this event entered, for a transition."""
        return DeliveryState(self.name) if self.kind is EventKind.STATE else None

    @property
    def command(self) -> Command | None:
        return _member(Command, self.name) if self.kind is EventKind.COMMAND else None

    @property
    def observation(self) -> Observation | None:
        return _member(Observation, self.name) if self.kind is EventKind.OBSERVATION else None


def _member(enum_type: type[Command] | type[Observation], name: str) -> Any:
    try:
        return enum_type(name)
    except ValueError:
        return None  # a name this version does not act on (only ever in a note)


def _event(row: tuple[Any, ...], path: Path) -> JournalEvent:
    try:
        kind, state = EventKind(row[4]), DeliveryState(row[5])
        if kind is EventKind.STATE:
            DeliveryState(row[6])
        return JournalEvent(row[0], row[1], row[2], row[3], kind, state, row[6], json.loads(row[7]))
    except ValueError as exc:
        raise JournalError(f"journal {path}: event {row[0]} is not one this flightctl understands ({exc})") from exc


@dataclass(frozen=True)
class OutboxEntry:
    """One message waiting to leave the aircraft (or already gone, once ``sent``)."""

    seq: int
    at_utc: str
    time_source: str
    order_id: str | None
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class OrderRecord:
    order_id: str
    request_id: str
    received_utc: str
    body: dict[str, Any]
    answer: str | None  # None: received, not yet answered (go/no-go running, or the daemon died meanwhile)
    reasons: list[str]


def _make_folder(path: Path) -> None:
    """The journal's folder, made if missing; one that is a file is named as such (not "[Errno 17] File exists")."""
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise JournalError(f"journal {path}: {parent} is a file, not a folder")
            break
    path.parent.mkdir(parents=True, exist_ok=True)


class Journal:
    def __init__(self, path: Path, clock: Clock = companion_clock, *, reader: bool = False) -> None:
        self.path = path
        self.clock = clock
        self.reader = reader
        self._lock = JournalLock(path)
        # Called (on the event loop) after each write that adds to the outbox, so a publisher need not poll.
        self.on_outbox: Callable[[], None] = lambda: None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path, clock: Clock = companion_clock, *, reader: bool = False) -> Journal:
        """Open (or make) the journal as its one writer, or with ``reader`` read-only beside whoever writes it."""
        journal = cls(path, clock, reader=reader)
        try:
            await journal._call(journal._open)
        except (JournalError, JournalInUse):
            journal._lock.release()
            journal._executor.shutdown(wait=False)
            raise
        return journal

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _open(self) -> None:
        if self.reader:
            if not self.path.exists():
                raise JournalError(f"journal {self.path}: no such file")
            uri = f"{self.path.absolute().as_uri()}?mode=ro"  # as_uri escapes '?', '#' and '%' in the path
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            try:
                self._check_schema(db)
            except BaseException:
                db.close()
                raise
            self._db = db
            return
        _make_folder(self.path)
        self._lock.acquire()
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a committed event survives power loss, not just a crash
        try:
            self._check_schema(db)
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        self._db = db

    async def belongs_to(self, drone_id: str) -> None:
        """Claim a daemon's journal for ``drone_id`` (the first daemon to open it), or refuse one that is another
        drone's: its unsent events are that drone's, and must not go out under this one's name."""

        def claim() -> str:
            assert self._db is not None
            self._db.execute("INSERT INTO meta (key, value) VALUES ('drone_id', ?) ON CONFLICT DO NOTHING", (drone_id,))
            return str(self._db.execute("SELECT value FROM meta WHERE key = 'drone_id'").fetchone()[0])

        owner = await self._call(claim)
        if owner != drone_id:
            raise JournalError(
                f"journal {self.path} belongs to drone {owner}, and this is drone {drone_id} (a copied card?): "
                f"move it aside (its unsent events are {owner}'s) and start this daemon with a journal of its own"
            )

    def _check_schema(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path}: schema version {version}, newer than this flightctl reads "
                f"({SCHEMA_VERSION}); use the flightctl that wrote it"
            )
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables - _TABLES:
            raise JournalError(f"journal {self.path}: not a flightctl journal (tables {sorted(tables)})")

    async def _call(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function, *args)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"journal {self.path}: {exc}") from exc

    async def record_state(
        self, order_id: str, state: DeliveryState, detail: dict[str, Any] | None = None, *, vehicle_ms: int | None
    ) -> JournalEvent:
        """A transition into ``state``."""
        return await self._append(order_id, EventKind.STATE, state, state, detail, vehicle_ms)

    async def record_command(
        self,
        order_id: str,
        state: DeliveryState,
        command: Command,
        detail: dict[str, Any] | None = None,
        *,
        vehicle_ms: int | None,
    ) -> JournalEvent:
        """A command, journaled before it is sent."""
        return await self._append(order_id, EventKind.COMMAND, state, command, detail, vehicle_ms)

    async def record_observation(
        self,
        order_id: str,
        state: DeliveryState,
        observation: Observation,
        detail: dict[str, Any] | None = None,
        *,
        vehicle_ms: int | None,
    ) -> JournalEvent:
        return await self._append(order_id, EventKind.OBSERVATION, state, observation, detail, vehicle_ms)

    async def record_check(
        self, order_id: str, state: DeliveryState, name: str, detail: dict[str, Any], *, vehicle_ms: int | None
    ) -> JournalEvent:
        """A check (``detail`` holds at least ``ok``, ``line`` and ``stage``)."""
        return await self._append(order_id, EventKind.CHECK, state, name, detail, vehicle_ms)

    async def _append(
        self,
        order_id: str,
        kind: EventKind,
        state: DeliveryState,
        name: str,
        detail: dict[str, Any] | None,
        vehicle_ms: int | None,
    ) -> JournalEvent:
        """Append one event and return once it is on disk."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        text = json.dumps(detail or {}, sort_keys=True, default=str)
        transition = kind is EventKind.STATE
        stamp = self._stamp() if transition else None

        def write() -> int:
            assert self._db is not None
            with self._db:  # one transaction: the event and its outbox row, or neither
                self._db.execute("BEGIN IMMEDIATE")
                cursor = self._db.execute(
                    "INSERT INTO events (order_id, at_utc, vehicle_ms, kind, state, name, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (order_id, at, vehicle_ms, kind.value, state.value, str(name), text),
                )
                if stamp is not None:
                    data = json.dumps({"state": str(name), "detail": json.loads(text)}, sort_keys=True)
                    self._insert_outbox(stamp, order_id, OUTBOX_STATE, data)
            return int(cursor.lastrowid or 0)

        event_id = await self._call(write)
        if transition:
            self.on_outbox()
        return JournalEvent(event_id, order_id, at, vehicle_ms, kind, state, str(name), json.loads(text))

    # ---- the outbox: what leaves the aircraft, in sequence ---------------------------------------------------

    def _stamp(self) -> tuple[str, str]:
        when, source = self.clock()
        return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"), source

    def _insert_outbox(self, stamp: tuple[str, str], order_id: str | None, type_: str, data: str) -> int:
        assert self._db is not None
        cursor = self._db.execute(
            "INSERT INTO outbox (at_utc, time_source, order_id, type, data) VALUES (?, ?, ?, ?, ?)",
            (stamp[0], stamp[1], order_id, type_, data),
        )
        return int(cursor.lastrowid or 0)

    async def enqueue(self, order_id: str | None, type_: str, data: dict[str, Any]) -> int:
        """Put one message in the outbox (committed before this returns); its sequence number."""
        stamp = self._stamp()
        text = json.dumps(data, sort_keys=True, default=str)

        def write() -> int:
            assert self._db is not None
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                return self._insert_outbox(stamp, order_id, type_, text)

        seq: int = await self._call(write)
        self.on_outbox()
        return seq

    async def unsent(self, limit: int = 100) -> list[OutboxEntry]:
        """The oldest messages not yet acknowledged by the broker, in sequence order."""

        def read() -> list[tuple[Any, ...]]:
            assert self._db is not None
            return list(
                self._db.execute(
                    "SELECT seq, at_utc, time_source, order_id, type, data FROM outbox "
                    "WHERE sent_utc IS NULL ORDER BY seq LIMIT ?",
                    (limit,),
                )
            )

        return [OutboxEntry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in await self._call(read)]

    async def mark_sent(self, seq: int) -> None:
        """The broker acknowledged ``seq`` (PUBACK with a success code): never send it again."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")

        def write() -> None:
            assert self._db is not None
            self._db.execute("UPDATE outbox SET sent_utc = ? WHERE seq = ?", (at, seq))

        await self._call(write)

    async def outbox_backlog(self) -> int:
        def read() -> int:
            assert self._db is not None
            return int(self._db.execute("SELECT count(*) FROM outbox WHERE sent_utc IS NULL").fetchone()[0])

        count: int = await self._call(read)
        return count

    # ---- orders the daemon was given -------------------------------------------------------------------------

    async def receive_order(self, order_id: str, request_id: str, body: dict[str, Any]) -> OrderRecord:
        """Record an order as received (before anything is done for it); the earlier record if it is known."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        text = json.dumps(body, sort_keys=True, default=str)

        def write() -> None:
            assert self._db is not None
            self._db.execute(
                "INSERT OR IGNORE INTO orders (order_id, request_id, received_utc, body) VALUES (?, ?, ?, ?)",
                (order_id, request_id, at, text),
            )

        await self._call(write)
        record = await self.order(order_id)
        assert record is not None
        return record

    async def answer_order(self, order_id: str, answer: str, reasons: list[str]) -> None:
        def write() -> None:
            assert self._db is not None
            self._db.execute(
                "UPDATE orders SET answer = ?, reasons = ? WHERE order_id = ?", (answer, json.dumps(reasons), order_id)
            )

        await self._call(write)

    async def order(self, order_id: str) -> OrderRecord | None:
        rows = await self._orders("WHERE order_id = ?", (order_id,))
        return rows[0] if rows else None

    async def latest_orders(self, limit: int) -> list[OrderRecord]:
        """The most recently received orders, newest first."""
        return await self._orders("ORDER BY rowid DESC LIMIT ?", (limit,))

    async def _orders(self, where: str, args: tuple[Any, ...]) -> list[OrderRecord]:
        def read() -> list[tuple[Any, ...]]:
            assert self._db is not None
            return list(
                self._db.execute(
                    f"SELECT order_id, request_id, received_utc, body, answer, reasons FROM orders {where}", args
                )
            )

        return [OrderRecord(r[0], r[1], r[2], json.loads(r[3]), r[4], json.loads(r[5])) for r in await self._call(read)]

    async def events(self, order_id: str) -> list[JournalEvent]:
        def read() -> list[tuple[Any, ...]]:
            assert self._db is not None
            return list(
                self._db.execute(
                    "SELECT id, order_id, at_utc, vehicle_ms, kind, state, name, detail FROM events "
                    "WHERE order_id = ? ORDER BY id",
                    (order_id,),
                )
            )

        rows = await self._call(read)
        return [_event(row, self.path) for row in rows]

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await self._call(db.close)
        self._lock.release()
        self._executor.shutdown(wait=True)
