"""The delivery journal: SQLite in WAL mode, each event committed (synchronous=FULL) before the action it
records is taken or published. After a crash it is the source of truth: what was commanded, what was
confirmed, and so what must never be done twice.

Writers name what they record with the enums of ``delivery.events`` (one method per kind of event), and
readers get them back typed. ``Journal`` is the one object callers open: the events (here), the outbox
(delivery/outbox.py) and the order ledger (delivery/order_ledger.py), on one file and one connection
(delivery/journal_file.py), so each state transition and its outbox row are one transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flightctl.delivery.events import Command, DeliveryState, EventKind, Observation
from flightctl.delivery.journal_file import SCHEMA_VERSION, Clock, JournalError, companion_clock
from flightctl.delivery.order_ledger import OrderLedger, OrderRecord
from flightctl.delivery.outbox import OutboxEntry, OutboxStore

__all__ = [
    "SCHEMA_VERSION",
    "Clock",
    "Journal",
    "JournalError",
    "JournalEvent",
    "OrderRecord",
    "OutboxEntry",
    "companion_clock",
]

OUTBOX_STATE = "state"  # the outbox type of a journaled transition


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


class Journal(OutboxStore, OrderLedger):
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

    async def order_ids(self) -> list[str]:
        """Every order the journal has events for, in the order each was first journaled."""

        def read() -> list[str]:
            assert self._db is not None
            rows = self._db.execute("SELECT order_id FROM events GROUP BY order_id ORDER BY MIN(id)")
            return [str(row[0]) for row in rows]

        return await self._call(read)
