"""The tracking page's status snapshots: a view of an unchanged order reads nothing from the database, and a
change by any relay (SQLite: this one; PostgreSQL: any, through LISTEN) is on the next view. When the notices
may have been missed (the listening connection killed), nothing is kept until they are back."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import asyncpg

from flightctl.ground.customer_status import CustomerStatus
from flightctl.ground.registry import Registry, ShownStatus
from flightctl.ground.relay import StatusRelay
from flightctl.ground.status_snapshots import StatusSnapshots
from flightctl.mqtt.broker import Message
from flightctl.mqtt.endpoint import BrokerEndpoint
from sitl.postgres import PostgresServer
from tests.ground.conftest import require_program
from tests.support.conditions import eventually, eventually_true

DRONE = "drone-a"
TOPIC = f"flightctl/v1/drones/{DRONE}/events"
NOWHERE = [BrokerEndpoint.from_url("mqtt://127.0.0.1:1")]  # relays here are handed messages, never connect


def event(seq: int, state: str, detail: dict[str, object] | None = None) -> Message:
    document = {
        "schema": 1, "drone": DRONE, "seq": seq, "time": "2026-12-01T10:00:00.000Z", "time_source": "gps",
        "type": "state", "order_id": "KWL-1", "data": {"state": state, "detail": detail or {}},
    }  # fmt: skip
    return Message(TOPIC, json.dumps(document).encode(), qos=1, retain=False, mid=seq)


def counting(
    read: Callable[[str], Awaitable[list[ShownStatus]]],
) -> tuple[list[str], Callable[..., Awaitable[list[ShownStatus]]]]:
    """``read``, recording each order it was asked for: what reached the database."""
    asked: list[str] = []

    async def counted(order_id: str) -> list[ShownStatus]:
        asked.append(order_id)
        return await read(order_id)

    return asked, counted


async def kill_the_listener(url: str) -> None:
    """End the relay's LISTEN connection from the server's side, as a restart or a network fault would."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' OR query = 'SELECT 1'"
        )
    finally:
        await connection.close()


async def shown(snapshots: StatusSnapshots) -> list[CustomerStatus]:
    return [s.status for s in await snapshots.statuses("KWL-1")]


async def test_on_sqlite_a_view_of_an_unchanged_order_reads_nothing_and_a_change_is_on_the_next_view(
    tmp_path: Path,
) -> None:
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        await registry.register("KWL-1", "customer-1", DRONE)
        relay = StatusRelay(registry, NOWHERE, name="relay-1")
        asked, read = counting(registry.statuses)
        snapshots = StatusSnapshots(read)
        assert [await shown(snapshots), await shown(snapshots)] == [[], []]
        assert len(asked) == 2, "not following changes: nothing is kept"

        async with registry.following_changes(snapshots.changed, snapshots.set_live):
            await relay.handle(event(1, "ENROUTE", {"outbound_time_s": 120.0}))
            for _ in range(5):
                assert await shown(snapshots) == [CustomerStatus.DEPARTED]
            assert len(asked) == 3, "five views, one read"
            await relay.handle(event(2, "RELEASED"))
            assert await shown(snapshots) == [CustomerStatus.DEPARTED, CustomerStatus.DELIVERED]
            assert len(asked) == 4
        assert not snapshots.live
        await shown(snapshots)
        assert len(asked) == 5, "the block ended: nothing is kept"


async def test_a_read_that_a_change_overtook_is_not_kept(tmp_path: Path) -> None:
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        await registry.register("KWL-1", "customer-1", DRONE)
        relay = StatusRelay(registry, NOWHERE, name="relay-1")
        snapshots: StatusSnapshots

        async def read_then_change(order_id: str) -> list[ShownStatus]:
            before = await registry.statuses(order_id)
            if not before:
                await relay.handle(event(1, "ENROUTE", {"outbound_time_s": 120.0}))  # lands while the page reads
            return before

        snapshots = StatusSnapshots(read_then_change)
        async with registry.following_changes(snapshots.changed, snapshots.set_live):
            assert await shown(snapshots) == []
            assert await shown(snapshots) == [CustomerStatus.DEPARTED], "the stale read was not kept"


async def test_on_postgresql_another_relays_change_reaches_the_page_and_a_lost_listener_keeps_nothing() -> None:
    require_program("/usr/lib/postgresql", "postgresql")
    async with PostgresServer() as pg, await Registry.open(pg.url) as ours, await Registry.open(pg.url) as theirs:
        await ours.register("KWL-1", "customer-1", DRONE)
        other_relay = StatusRelay(theirs, NOWHERE, name="relay-2")
        asked, read = counting(ours.statuses)
        snapshots = StatusSnapshots(read)
        said: list[bool] = []  # every live/lost the follower reported: it may lose and regain within milliseconds

        def set_live(live: bool) -> None:
            said.append(live)
            snapshots.set_live(live)

        async with ours.following_changes(snapshots.changed, set_live):
            await eventually(lambda: snapshots.live, timeout_s=10)
            assert [await shown(snapshots), await shown(snapshots)] == [[], []]
            assert len(asked) == 1

            await other_relay.handle(event(1, "ENROUTE", {"outbound_time_s": 120.0}))  # taken by the other relay

            async def departed() -> bool:
                return await shown(snapshots) == [CustomerStatus.DEPARTED]

            await eventually_true(departed, timeout_s=10, every_s=0.05)

            await kill_the_listener(pg.url)  # what it would have heard is unknown
            await eventually(lambda: False in said, timeout_s=15)
            reads = len(asked)
            assert await shown(snapshots) == [CustomerStatus.DEPARTED]
            assert len(asked) == reads + 1, "the lost listener dropped the snapshot: the view read again"
            await eventually(lambda: snapshots.live, timeout_s=30)
            assert (said[-1], said.count(True)) == (True, 2), "listening again on a new connection"
            await other_relay.handle(event(2, "RELEASED"))

            async def delivered() -> bool:
                return CustomerStatus.DELIVERED in await shown(snapshots)

            await eventually_true(delivered, timeout_s=10, every_s=0.05)


async def test_on_postgresql_a_token_is_looked_up_once_and_goes_when_its_order_is_forgotten_anywhere() -> None:
    """Test the token side of the snapshots on PostgreSQL: repeat views of a live token ask the registry once; a
    wrong token is asked every time (a guess is never kept); the order forgotten through another registry (as
    dispatch does when it cannot send an order) makes the token unknown on this relay's next views; a token
    past its expiry is refused without asking; a lost listener keeps no token."""
    require_program("/usr/lib/postgresql", "postgresql")
    async with PostgresServer() as pg, await Registry.open(pg.url) as ours, await Registry.open(pg.url) as dispatch:
        assert ours.notices_cover_orders
        token = await dispatch.register("KWL-1", "customer-1", DRONE)
        other = await dispatch.register("KWL-2", "customer-2", DRONE)
        snapshots = StatusSnapshots(ours.statuses, lookup=ours.tracked_order)
        said: list[bool] = []  # the follower may lose and regain its connection within milliseconds

        def set_live(live: bool) -> None:
            said.append(live)
            snapshots.set_live(live)

        async with ours.following_changes(snapshots.changed, set_live):
            await eventually(lambda: snapshots.live, timeout_s=10)
            found = [await snapshots.tracked_order(token) for _ in range(5)]
            assert {order.order_id if order else None for order in found} == {"KWL-1"}
            assert snapshots.lookups == 1, "five views, one look-up"
            assert (await snapshots.tracked_order(other)) is not None
            assert snapshots.lookups == 2

            for _ in range(3):
                assert await snapshots.tracked_order("not-a-token") is None
            assert snapshots.lookups == 5, "a wrong token is asked every time"

            await dispatch.forget("KWL-1")  # another process: only the notice can tell this relay

            async def unknown() -> bool:
                return await snapshots.tracked_order(token) is None

            await eventually_true(unknown, timeout_s=10, every_s=0.05)
            assert (await snapshots.tracked_order(other)) is not None, "only the forgotten order's token went"

            short = await dispatch.register("KWL-3", "customer-3", DRONE, ttl=timedelta(seconds=2))
            assert (await snapshots.tracked_order(short)) is not None
            asked = snapshots.lookups

            async def expired() -> bool:
                return await snapshots.tracked_order(short) is None

            await eventually_true(expired, timeout_s=10, every_s=0.1)
            assert snapshots.lookups == asked, "the kept expiry refused it, with no look-up"

            await kill_the_listener(pg.url)
            await eventually(lambda: False in said, timeout_s=15)
            asked = snapshots.lookups
            assert (await snapshots.tracked_order(other)) is not None
            assert snapshots.lookups == asked + 1, "the lost listener dropped the kept token: the view asked again"


async def test_on_sqlite_no_token_is_kept(tmp_path: Path) -> None:
    """Test that a SQLite registry says its notices do not cover orders forgotten (dispatch forgets them in a
    process of its own), which is what keeps the relay from keeping tokens there."""
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        assert not registry.notices_cover_orders


async def test_on_postgresql_hostile_tokens_are_unknown_and_the_next_view_is_served() -> None:
    """Test hostile look-ups through the kept tokens: NUL bytes, a megabyte, deep brackets, NaN and numbers as
    text, non-ASCII: each is an unknown token (nothing kept), and the live token's next view is served."""
    require_program("/usr/lib/postgresql", "postgresql")
    async with PostgresServer() as pg, await Registry.open(pg.url) as registry:
        token = await registry.register("KWL-1", "customer-1", DRONE)
        snapshots = StatusSnapshots(registry.statuses, lookup=registry.tracked_order)
        async with registry.following_changes(snapshots.changed, snapshots.set_live):
            await eventually(lambda: snapshots.live, timeout_s=10)
            hostile = ["\0", "x" * 1_000_000, "[" * 10_000, "NaN", "1e999", "-0", "ñ\u202e💥", token + "\0", ""]
            for bad in hostile:
                assert await snapshots.tracked_order(bad) is None
            found = await snapshots.tracked_order(token)
            assert found is not None
            assert found.order_id == "KWL-1"
            assert snapshots.lookups == len(hostile) + 1, "no hostile token was kept"
