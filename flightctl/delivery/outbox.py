"""What leaves the aircraft, in sequence: the journal's outbox.

Each row is one message for the broker, committed before anything is published. Its AUTOINCREMENT key is the
drone's event sequence number, never reused, never going back. A state transition writes its event and its
outbox row in one transaction (``Journal._append`` calls ``_insert_outbox`` inside it), so a crash can lose
neither half; the publisher marks a row sent only once the broker acknowledged it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flightctl.delivery.journal_file import JournalFile


@dataclass(frozen=True)
class OutboxEntry:
    """One message waiting to leave the aircraft (or already gone, once ``sent``)."""

    seq: int
    at_utc: str
    time_source: str
    order_id: str | None
    type: str
    data: dict[str, Any]


class OutboxStore(JournalFile):
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

    async def enqueue_once(self, order_id: str, type_: str, data: dict[str, Any]) -> bool:
        """Put the order's one message of ``type_`` in the outbox, unless it has one already (one transaction:
        a message written before a crash is not written again after it). Whether it was put there."""
        stamp = self._stamp()
        text = json.dumps(data, sort_keys=True, default=str)

        def write() -> bool:
            assert self._db is not None
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                held = "SELECT 1 FROM outbox WHERE order_id = ? AND type = ? LIMIT 1"
                if self._db.execute(held, (order_id, type_)).fetchone() is not None:
                    return False
                self._insert_outbox(stamp, order_id, type_, text)
                return True

        put: bool = await self._call(write)
        if put:
            self.on_outbox()
        return put

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

    async def outbox_seqs(self) -> list[int]:
        """Every sequence number journaled for the ground, sent or not, in order: what the registry should hold."""

        def read() -> list[int]:
            assert self._db is not None
            return [int(row[0]) for row in self._db.execute("SELECT seq FROM outbox ORDER BY seq")]

        seqs: list[int] = await self._call(read)
        return seqs

    async def outbox_backlog(self) -> int:
        def read() -> int:
            assert self._db is not None
            return int(self._db.execute("SELECT count(*) FROM outbox WHERE sent_utc IS NULL").fetchone()[0])

        count: int = await self._call(read)
        return count
