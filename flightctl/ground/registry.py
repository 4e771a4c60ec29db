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

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from flightctl.errors import ConfigError, FlightctlError, Unavailable
from flightctl.ground.customer_status import CustomerStatus, StatusUpdate
from flightctl.mqtt.consumer import SequenceTracker
from flightctl.mqtt.contract import DRONE_ID_PATTERN, ORDER_ID_PATTERN
from flightctl.mqtt.dead_letters import DeadLetter
from flightctl.sqlite_thread import SqliteThread

TOKEN_BYTES = 24
DEFAULT_TOKEN_TTL = timedelta(days=30)
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS orders (
        order_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        drone_id TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_utc TEXT NOT NULL,
        expires_utc TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS seen_events (
        drone_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        PRIMARY KEY (drone_id, seq))""",
    """CREATE TABLE IF NOT EXISTS statuses (
        order_id TEXT NOT NULL,
        status TEXT NOT NULL,
        drone_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at_utc TEXT NOT NULL,
        message TEXT NOT NULL,
        eta_utc TEXT,
        PRIMARY KEY (order_id, status))""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        at_utc TEXT NOT NULL,
        relay TEXT NOT NULL,
        topic TEXT NOT NULL,
        sender TEXT,
        reason TEXT NOT NULL,
        excerpt TEXT NOT NULL)""",
]
REGISTRY_TABLES = {"orders", "seen_events", "statuses", "dead_letters"}
INSERT_SEEN = "INSERT INTO seen_events (drone_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING"
INSERT_STATUS = (
    "INSERT INTO statuses (order_id, status, drone_id, seq, at_utc, message, eta_utc) "
    "SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM orders WHERE order_id = $1 AND drone_id = $3) "
    # The earliest event that made a status keeps it, whichever relay wrote first (SQLite 3.24+ and PostgreSQL).
    "ON CONFLICT (order_id, status) DO UPDATE SET drone_id = excluded.drone_id, seq = excluded.seq, "
    "at_utc = excluded.at_utc, message = excluded.message, eta_utc = excluded.eta_utc "
    "WHERE excluded.seq < statuses.seq"
)


class RegistryError(FlightctlError):
    """The registry refused or could not do what was asked."""


class RegistryUnavailable(RegistryError, Unavailable):
    """The database is down, unreachable or out of room: try again later (nothing about the request is wrong)."""


@dataclass(frozen=True)
class ShownStatus:
    order_id: str
    status: CustomerStatus
    at_utc: str
    message: str
    eta_utc: str | None
    seq: int


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Backend(Protocol):
    async def execute(self, sql: str, *args: Any) -> int: ...
    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]: ...
    async def record(self, seen: tuple[Any, ...], status: tuple[Any, ...] | None) -> bool: ...
    async def close(self) -> None: ...


class _Sqlite:
    """SQLite on one thread of its own (its calls block); ``$n`` placeholders become ``?``."""

    def __init__(self, path: Path) -> None:
        self._thread = SqliteThread("registry")
        self._path = path
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        def connect() -> None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # Only its owner reads it (customers, orders): made 0600 before SQLite opens it; SQLite gives its WAL
            # and shared-memory files the database file's own mode.
            os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            try:
                self._refuse_foreign(db)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA busy_timeout=5000")
                for statement in SCHEMA:
                    db.execute(statement)
            except BaseException:
                db.close()
                raise
            self._db = db

        await self._call(connect)

    def _refuse_foreign(self, db: sqlite3.Connection) -> None:
        """A file with tables of something else (a drone's journal, say) is not written to at all."""
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables - REGISTRY_TABLES:
            raise RegistryError(
                f"registry {self._path}: not a registry (it holds {', '.join(sorted(tables))}); nothing was written"
            )

    async def _call(self, function: Any, *args: Any) -> Any:
        try:
            return await self._thread.run(function, *args)
        except (sqlite3.OperationalError, OSError) as exc:  # locked, disk full, I/O: not the request's fault
            raise RegistryUnavailable(f"registry {self._path}: {exc}") from exc
        except (sqlite3.Error, OverflowError) as exc:
            raise RegistryError(f"registry {self._path}: {exc}") from exc

    @staticmethod
    def _sql(sql: str) -> str:
        return re.sub(r"\$\d+", "?", sql)

    def _args(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        # '?' is positional: repeat arguments a statement uses twice ($1 and $3 in INSERT_STATUS).
        return tuple(args[int(n) - 1] for n in re.findall(r"\$(\d+)", sql))

    async def execute(self, sql: str, *args: Any) -> int:
        def run() -> int:
            assert self._db is not None
            return self._db.execute(self._sql(sql), self._args(sql, args)).rowcount

        count: int = await self._call(run)
        return count

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        def run() -> list[Sequence[Any]]:
            assert self._db is not None
            return list(self._db.execute(self._sql(sql), self._args(sql, args)))

        rows: list[Sequence[Any]] = await self._call(run)
        return rows

    async def record(self, seen: tuple[Any, ...], status: tuple[Any, ...] | None) -> bool:
        def run() -> bool:
            assert self._db is not None
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                if self._db.execute(self._sql(INSERT_SEEN), seen).rowcount == 0:
                    return False
                if status is not None:
                    self._db.execute(self._sql(INSERT_STATUS), self._args(INSERT_STATUS, status))
                return True

        new: bool = await self._call(run)
        return new

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await self._call(db.close)
        self._thread.shutdown(wait=True)


class _Postgres:
    def __init__(self, url: str, password: str | None) -> None:
        self._url = url
        self._password = password
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._url, password=self._password, min_size=1, max_size=8, timeout=10
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise RegistryError(f"registry {_redacted(self._url)}: {exc}") from exc
        # Relays starting together must not race to create the tables.
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(7311)")
            for statement in SCHEMA:
                await connection.execute(statement)

    async def execute(self, sql: str, *args: Any) -> int:
        assert self._pool is not None
        with self._errors():
            status: str = await self._pool.execute(sql, *args)
        return int(status.rsplit(" ", 1)[-1]) if status[-1].isdigit() else 0

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        assert self._pool is not None
        with self._errors():
            return [tuple(row) for row in await self._pool.fetch(sql, *args)]

    async def record(self, seen: tuple[Any, ...], status: tuple[Any, ...] | None) -> bool:
        assert self._pool is not None
        with self._errors():
            async with self._pool.acquire() as connection, connection.transaction():
                if (await connection.execute(INSERT_SEEN, *seen)).endswith(" 0"):
                    return False
                if status is not None:
                    await connection.execute(INSERT_STATUS, *status)
                return True

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """PostgreSQL's refusal of these values (data, constraints: SQLSTATE classes 22 and 23) is the request's
        fault; anything else (the server gone, restarting, out of connections) is an outage."""
        try:
            yield
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, OverflowError) as exc:
            raise RegistryError(f"registry {_redacted(self._url)}: {exc}") from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise RegistryUnavailable(f"registry {_redacted(self._url)}: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


def refuse_password_in_url(url: str, where: str) -> None:
    """A database password never sits in a URL: command lines are visible to every user of the machine (ps),
    and configs get copied around. It comes from a password file, PGPASSWORD or ~/.pgpass (asyncpg reads both,
    as libpq does)."""
    if re.match(r"^postgres(ql)?://[^/@]*:[^/@]*@", url):
        raise ConfigError(
            f"{where}: the URL carries a password; leave it out ({_redacted(url)}) and give it in a password file, "
            "PGPASSWORD or ~/.pgpass"
        )


def _redacted(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


class Registry:
    def __init__(self, backend: _Backend, description: str) -> None:
        self._backend = backend
        self.description = description

    @classmethod
    async def open(cls, url: str, *, password: str | None = None) -> Registry:
        """``postgresql://user@host/db`` (the password given here, or from PGPASSWORD or ~/.pgpass; never in the
        URL) or a SQLite file path (``sqlite:///path`` or just the path)."""
        if url.startswith(("postgresql://", "postgres://")):
            refuse_password_in_url(url, "registry")
            pg = _Postgres(url, password)
            await pg.open()
            return cls(pg, _redacted(url))
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", url)
        if scheme and scheme.group(1) != "sqlite" and len(scheme.group(1)) > 1:  # "C:" would be a drive, not a scheme
            raise ConfigError(
                f"registry {_redacted(url)}: {scheme.group(1)}:// is not a registry; give postgresql://... or a "
                "SQLite file (a path, or sqlite:///path)"
            )
        path = Path(url.removeprefix("sqlite://"))
        lite = _Sqlite(path)
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
        self, order_id: str, customer_id: str, drone_id: str, *, ttl: timedelta = DEFAULT_TOKEN_TTL
    ) -> str:
        """Register an order for a customer; its tracking token (shown once, stored only hashed)."""
        for name, value, pattern in (
            ("order id", order_id, ORDER_ID_PATTERN),
            ("customer id", customer_id, CUSTOMER_ID_PATTERN),
            ("drone id", drone_id, DRONE_ID_PATTERN),
        ):
            if not re.fullmatch(pattern, value):
                raise ConfigError(f"{name} {value!r} is not one (letters, digits and a few separators)")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = datetime.now(UTC)
        inserted = await self._backend.execute(
            "INSERT INTO orders (order_id, customer_id, drone_id, token_sha256, created_utc, expires_utc) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            order_id, customer_id, drone_id, token_hash(token), _utc(now), _utc(now + ttl),
        )  # fmt: skip
        if inserted != 1:
            raise RegistryError(f"order {order_id} is already registered")
        return token

    async def forget(self, order_id: str) -> None:
        """Undo a registration whose order never reached the broker (so dispatching it again works)."""
        await self._backend.execute("DELETE FROM orders WHERE order_id = $1", order_id)

    # ---- the relay -------------------------------------------------------------------------------------------

    async def record(self, drone_id: str, seq: int, order_id: str | None, update: StatusUpdate | None) -> bool:
        """Take event (drone, seq) once: False if some relay already took it. Its status is kept in the same
        transaction, once per order, and only for an order registered for that drone."""
        status = None
        if update is not None and order_id is not None:
            eta = _utc(update.eta) if update.eta is not None else None
            status = (order_id, update.status.value, drone_id, seq, _utc(update.at), update.message, eta)
        return await self._backend.record((drone_id, seq), status)

    async def keep_dead_letter(self, relay: str, letter: DeadLetter) -> None:
        await self._backend.execute(
            "INSERT INTO dead_letters (at_utc, relay, topic, sender, reason, excerpt) VALUES ($1, $2, $3, $4, $5, $6)",
            _utc(letter.at_utc), relay, letter.topic, letter.sender, letter.reason, letter.excerpt,
        )  # fmt: skip

    async def dead_letters(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest dead letters every relay kept, newest first."""
        rows = await self._backend.fetch(
            "SELECT at_utc, relay, topic, sender, reason, excerpt FROM dead_letters ORDER BY at_utc DESC LIMIT $1",
            limit,
        )
        keys = ("at_utc", "relay", "topic", "sender", "reason", "excerpt")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    async def missing_events(self, drone_id: str) -> list[int]:
        """Sequence numbers below the highest taken for ``drone_id`` that never came (since its first)."""
        rows = await self._backend.fetch("SELECT seq FROM seen_events WHERE drone_id = $1 ORDER BY seq", drone_id)
        tracker = SequenceTracker()
        for row in rows:
            tracker.accept(int(row[0]))
        return tracker.missing()

    # ---- the tracking page -----------------------------------------------------------------------------------

    async def order_for_token(self, token: str) -> str | None:
        """The order a live token is for; None for a wrong, expired or malformed one (the caller cannot tell)."""
        wanted = token_hash(token)
        rows = await self._backend.fetch(
            "SELECT order_id, token_sha256, expires_utc FROM orders WHERE token_sha256 = $1", wanted
        )
        if not rows:
            return None
        order_id, stored, expires = rows[0]
        if not hmac.compare_digest(str(stored), wanted) or str(expires) <= _utc(datetime.now(UTC)):
            return None
        return str(order_id)

    async def statuses(self, order_id: str) -> list[ShownStatus]:
        rows = await self._backend.fetch(
            "SELECT status, at_utc, message, eta_utc, seq FROM statuses WHERE order_id = $1 ORDER BY seq", order_id
        )
        return [ShownStatus(order_id, CustomerStatus(r[0]), str(r[1]), str(r[2]), r[3], int(r[4])) for r in rows]

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
