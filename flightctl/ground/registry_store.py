"""The registry's storage: SQLite (one relay, a laptop) or PostgreSQL (several relays), behind one small interface.

The same SQL for both, written with ``$n`` placeholders. Failures come in two kinds: ``RegistryUnavailable``
(the database is down, unreachable or out of room: try again later) and any other ``RegistryError`` (it refused
these values).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from flightctl.errors import ConfigError, FlightctlError, Unavailable
from flightctl.ground.logbook import LogbookRow, next_row
from flightctl.sqlite_thread import SqliteThread

log = logging.getLogger(__name__)

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
        place TEXT,
        PRIMARY KEY (order_id, status))""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        at_utc TEXT NOT NULL,
        relay TEXT NOT NULL,
        topic TEXT NOT NULL,
        sender TEXT,
        reason TEXT NOT NULL,
        excerpt TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (at_utc)",  # newest first, and the cap
    # The operator's logbook: each aircraft's flight records, chained by hash (ground.logbook).
    """CREATE TABLE IF NOT EXISTS logbook (
        drone_id TEXT NOT NULL,
        n BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        order_id TEXT,
        recorded_utc TEXT NOT NULL,
        record TEXT NOT NULL,
        ground TEXT NOT NULL,
        prev_sha256 TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (drone_id, n))""",
]
# A logbook record is never changed, nor deleted before it is three years old (AMC1 UAS.SPEC.050(1)(g)): the
# database itself refuses, whoever asks. (Someone who drops these first is caught by `flightctl logbook verify`.)
KEEP_MESSAGE = "logbook records are never changed, and kept three years (AMC1 UAS.SPEC.050(1)(g))"
SQLITE_KEEP = [
    f"""CREATE TRIGGER IF NOT EXISTS logbook_unchanged BEFORE UPDATE ON logbook
        BEGIN SELECT RAISE(ABORT, '{KEEP_MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS logbook_kept BEFORE DELETE ON logbook
        WHEN old.recorded_utc > strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-3 years')
        BEGIN SELECT RAISE(ABORT, '{KEEP_MESSAGE}'); END""",
]
POSTGRES_KEEP = [
    f"""CREATE OR REPLACE FUNCTION logbook_keep() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' OR OLD.recorded_utc > to_char(now() AT TIME ZONE 'UTC' - interval '3 years',
                                                              'YYYY-MM-DD"T"HH24:MI:SS"Z"') THEN
                RAISE EXCEPTION '{KEEP_MESSAGE}';
            END IF;
            RETURN OLD;
        END $$""",
    "DROP TRIGGER IF EXISTS logbook_keep ON logbook",
    "CREATE TRIGGER logbook_keep BEFORE UPDATE OR DELETE ON logbook FOR EACH ROW EXECUTE FUNCTION logbook_keep()",
]
LAST_LOGBOOK_ROW = "SELECT n, sha256 FROM logbook WHERE drone_id = $1 ORDER BY n DESC LIMIT 1"
INSERT_LOGBOOK = (
    "INSERT INTO logbook (drone_id, n, seq, order_id, recorded_utc, record, ground, prev_sha256, sha256) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
REGISTRY_TABLES = {"orders", "seen_events", "statuses", "dead_letters", "logbook"}
# Columns added after a table was first made: a registry from before them gains each (NULL in its old rows) when
# it is opened. (table, column, type).
ADDED_COLUMNS = [
    ("statuses", "place", "TEXT"),  # the airstrip an island leg arrived at, for the customer's page
    ("orders", "timezone", "TEXT"),  # the IANA zone of the order's site, for the times on the customer's page
]
INSERT_SEEN = "INSERT INTO seen_events (drone_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING"
# PostgreSQL: every relay's tracking page hears which orders' statuses a transaction changed (status_snapshots).
STATUS_CHANNEL = "flightctl_statuses"
NOTIFY_STATUSES = f"SELECT pg_notify('{STATUS_CHANNEL}', o) FROM unnest($1::text[]) AS o"
# An order forgotten (dispatch could not send it): its token's pages go, on the same channel.
FORGET_AND_NOTIFY = (
    "WITH gone AS (DELETE FROM orders WHERE order_id = $1 RETURNING order_id) "
    f"SELECT pg_notify('{STATUS_CHANNEL}', order_id) FROM gone"
)
FOLLOW_CHECK_S = 5.0  # the listening connection is checked this often: a silent one is not trusted
# PostgreSQL: a batch's keys in one statement, which returns those it inserted (a key already there, or twice in
# the batch, is inserted once: DO NOTHING also covers rows of the same statement).
INSERT_SEEN_MANY = (
    "INSERT INTO seen_events (drone_id, seq) SELECT * FROM unnest($1::text[], $2::bigint[]) "
    "ON CONFLICT DO NOTHING RETURNING drone_id, seq"
)
INSERT_STATUS = (
    "INSERT INTO statuses (order_id, status, drone_id, seq, at_utc, message, eta_utc, place) "
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM orders WHERE order_id = $1 AND drone_id = $3) "
    # The earliest event that made a status keeps it, whichever relay wrote first (SQLite 3.24+ and PostgreSQL).
    "ON CONFLICT (order_id, status) DO UPDATE SET drone_id = excluded.drone_id, seq = excluded.seq, "
    "at_utc = excluded.at_utc, message = excluded.message, eta_utc = excluded.eta_utc, place = excluded.place "
    "WHERE excluded.seq < statuses.seq"
)


@dataclass(frozen=True)
class LogbookEntry:
    """A flight record to chain into its aircraft's logbook, once the last row is known (in the transaction)."""

    drone_id: str
    seq: int
    order_id: str | None
    recorded_utc: str
    record: dict[str, Any]
    ground: dict[str, Any]

    def row(self, last: tuple[int, str] | None) -> LogbookRow:
        return next_row(
            last, drone_id=self.drone_id, seq=self.seq, order_id=self.order_id, recorded_utc=self.recorded_utc,
            record=self.record, ground=self.ground,
        )  # fmt: skip


class RegistryError(FlightctlError):
    """The registry refused or could not do what was asked."""


class RegistryUnavailable(RegistryError, Unavailable):
    """The database is down, unreachable or out of room: try again later (nothing about the request is wrong)."""


def utc_text(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Taking:
    """One event for the registry: its (drone, seq) key, the customer status it makes (or None), and the flight
    record it chains into the logbook (or None)."""

    seen: tuple[str, int]
    status: tuple[Any, ...] | None = None
    entry: LogbookEntry | None = None


class Backend(Protocol):
    async def execute(self, sql: str, *args: Any) -> int: ...
    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]: ...
    async def record(self, takings: Sequence[Taking]) -> list[bool]:
        """Take each event once, all in one transaction (or none of them); for each, whether it was new."""
        ...

    async def append(self, entry: LogbookEntry) -> LogbookRow: ...

    async def close(self) -> None: ...


class SqliteBackend:
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
                for table, column, kind in ADDED_COLUMNS:
                    if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                for statement in SQLITE_KEEP:
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

    async def record(self, takings: Sequence[Taking]) -> list[bool]:
        def run() -> list[bool]:
            assert self._db is not None
            with self._db:  # one transaction, one commit (one fsync) for the whole batch
                self._db.execute("BEGIN IMMEDIATE")  # one writer at a time: the chain's last row stays the last
                return [self._take(taking) for taking in takings]

        new: list[bool] = await self._call(run)
        return new

    def _take(self, taking: Taking) -> bool:
        assert self._db is not None
        if self._db.execute(self._sql(INSERT_SEEN), taking.seen).rowcount == 0:
            return False
        if taking.status is not None:
            self._db.execute(self._sql(INSERT_STATUS), self._args(INSERT_STATUS, taking.status))
        if (entry := taking.entry) is not None:
            self._chain(entry)
        return True

    def _chain(self, entry: LogbookEntry) -> LogbookRow:
        """``entry`` as its aircraft's next logbook row, in the transaction under way (which holds the writer's
        lock, so the last row stays the last)."""
        assert self._db is not None
        last = self._db.execute(self._sql(LAST_LOGBOOK_ROW), (entry.drone_id,)).fetchone()
        row = entry.row(None if last is None else (int(last[0]), str(last[1])))
        self._db.execute(self._sql(INSERT_LOGBOOK), row.as_tuple())
        return row

    async def append(self, entry: LogbookEntry) -> LogbookRow:
        """A logbook row that came with no event (a defect, a repair), chained in a transaction of its own."""

        def run() -> LogbookRow:
            assert self._db is not None
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                return self._chain(entry)

        row: LogbookRow = await self._call(run)
        return row

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await self._call(db.close)
        self._thread.shutdown(wait=True)


class PostgresBackend:
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
            raise RegistryError(f"registry {redacted(self._url)}: {exc}") from exc
        # Relays starting together must not race to create the tables.
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(7311)")
            for statement in SCHEMA:
                await connection.execute(statement)
            for table, column, kind in ADDED_COLUMNS:
                await connection.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
            for statement in POSTGRES_KEEP:
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

    async def record(self, takings: Sequence[Taking]) -> list[bool]:
        """The batch in one transaction and a few round trips: the keys in one INSERT (which says which were new),
        the statuses of the new ones in one executemany, then any flight records, each in turn."""
        assert self._pool is not None
        with self._errors():
            async with self._pool.acquire() as connection, connection.transaction():
                drones = [taking.seen[0] for taking in takings]
                seqs = [taking.seen[1] for taking in takings]
                inserted = {
                    (str(row[0]), int(row[1])) for row in await connection.fetch(INSERT_SEEN_MANY, drones, seqs)
                }
                new: list[bool] = []
                for taking in takings:  # a key twice in one batch: the first is the new one
                    new.append(taking.seen in inserted)
                    inserted.discard(taking.seen)
                statuses = [t.status for t, fresh in zip(takings, new, strict=True) if fresh and t.status is not None]
                if statuses:
                    await connection.executemany(INSERT_STATUS, statuses)
                    # Sent on commit, to every relay listening: their pages' snapshots of these orders go.
                    await connection.execute(NOTIFY_STATUSES, sorted({str(status[0]) for status in statuses}))
                for taking, fresh in zip(takings, new, strict=True):
                    if fresh and (entry := taking.entry) is not None:
                        await self._chain(connection, entry)
                return new

    @staticmethod
    async def _chain(connection: asyncpg.Connection, entry: LogbookEntry) -> LogbookRow:
        """``entry`` as its aircraft's next logbook row, in the connection's transaction."""
        # Relays (and the crew's entries) racing on one aircraft's rows take turns, so each links to the one before.
        await connection.execute("SELECT pg_advisory_xact_lock(7312, hashtext($1))", entry.drone_id)
        last = await connection.fetchrow(LAST_LOGBOOK_ROW, entry.drone_id)
        row = entry.row(None if last is None else (int(last[0]), str(last[1])))
        await connection.execute(INSERT_LOGBOOK, *row.as_tuple())
        return row

    async def append(self, entry: LogbookEntry) -> LogbookRow:
        """A logbook row that came with no event (a defect, a repair), chained in a transaction of its own."""
        assert self._pool is not None
        with self._errors():
            async with self._pool.acquire() as connection, connection.transaction():
                return await self._chain(connection, entry)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """PostgreSQL's refusal of these values (data, constraints: SQLSTATE classes 22 and 23) is the request's
        fault; anything else (the server gone, restarting, out of connections) is an outage."""
        try:
            yield
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, OverflowError) as exc:
            raise RegistryError(f"registry {redacted(self._url)}: {exc}") from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise RegistryUnavailable(f"registry {redacted(self._url)}: {exc}") from exc

    async def follow_changes(self, on_change: Callable[[set[str]], None], on_live: Callable[[bool], None]) -> None:
        """Hear every relay's status changes (LISTEN, on a connection of its own) until cancelled. ``on_live``
        says when notices are known to arrive and when they may have been missed (the connection lost or silent:
        then it connects again)."""
        while True:
            try:
                connection = await asyncpg.connect(self._url, password=self._password, timeout=10)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning(
                    "registry %s: cannot listen for status changes (%s); again shortly", redacted(self._url), exc
                )
                await asyncio.sleep(FOLLOW_CHECK_S)
                continue
            try:
                await connection.add_listener(STATUS_CHANNEL, lambda _c, _pid, _ch, order_id: on_change({order_id}))
                on_live(True)
                while True:
                    await asyncio.sleep(FOLLOW_CHECK_S)
                    await connection.fetchval("SELECT 1", timeout=FOLLOW_CHECK_S)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("registry %s: status change notices lost (%s)", redacted(self._url), exc)
            finally:
                on_live(False)
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


def refuse_password_in_url(url: str, where: str) -> None:
    """A database password never sits in a URL: command lines are visible to every user of the machine (ps),
    and configs get copied around. It comes from a password file, PGPASSWORD or ~/.pgpass (asyncpg reads both,
    as libpq does)."""
    if re.match(r"^postgres(ql)?://[^/@]*:[^/@]*@", url):
        raise ConfigError(
            f"{where}: the URL carries a password; leave it out ({redacted(url)}) and give it in a password file, "
            "PGPASSWORD or ~/.pgpass"
        )


def redacted(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
