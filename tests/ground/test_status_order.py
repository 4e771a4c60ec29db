"""Two relays racing on one PostgreSQL registry: whichever of them writes first, each order's statuses are the
ones its events make in the drone's sequence order, the same as one relay taking them in order would keep."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flightctl.ground.customer_status import CustomerStatus, Step, customer_update
from flightctl.ground.registry import Registry
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource
from flightctl.mqtt.dead_letters import DeadLetter
from sitl.postgres import PostgresServer
from tests.ground.conftest import require_program

pytestmark = pytest.mark.mqtt
ORDERS = 40
START = datetime(2026, 11, 30, 10, tzinfo=UTC)


def aborted_delivery(drone: str, order_id: str, first_seq: int) -> list[Envelope]:
    """An order that sets off, turns back with its parcel and lands at the depot: PROBLEM twice (turning back,
    then back at the depot); the customer's PROBLEM is the first of them, when the trouble began."""
    steps: list[tuple[MessageType, dict[str, Any]]] = [
        (MessageType.ORDER_ACCEPTED, {"request_id": f"r-{order_id}"}),
        (MessageType.STATE, {"state": "ENROUTE", "detail": {"outbound_time_s": 120}}),
        (MessageType.STATE, {"state": "ABORTING", "detail": {"with_parcel": True}}),
        (MessageType.STATE, {"state": "RETURNING", "detail": {}}),
        (MessageType.STATE, {"state": "LANDED", "detail": {"released": False}}),
    ]
    return [
        Envelope(
            drone=drone,
            seq=first_seq + n,
            time=START + timedelta(minutes=n),
            time_source=TimeSource.GPS,
            type=type_,
            order_id=order_id,
            data=data,
        )
        for n, (type_, data) in enumerate(steps)
    ]


async def take(registry: Registry, events: list[Envelope]) -> None:
    for event in events:
        assert event.seq is not None
        await registry.record(event.drone, event.seq, event.order_id, customer_update(event))


async def test_two_relays_racing_keep_each_orders_statuses_in_sequence_order() -> None:
    """Test two registries (two relays' connection pools) on one PostgreSQL: for each order, one relay takes the
    landing (the later PROBLEM) before the other takes the turn back (the earlier one), for half of them in a
    set order and for the rest as they race. Every order shows ACCEPTED, DEPARTED, PROBLEM, the PROBLEM being
    the turn back at its own time and sequence number, as one relay taking them in order would show."""
    require_program("/usr/lib/postgresql", "postgresql")
    async with PostgresServer() as pg, await Registry.open(pg.url) as one, await Registry.open(pg.url) as two:
        deliveries = {}
        for n in range(ORDERS):
            order_id = f"KWL-R{n:02d}"
            await one.register(order_id, f"customer-{n}", "drone-r")
            deliveries[order_id] = aborted_delivery("drone-r", order_id, first_seq=1 + 5 * n)
        rng = random.Random(6)
        for n, events in enumerate(deliveries.values()):
            early, late = events[:3], events[3:]  # the turn back is early[2], the landing late[1]
            if n % 2 == 0:  # the later PROBLEM first, for certain
                await take(two, late)
                await take(one, early)
            else:
                shuffled = rng.sample(events, len(events))
                await asyncio.gather(take(one, shuffled[::2]), take(two, shuffled[1::2]))
        for order_id, events in deliveries.items():
            shown = await two.statuses(order_id)
            assert [s.status for s in shown] == [
                CustomerStatus.ACCEPTED, CustomerStatus.DEPARTED, CustomerStatus.PROBLEM,
            ], order_id  # fmt: skip
            assert [s.seq for s in shown] == [e.seq for e in events[:3]], order_id
            problem = shown[-1]
            assert problem.step == Step.RETURNING, order_id
            assert problem.at_utc == "2026-11-30T10:02:00Z", order_id


async def test_dead_letters_on_postgresql_are_capped_the_oldest_going_first() -> None:
    """Test the dead-letter cap on PostgreSQL (the fleet's registry): past it the oldest go, the newest stay."""
    require_program("/usr/lib/postgresql", "postgresql")
    async with PostgresServer() as pg, await Registry.open(pg.url) as registry:
        registry.keep_dead_letters = 3
        for n in range(8):
            letter = DeadLetter(START + timedelta(seconds=n), f"flightctl/v1/drone-r/events/{n}", "drone-r", "bad", "x")
            await registry.keep_dead_letter("relay-1", letter)
        kept = await registry.dead_letters(limit=100)
    assert [row["topic"].rsplit("/", 1)[1] for row in kept] == ["7", "6", "5"]


async def test_a_postgresql_registry_from_before_legs_gains_the_airstrip_and_keeps_its_statuses() -> None:
    """Test the same migration on PostgreSQL: a statuses table without the place column, with a row in it, is
    opened by two registries at once; the row reads back unchanged and a leg's arrival names its airstrip."""
    import asyncpg

    from tests.unit.test_registry import OLD_ORDERS, OLD_STATUSES

    require_program("/usr/lib/postgresql", "postgresql")
    async with PostgresServer() as pg:
        connection = await asyncpg.connect(pg.url)
        try:
            await connection.execute(OLD_ORDERS)
            await connection.execute(OLD_STATUSES)
            await connection.execute(
                "INSERT INTO statuses VALUES ('KWL-1', 'DELIVERED', 'drone-a', 7, '2026-11-30T10:00:00Z', "
                "'delivered', NULL)"
            )
        finally:
            await connection.close()
        async with await Registry.open(pg.url) as one, await Registry.open(pg.url) as two:
            (old,) = await one.statuses("KWL-1")
            assert (old.step, old.place) == ("delivered", None)
            token = await two.register("NRL-1", "customer-1", "drone-p", timezone="Europe/London")
            tracked = await one.tracked_order(token)
            assert tracked is not None
            assert str(tracked.zone) == "Europe/London"
            arrival = Envelope(
                drone="drone-p", seq=5, time=START, time_source=TimeSource.GPS, type=MessageType.STATE,
                order_id="NRL-1", data={"state": "ARRIVED", "detail": {"airstrip": "North Ronaldsay", "runway": "03"}},
            )  # fmt: skip
            await take(two, [arrival])
            (shown,) = await one.statuses("NRL-1")
            assert (shown.status, shown.step, shown.place) == (
                CustomerStatus.DELIVERED, Step.ARRIVED_AT_AIRSTRIP.value, "North Ronaldsay"
            )  # fmt: skip


async def test_relays_racing_on_postgresql_keep_one_logbook_chain_that_refuses_change_and_names_tampering() -> None:
    """Test the logbook on PostgreSQL: two registries (two relays) adding 30 flight records of one aircraft at
    once keep one unbroken chain; the database refuses to change or delete a record; with its trigger dropped by
    the database's owner, an edit, a deletion and a swap are each named by verify."""
    import asyncpg

    from flightctl.ground.logbook import GENESIS, LogbookGround, verify

    require_program("/usr/lib/postgresql", "postgresql")
    ground = LogbookGround(operator_id="GBR-OP-4711", remote_pilot="A. Flett", operation="BVLOS").for_drone("d-1")
    record = {"takeoff_utc": "2026-12-01T10:00:00Z", "landing_utc": "2026-12-01T10:10:00Z", "duration_s": 600.0}
    async with PostgresServer() as pg, await Registry.open(pg.url) as one, await Registry.open(pg.url) as two:
        await asyncio.gather(*(
            (one if n % 2 else two).record("d-1", n, f"KWL-{n}", None, (record, ground)) for n in range(1, 31)
        ))  # fmt: skip
        rows = await one.logbook("d-1")
        assert [row.n for row in rows] == list(range(1, 31))
        assert rows[0].prev_sha256 == GENESIS
        assert verify(rows) == []

        connection = await asyncpg.connect(pg.url)
        try:
            for statement in ("UPDATE logbook SET ground = '{}' WHERE n = 5", "DELETE FROM logbook WHERE n = 5"):
                with pytest.raises(asyncpg.RaiseError, match="logbook records are never changed, and kept three"):
                    await connection.execute(statement)
            await connection.execute("DROP TRIGGER logbook_keep ON logbook")
            await connection.execute("UPDATE logbook SET ground = replace(ground, 'BVLOS', 'VLOS') WHERE n = 5")
            assert [(b.n, b.problem.split(":")[0]) for b in verify(await one.logbook())] == [(5, "edited")]
            await connection.execute("UPDATE logbook SET ground = replace(ground, '\"VLOS', '\"BVLOS') WHERE n = 5")
            assert verify(await one.logbook()) == []
            swap = ("UPDATE logbook SET n = -n WHERE n IN (20, 21)", "UPDATE logbook SET n = 21 WHERE n = -20",
                    "UPDATE logbook SET n = 20 WHERE n = -21")  # fmt: skip
            for statement in swap:
                await connection.execute(statement)
            assert [b.n for b in verify(await one.logbook())] == [20], "the swapped pair, from its first"
            for statement in swap:  # swapped back
                await connection.execute(statement)
            assert verify(await one.logbook()) == []
            await connection.execute("DELETE FROM logbook WHERE n = 12")
            assert [b.n for b in verify(await one.logbook())] == [13]
        finally:
            await connection.close()


async def test_the_crews_entries_racing_the_relays_on_postgresql_join_the_one_chain() -> None:
    """Test defects and repairs on PostgreSQL: entered while two relays add flight records of the same aircraft,
    every row links to the one before it; the open defects are read back, a repair closes one, and a repair of a
    flight is refused."""
    from flightctl.ground.logbook import MaintenanceEntry, NotOpen, verify

    require_program("/usr/lib/postgresql", "postgresql")
    record = {"takeoff_utc": "2026-12-01T10:00:00Z", "landing_utc": "2026-12-01T10:10:00Z", "duration_s": 600.0}

    def defect(n: int) -> MaintenanceEntry:
        return MaintenanceEntry(entry="defect", text=f"defect {n}", by="J. Rendall", at_utc="2026-12-02T04:00:00Z")

    async with PostgresServer() as pg, await Registry.open(pg.url) as one, await Registry.open(pg.url) as two:
        await asyncio.gather(
            *((one if n % 2 else two).record("d-1", n, f"KWL-{n}", None, (record, {})) for n in range(1, 11)),
            *((two if n % 2 else one).add_maintenance("d-1", defect(n)) for n in range(3)),
        )
        rows = await one.logbook("d-1")
        assert [row.n for row in rows] == list(range(1, 14))
        assert verify(rows) == []
        defects = await two.open_defects("d-1")
        assert sorted(row.kept()["text"] for row in defects) == ["defect 0", "defect 1", "defect 2"]
        flight = next(row.n for row in rows if row.entry == "flight")
        with pytest.raises(NotOpen, match=f"record {flight} of d-1 is not an open defect"):
            await one.add_maintenance("d-1", MaintenanceEntry(
                entry="repair", text="x", by="J. Rendall", at_utc="2026-12-02T05:00:00Z", defect_n=flight))  # fmt: skip
        await one.add_maintenance("d-1", MaintenanceEntry(
            entry="repair", text="done", by="J. Rendall", at_utc="2026-12-02T05:00:00Z", defect_n=defects[0].n))  # fmt: skip
        assert [row.n for row in await two.open_defects("d-1")] == [row.n for row in defects[1:]]
        assert verify(await two.logbook("d-1")) == []
