"""The registry: which customer an order belongs to, its tracking token, and the customer-facing statuses.

Tokens are 192 random bits from ``secrets`` (never derived from the order id, the customer or a counter), handed
out once and stored only as their SHA-256: a copy of the database gives nobody a working link. Look-ups go by
that hash, so the time a look-up takes does not depend on how close a guess was; the stored and computed
hashes are still compared with ``hmac.compare_digest``.

The relays share the registry, and it is where they agree: an event is taken once per (drone, seq) by whichever
relay inserts it first (``seen_events``' primary key), in the same transaction as the status it makes. A status
is kept once per order (``statuses``' primary key) as the earliest event that made it, by the drone's sequence
number: two relays racing write the same rows, in whatever order they got the events.

Failures come in two kinds, and the relay treats them apart: ``RegistryUnavailable`` (the database is down or
unreachable: the event is not acknowledged, and comes again once it is back) and any other ``RegistryError`` (the
database refused this event's values: that message is dead-lettered).

SQLite (one relay, a laptop) or PostgreSQL (several relays): the same SQL, written with ``$n`` placeholders.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flightctl.errors import ConfigError
from flightctl.ground.customer_status import CustomerStatus, StatusUpdate
from flightctl.ground.logbook import LogbookRow, MaintenanceEntry, check_repair, open_defects
from flightctl.ground.registry_store import (
    FORGET_AND_NOTIFY,
    REGISTRY_TABLES,
    Backend,
    LogbookEntry,
    PostgresBackend,
    RegistryError,
    RegistryUnavailable,
    SqliteBackend,
    Taking,
    redacted,
    refuse_password_in_url,
    utc_text,
)
from flightctl.mqtt.consumer import SequenceTracker
from flightctl.mqtt.contract import DRONE_ID_PATTERN, ORDER_ID_PATTERN
from flightctl.mqtt.dead_letters import DeadLetter
from flightctl.tasks import cancel_and_wait

__all__ = [
    "REGISTRY_TABLES",
    "Registry",
    "RegistryError",
    "RegistryUnavailable",
    "ShownStatus",
    "TrackedOrder",
    "refuse_password_in_url",
    "token_hash",
]

TOKEN_BYTES = 24
DEFAULT_TOKEN_TTL = timedelta(days=30)
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"


@dataclass(frozen=True)
class ShownStatus:
    order_id: str
    status: CustomerStatus
    at_utc: str
    step: str  # a customer_status.Step (a registry from before steps may hold a sentence instead)
    eta_utc: str | None
    seq: int
    place: str | None = None  # the airstrip an island leg arrived at (its name, as the site data spells it)


@dataclass(frozen=True)
class TrackedOrder:
    order_id: str
    zone: ZoneInfo | None  # the order's site's time zone; None: the relay's
    expires_utc: str = field(default="", compare=False)  # when its token stops working (as stored)


def _zone(name: str) -> ZoneInfo | None:
    """The zone named, or None for one this machine does not know (a registry row is never trusted to be one)."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Dead letters kept for the operator to look at: the newest this many. Someone with an account can send them
# for months (each relay keeps only a budget a minute), and a registry must not grow without end.
KEEP_DEAD_LETTERS = 10_000


@dataclass(frozen=True)
class EventToKeep:
    """An event as the relay hands it to the registry (see ``Registry.record``)."""

    drone_id: str
    seq: int
    order_id: str | None
    update: StatusUpdate | None
    flight: tuple[dict[str, Any], dict[str, Any]] | None = None


def _taking(event: EventToKeep) -> Taking:
    entry = None
    if event.flight is not None:
        recorded = utc_text(datetime.now(UTC))
        entry = LogbookEntry(event.drone_id, event.seq, event.order_id, recorded, event.flight[0], event.flight[1])
    status = None
    update, order_id = event.update, event.order_id
    if update is not None and order_id is not None:
        eta = utc_text(update.eta) if update.eta is not None else None
        at = utc_text(update.at)
        status = (order_id, update.status.value, event.drone_id, event.seq, at, update.step.value, eta, update.place)
    return Taking((event.drone_id, event.seq), status, entry)


class Registry:
    def __init__(self, backend: Backend, description: str, *, keep_dead_letters: int = KEEP_DEAD_LETTERS) -> None:
        self._backend = backend
        self.description = description
        self.keep_dead_letters = keep_dead_letters
        self._change_listeners: list[Callable[[set[str]], None]] = []

    @classmethod
    async def open(cls, url: str, *, password: str | None = None) -> Registry:
        """``postgresql://user@host/db`` (the password given here, or from PGPASSWORD or ~/.pgpass; never in the
        URL) or a SQLite file path (``sqlite:///path`` or just the path)."""
        if url.startswith(("postgresql://", "postgres://")):
            refuse_password_in_url(url, "registry")
            pg = PostgresBackend(url, password)
            await pg.open()
            return cls(pg, redacted(url))
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", url)
        if scheme and scheme.group(1) != "sqlite" and len(scheme.group(1)) > 1:  # "C:" would be a drive, not a scheme
            raise ConfigError(
                f"registry {redacted(url)}: {scheme.group(1)}:// is not a registry; give postgresql://... or a "
                "SQLite file (a path, or sqlite:///path)"
            )
        path = Path(url.removeprefix("sqlite://"))
        lite = SqliteBackend(path)
        await lite.open()
        return cls(lite, str(path))

    async def close(self) -> None:
        await self._backend.close()

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ---- dispatch --------------------------------------------------------------------------------------------

    async def register(
        self,
        order_id: str,
        customer_id: str,
        drone_id: str,
        *,
        ttl: timedelta = DEFAULT_TOKEN_TTL,
        timezone: str | None = None,
    ) -> str:
        """Register an order for a customer; its tracking token (shown once, stored only hashed). ``timezone``:
        the order's site's (its page shows times in it); None leaves it to the relay's."""
        for name, value, pattern in (
            ("order id", order_id, ORDER_ID_PATTERN),
            ("customer id", customer_id, CUSTOMER_ID_PATTERN),
            ("drone id", drone_id, DRONE_ID_PATTERN),
        ):
            if not re.fullmatch(pattern, value):
                raise ConfigError(f"{name} {value!r} is not one (letters, digits and a few separators)")
        if timezone is not None and _zone(timezone) is None:
            raise ConfigError(f"time zone {timezone!r} is not one this machine knows (e.g. Europe/London)")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = datetime.now(UTC)
        inserted = await self._backend.execute(
            "INSERT INTO orders (order_id, customer_id, drone_id, token_sha256, created_utc, expires_utc, timezone) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            order_id, customer_id, drone_id, token_hash(token), utc_text(now), utc_text(now + ttl), timezone,
        )  # fmt: skip
        if inserted != 1:
            raise RegistryError(f"order {order_id} is already registered")
        return token

    async def forget(self, order_id: str) -> None:
        """Undo a registration whose order never reached the broker (so dispatching it again works). A page
        that kept the order's token drops it: this process's at once, every relay's on PostgreSQL by a notice
        sent with the deletion's commit (one statement: the row is never gone without the notice)."""
        if isinstance(self._backend, PostgresBackend):
            await self._backend.execute(FORGET_AND_NOTIFY, order_id)
        else:
            await self._backend.execute("DELETE FROM orders WHERE order_id = $1", order_id)
        for listener in self._change_listeners:
            listener({order_id})

    @property
    def notices_cover_orders(self) -> bool:
        """Whether ``following_changes`` hears of every order forgotten, whoever forgets it, so a token's order
        may be kept between page views: on PostgreSQL (NOTIFY); not on SQLite, where dispatch forgets in a
        process of its own."""
        return isinstance(self._backend, PostgresBackend)

    # ---- the relay -------------------------------------------------------------------------------------------

    async def record(
        self,
        drone_id: str,
        seq: int,
        order_id: str | None,
        update: StatusUpdate | None,
        flight: tuple[dict[str, Any], dict[str, Any]] | None = None,
    ) -> bool:
        """Take event (drone, seq) once: False if some relay already took it. Its status is kept in the same
        transaction, once per order, and only for an order registered for that drone. ``flight``: a flight
        record (the aircraft's part, the ground's part), chained into the aircraft's logbook in that transaction."""
        return (await self.record_many([EventToKeep(drone_id, seq, order_id, update, flight)]))[0]

    async def record_many(self, events: Sequence[EventToKeep]) -> list[bool]:
        """``record`` for a batch, in one transaction: all kept, or none (then raises); for each, whether it was
        new. A relay takes what has arrived in one go, so a fleet's backlog costs one commit per batch."""
        new = await self._backend.record([_taking(event) for event in events])
        changed = {e.order_id for e, fresh in zip(events, new, strict=True) if fresh and e.order_id and e.update}
        if changed:
            for listener in self._change_listeners:
                listener(changed)
        return new

    @contextlib.asynccontextmanager
    async def following_changes(
        self, on_change: Callable[[set[str]], None], on_live: Callable[[bool], None]
    ) -> AsyncIterator[None]:
        """While the block runs, ``on_change`` hears which orders' statuses changed: through this registry (a
        SQLite one has no other writer of statuses), and for PostgreSQL through any relay (LISTEN). ``on_live``
        says whether those notices are known to arrive; False when the block ends."""
        self._change_listeners.append(on_change)
        follower = None
        if isinstance(self._backend, PostgresBackend):
            follower = asyncio.create_task(self._backend.follow_changes(on_change, on_live))
        else:
            on_live(True)
        try:
            yield
        finally:
            self._change_listeners.remove(on_change)
            if follower is not None:
                await cancel_and_wait(follower)
            on_live(False)

    async def keep_dead_letter(self, relay: str, letter: DeadLetter) -> None:
        await self._backend.execute(
            "INSERT INTO dead_letters (at_utc, relay, topic, sender, reason, excerpt) VALUES ($1, $2, $3, $4, $5, $6)",
            utc_text(letter.at_utc), relay, letter.topic, letter.sender, letter.reason, letter.excerpt,
        )  # fmt: skip
        # Past the cap, the oldest go (ties on the time are all kept: the cap is a bound, not an exact count).
        await self._backend.execute(
            "DELETE FROM dead_letters WHERE at_utc < "
            "(SELECT at_utc FROM dead_letters ORDER BY at_utc DESC LIMIT 1 OFFSET $1)",
            self.keep_dead_letters - 1,
        )

    async def dead_letters(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest dead letters every relay kept, newest first."""
        rows = await self._backend.fetch(
            "SELECT at_utc, relay, topic, sender, reason, excerpt FROM dead_letters ORDER BY at_utc DESC LIMIT $1",
            limit,
        )
        keys = ("at_utc", "relay", "topic", "sender", "reason", "excerpt")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def seen_seqs(self, drone_id: str) -> list[int]:
        """Every sequence number taken for ``drone_id``, in order."""
        rows = await self._backend.fetch("SELECT seq FROM seen_events WHERE drone_id = $1 ORDER BY seq", drone_id)
        return [int(row[0]) for row in rows]

    async def missing_events(self, drone_id: str) -> list[int]:
        """Sequence numbers below the highest taken for ``drone_id`` that never came (since its first)."""
        tracker = SequenceTracker()
        for seq in await self.seen_seqs(drone_id):
            tracker.accept(seq)
        return tracker.missing()

    # ---- the operator's logbook ------------------------------------------------------------------------------

    async def logbook(self, drone_id: str | None = None) -> list[LogbookRow]:
        """The logbook's rows as stored (one aircraft's, or all), in chain order."""
        columns = "drone_id, n, seq, order_id, recorded_utc, record, ground, prev_sha256, sha256"
        if drone_id is None:
            rows = await self._backend.fetch(f"SELECT {columns} FROM logbook ORDER BY drone_id, n")
        else:
            rows = await self._backend.fetch(f"SELECT {columns} FROM logbook WHERE drone_id = $1 ORDER BY n", drone_id)
        return [_logbook_row(row) for row in rows]

    async def open_defects(self, drone_id: str) -> list[LogbookRow]:
        """``drone_id``'s defects that no repair has closed, in order: dispatch sends it nothing while one is."""
        columns = "drone_id, n, seq, order_id, recorded_utc, record, ground, prev_sha256, sha256"
        # Only the crew's rows have an "entry" key; in canonical JSON a quote inside a text is always escaped, so
        # no flight's words can look like one. The rows are read back and judged in Python all the same.
        rows = await self._backend.fetch(
            f"SELECT {columns} FROM logbook WHERE drone_id = $1 AND record LIKE $2 ORDER BY n", drone_id, '%"entry":%'
        )
        chain = [_logbook_row(row) for row in rows]
        still_open = set(open_defects(chain))
        return [row for row in chain if row.n in still_open]

    async def add_maintenance(self, drone_id: str, entry: MaintenanceEntry) -> LogbookRow:
        """A defect or a repair the crew entered, chained into ``drone_id``'s logbook. A repair must close an open
        defect of that aircraft (``NotOpen`` otherwise). Two repairs of one defect entered at once are both kept:
        the second closes nothing more, and the chain holds both in the order written."""
        if not re.fullmatch(DRONE_ID_PATTERN, drone_id):
            raise ConfigError(f"drone id {drone_id!r} is not one (letters, digits, '_' and '-', 1 to 64)")
        if entry.entry == "repair":
            check_repair(await self.logbook(drone_id), entry)
        return await self._backend.append(
            LogbookEntry(drone_id, 0, None, entry.at_utc, entry.model_dump(mode="json", exclude_none=True), {})
        )

    # ---- the tracking page -----------------------------------------------------------------------------------

    async def order_for_token(self, token: str) -> str | None:
        """The order a live token is for; None for a wrong, expired or malformed one (the caller cannot tell)."""
        found = await self.tracked_order(token)
        return None if found is None else found.order_id

    async def tracked_order(self, token: str) -> TrackedOrder | None:
        """The order a live token is for, with the time zone its page is shown in (None: the relay's)."""
        wanted = token_hash(token)
        rows = await self._backend.fetch(
            "SELECT order_id, token_sha256, expires_utc, timezone FROM orders WHERE token_sha256 = $1", wanted
        )
        if not rows:
            return None
        order_id, stored, expires, zone = rows[0]
        if not hmac.compare_digest(str(stored), wanted) or str(expires) <= utc_text(datetime.now(UTC)):
            return None
        return TrackedOrder(str(order_id), _zone(zone) if zone is not None else None, str(expires))

    async def statuses(self, order_id: str) -> list[ShownStatus]:
        rows = await self._backend.fetch(
            "SELECT status, at_utc, message, eta_utc, seq, place FROM statuses WHERE order_id = $1 ORDER BY seq",
            order_id,
        )
        return [ShownStatus(order_id, CustomerStatus(r[0]), str(r[1]), str(r[2]), r[3], int(r[4]), r[5]) for r in rows]

    # ---- operators -------------------------------------------------------------------------------------------

    async def overview(self, limit: int = 500) -> list[dict[str, Any]]:
        rows = await self._backend.fetch(
            "SELECT o.order_id, o.drone_id, o.created_utc, "
            "(SELECT s.status FROM statuses s WHERE s.order_id = o.order_id ORDER BY s.seq DESC LIMIT 1) "
            "FROM orders o ORDER BY o.created_utc DESC LIMIT $1",
            limit,
        )
        return [{"order_id": r[0], "drone_id": r[1], "created_utc": r[2], "status": r[3]} for r in rows]

    async def drones(self) -> list[dict[str, Any]]:
        rows = await self._backend.fetch(
            "SELECT drone_id, count(*), max(seq), min(seq) FROM seen_events GROUP BY drone_id ORDER BY drone_id"
        )
        return [
            {
                "drone_id": r[0],
                "events": int(r[1]),
                "last_seq": int(r[2]),
                "missing": int(r[2]) - int(r[3]) + 1 - int(r[1]),
            }
            for r in rows
        ]


def _logbook_row(r: Sequence[Any]) -> LogbookRow:
    order_id = None if r[3] is None else str(r[3])
    return LogbookRow(str(r[0]), int(r[1]), int(r[2]), order_id, str(r[4]), str(r[5]), str(r[6]), str(r[7]), str(r[8]))
