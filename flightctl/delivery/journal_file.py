"""A journal file: its schema, its one writer, and its SQLite calls on a thread of their own.

SQLite calls block, so they run on one dedicated thread; the event loop only awaits them. A file is stamped
with its schema version (``PRAGMA user_version``); journals written before the stamp have the same table and
names and are read as version 1 (and gain the later tables on open), and a newer version or a file that is not
a journal is refused with a message saying so.

Version 2 adds what leaves the aircraft (``outbox``, delivery/outbox.py) and the orders the daemon was given
(``orders``, delivery/order_ledger.py). Version 3 adds ``meta``: the drone a daemon's journal belongs to (a
journal cloned onto another aircraft would send its unsent events under that aircraft's name).

One process writes a journal at a time (``journal_lock``); a reader (``reader=True``: a report, a test looking
on) opens it read-only and takes no lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from flightctl.delivery.journal_lock import JournalInUse, JournalLock
from flightctl.errors import MustStop
from flightctl.sqlite_thread import SqliteThread

T = TypeVar("T")

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


def companion_clock() -> tuple[datetime, str]:
    return datetime.now(UTC), "companion"


# What stamps outbox rows: the time and where it came from ("gps" when the autopilot's GPS-derived UTC is
# known, "companion" for the companion computer's own clock).
Clock = Callable[[], tuple[datetime, str]]


class JournalError(MustStop):
    """The journal could not be written or read: the controller must not act without it."""


def _make_folder(path: Path) -> None:
    """The journal's folder, made if missing; one that is a file is named as such (not "[Errno 17] File exists")."""
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise JournalError(f"journal {path}: {parent} is a file, not a folder")
            break
    path.parent.mkdir(parents=True, exist_ok=True)


class JournalFile:
    """One journal file: opened by its one writer (or read-only), its schema checked, its SQLite calls on a thread
    of their own. The stores (events, outbox, order ledger) are built on it and share its one connection, so a
    state and its outbox row can go in one transaction."""

    def __init__(self, path: Path, clock: Clock = companion_clock, *, reader: bool = False) -> None:
        self.path = path
        self.clock = clock
        self.reader = reader
        self._lock = JournalLock(path)
        # Called (on the event loop) after each write that adds to the outbox, so a publisher need not poll.
        self.on_outbox: Callable[[], None] = lambda: None
        self._thread = SqliteThread("journal")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path, clock: Clock = companion_clock, *, reader: bool = False) -> Self:
        """Open (or make) the journal as its one writer, or with ``reader`` read-only beside whoever writes it."""
        journal = cls(path, clock, reader=reader)
        try:
            await journal._call(journal._open)
        except (JournalError, JournalInUse):
            journal._lock.release()
            journal._thread.shutdown(wait=False)
            raise
        return journal

    async def __aenter__(self) -> Self:
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

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return await self._thread.run(function, *args)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"journal {self.path}: {exc}") from exc

    def _stamp(self) -> tuple[str, str]:
        when, source = self.clock()
        return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"), source

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await self._call(db.close)
        self._lock.release()
        self._thread.shutdown(wait=True)
