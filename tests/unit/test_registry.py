"""The registry on SQLite, as data: tokens, expiry, events taken once, statuses once per order and in order."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flightctl.delivery.journal import Journal
from flightctl.errors import ConfigError
from flightctl.ground.customer_status import CustomerStatus, StatusUpdate, Step
from flightctl.ground.registry import Registry, RegistryError, TrackedOrder, token_hash
from flightctl.mqtt.dead_letters import DeadLetter


async def test_tokens_are_random_long_stored_hashed_and_expire(tmp_path: Path) -> None:
    """Test that a token is 192 random bits (32 URL-safe characters), unrelated to the order, kept only as its
    SHA-256, and that an expired token finds nothing, exactly as a wrong one."""
    path = tmp_path / "registry.sqlite"
    async with await Registry.open(str(path)) as registry:
        token = await registry.register("KWL-1", "customer-1", "drone-a")
        other = await registry.register("KWL-2", "customer-1", "drone-a")
        expired = await registry.register("KWL-3", "customer-2", "drone-a", ttl=timedelta(seconds=-1))
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)
        assert token != other
        assert await registry.order_for_token(token) == "KWL-1"
        assert await registry.order_for_token(expired) is None
        assert await registry.order_for_token(token[:-1]) is None
        assert await registry.order_for_token("") is None
        with pytest.raises(RegistryError, match="already registered"):
            await registry.register("KWL-1", "customer-9", "drone-a")
        with pytest.raises(ConfigError, match="customer id"):
            await registry.register("KWL-4", "a customer/with#wildcards", "drone-a")
    stored = path.read_bytes()
    assert token.encode() not in stored
    assert token_hash(token).encode() in stored


async def test_events_are_taken_once_and_statuses_kept_once_in_order(tmp_path: Path) -> None:
    async with await Registry.open(str(tmp_path / "r.sqlite")) as registry:
        await registry.register("KWL-1", "customer-1", "drone-a")
        now = datetime.now(UTC)
        delivered = StatusUpdate(CustomerStatus.DELIVERED, now, Step.DELIVERED)
        accepted = StatusUpdate(CustomerStatus.ACCEPTED, now, Step.BOOKED)
        assert await registry.record("drone-a", 5, "KWL-1", delivered)
        assert await registry.record("drone-a", 2, "KWL-1", accepted)
        assert not await registry.record("drone-a", 2, "KWL-1", accepted), "a re-send"
        assert await registry.record("drone-a", 3, "KWL-1", accepted), "a new event, the same status: not shown twice"
        assert await registry.record("drone-b", 2, "KWL-1", delivered), "another drone's numbers are its own"
        assert await registry.record("drone-a", 9, "KWL-UNKNOWN", accepted)
        shown = await registry.statuses("KWL-1")
        assert [(s.status.value, s.seq) for s in shown] == [("ACCEPTED", 2), ("DELIVERED", 5)]
        assert await registry.statuses("KWL-UNKNOWN") == []
        assert await registry.missing_events("drone-a") == [4, 6, 7, 8]


async def test_a_registry_file_is_its_owners_alone_and_a_journal_is_never_taken_for_one(tmp_path: Path) -> None:
    """Test that a new SQLite registry (and its WAL) is made 0600, and that a file holding other tables (a drone's
    journal) is refused before anything is written to it."""
    path = tmp_path / "registry.sqlite"
    async with await Registry.open(str(path)) as registry:
        await registry.register("KWL-1", "customer-1", "drone-a")
        assert path.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "registry.sqlite-wal").stat().st_mode & 0o777 == 0o600
    journal_path = tmp_path / "journal.sqlite"
    async with await Journal.open(journal_path) as journal:
        await journal.enqueue(None, "online", {})
    before = journal_path.read_bytes()
    with pytest.raises(RegistryError, match="not a registry"):
        await Registry.open(str(journal_path))
    assert journal_path.read_bytes() == before
    async with await Journal.open(journal_path):
        pass


@pytest.mark.parametrize(
    "url", ["postgresql://flightctl:secret@db/flightctl", "postgres://u:p@127.0.0.1:5432/x", "postgresql://:p@db/x"]
)
async def test_a_database_password_in_a_url_is_refused_before_connecting(url: str) -> None:
    with pytest.raises(ConfigError, match="password") as refused:
        await Registry.open(url)
    assert "secret" not in str(refused.value)


async def test_dead_letters_are_kept_up_to_a_cap_the_oldest_going_first(tmp_path: Path) -> None:
    """Test that the registry keeps only the newest dead letters once past its cap, so months of hostile
    messages cannot grow it without end, and that what it keeps is the newest, newest first."""
    async with await Registry.open(str(tmp_path / "r.sqlite")) as registry:
        registry.keep_dead_letters = 5
        start = datetime(2026, 11, 30, tzinfo=UTC)
        for n in range(12):
            letter = DeadLetter(start + timedelta(seconds=n), f"flightctl/v1/drone-a/events/{n}", "drone-a", "bad", "x")
            await registry.keep_dead_letter("relay-1", letter)
        kept = await registry.dead_letters(limit=100)
    assert [row["topic"].rsplit("/", 1)[1] for row in kept] == ["11", "10", "9", "8", "7"]


# The statuses table as registries made before island legs have it (no place column).
OLD_ORDERS = """CREATE TABLE orders (
    order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, drone_id TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,
    created_utc TEXT NOT NULL, expires_utc TEXT NOT NULL)"""
OLD_STATUSES = """CREATE TABLE statuses (
    order_id TEXT NOT NULL, status TEXT NOT NULL, drone_id TEXT NOT NULL, seq BIGINT NOT NULL,
    at_utc TEXT NOT NULL, message TEXT NOT NULL, eta_utc TEXT, PRIMARY KEY (order_id, status))"""


async def test_a_registry_from_before_legs_gains_the_airstrip_and_keeps_its_statuses(tmp_path: Path) -> None:
    """Test that a registry written before island legs and site time zones (no place, no timezone column) is
    opened as it is: its orders and statuses read back unchanged (no airstrip, the relay's zone), and what is
    stored after names its airstrip and its site's zone."""
    import sqlite3

    path = tmp_path / "registry.sqlite"
    db = sqlite3.connect(path)
    db.execute(OLD_ORDERS)
    db.execute(
        "INSERT INTO orders VALUES ('KWL-1', 'customer-0', 'drone-a', $1, '2026-11-30T09:00:00Z', '2099-01-01T00:00:00Z')",
        (token_hash("old-token"),),
    )
    db.execute(OLD_STATUSES)
    db.execute(
        "INSERT INTO statuses VALUES ('KWL-1', 'DELIVERED', 'drone-a', 7, '2026-11-30T10:00:00Z', 'delivered', NULL)"
    )
    db.commit()
    db.close()
    async with await Registry.open(str(path)) as registry:
        (old,) = await registry.statuses("KWL-1")
        assert (old.status, old.step, old.place) == (CustomerStatus.DELIVERED, "delivered", None)
        tracked = await registry.tracked_order("old-token")
        assert tracked is not None
        assert (tracked.order_id, tracked.zone) == ("KWL-1", None), "shown in the relay's zone"
        token = await registry.register("NRL-1", "customer-1", "drone-p", timezone="Europe/London")
        assert (await registry.tracked_order(token)) == TrackedOrder("NRL-1", ZoneInfo("Europe/London"))
        arrived = StatusUpdate(
            CustomerStatus.DELIVERED, datetime(2026, 12, 1, 10, tzinfo=UTC), Step.ARRIVED_AT_AIRSTRIP,
            place="North Ronaldsay",
        )  # fmt: skip
        assert await registry.record("drone-p", 5, "NRL-1", arrived)
        (shown,) = await registry.statuses("NRL-1")
        assert (shown.step, shown.place) == ("arrived_at_airstrip", "North Ronaldsay")
    async with await Registry.open(str(path)) as again:  # opened again: the column is not added twice
        assert [s.place for s in await again.statuses("NRL-1")] == ["North Ronaldsay"]
