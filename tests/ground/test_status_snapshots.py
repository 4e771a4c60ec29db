"""The tracking page's status snapshots: a view of an unchanged order reads nothing from the database, and a
change by any relay (SQLite: this one; PostgreSQL: any, through LISTEN) is on the next view. When the notices
may have been missed (the listening connection killed), nothing is kept until they are back."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
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

            connection = await asyncpg.connect(pg.url)
            try:  # the listening connection killed: what it would have heard is unknown
                await connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' OR query = 'SELECT 1'"
                )
            finally:
                await connection.close()
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
