"""The orders a daemon was given, and how it answered each: the journal's order ledger.

An order is recorded as received before anything is done for it, so a daemon that dies while checking one
answers it once it is back, and an order sent twice is recognised as a duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flightctl.delivery.journal_file import JournalFile


@dataclass(frozen=True)
class OrderRecord:
    order_id: str
    request_id: str
    received_utc: str
    body: dict[str, Any]
    answer: str | None  # None: received, not yet answered (go/no-go running, or the daemon died meanwhile)
    reasons: list[str]


class OrderLedger(JournalFile):
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
