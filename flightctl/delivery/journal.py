"""The delivery journal: SQLite in WAL mode, each event committed (synchronous=FULL) before the action it
records is taken or published. After a crash it is the source of truth: what was commanded, what was
confirmed, and so what must never be done twice.

SQLite calls block, so they run on one dedicated thread; the event loop only awaits them.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flightctl.errors import FlightctlError

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
"""


class JournalError(FlightctlError):
    """The journal could not be written or read: the controller must not act without it."""


@dataclass(frozen=True)
class JournalEvent:
    id: int
    order_id: str
    at_utc: str
    vehicle_ms: int | None
    kind: str
    state: str
    name: str
    detail: dict[str, Any]


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path) -> Journal:
        journal = cls(path)
        try:
            await journal._call(journal._open)
        except JournalError:
            journal._executor.shutdown(wait=False)
            raise
        return journal

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a committed event survives power loss, not just a crash
        db.executescript(_SCHEMA)
        self._db = db

    async def _call(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function, *args)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"journal {self.path}: {exc}") from exc

    async def record(
        self,
        order_id: str,
        *,
        kind: str,
        state: str,
        name: str,
        detail: dict[str, Any] | None = None,
        vehicle_ms: int | None = None,
    ) -> JournalEvent:
        """Append one event and return once it is on disk."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        text = json.dumps(detail or {}, sort_keys=True, default=str)

        def write() -> int:
            assert self._db is not None
            cursor = self._db.execute(
                "INSERT INTO events (order_id, at_utc, vehicle_ms, kind, state, name, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (order_id, at, vehicle_ms, kind, state, name, text),
            )
            return int(cursor.lastrowid or 0)

        event_id = await self._call(write)
        return JournalEvent(event_id, order_id, at, vehicle_ms, kind, state, name, json.loads(text))

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
        return [JournalEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows]

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await self._call(db.close)
        self._executor.shutdown(wait=True)
