"""Two `flightctl relay` processes in one shared-subscription group on one real PostgreSQL registry and the shipped
broker config: 250 events from
each of 200 drones (50,000 events), one relay SIGKILLed half way and started again (as systemd would): every
customer gets every status of its order once and in order, and no event is lost or taken twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from flightctl.ground.broker_accounts import AccountKind
from flightctl.ground.registry import Registry
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from sitl.postgres import PostgresServer
from sitl.relay_process import RelayProcess
from tests.ground.conftest import Fleet
from tests.support.conditions import eventually, eventually_true

pytestmark = pytest.mark.mqtt

# 200 drones, 50,000 events (about a minute here); FLIGHTCTL_RELAY_SCALE_DRONES sets fewer for a quick look.
DRONES = int(os.environ.get("FLIGHTCTL_RELAY_SCALE_DRONES", "200"))
ORDERS_PER_DRONE = 25
DELIVERY = [
    ("state", "PREFLIGHT"), ("order_accepted", None), ("state", "UPLOADING"), ("state", "ARMING"),
    ("state", "ENROUTE"), ("state", "ON_STATION"), ("state", "RELEASING"), ("state", "RELEASED"),
    ("state", "RETURNING"), ("state", "LANDED"),
]  # fmt: skip
EVENTS = DRONES * ORDERS_PER_DRONE * len(DELIVERY)  # 250 a drone


def drone_events(drone: str) -> list[bytes]:
    payloads, seq = [], 0
    for n in range(ORDERS_PER_DRONE):
        order_id = f"{drone}-o{n:02d}"
        for type_, state in DELIVERY:
            seq += 1
            data = {"state": state, "detail": {"released": True}} if state else {"request_id": f"r{seq}"}
            payloads.append(
                Envelope(
                    drone=drone,
                    seq=seq,
                    time=datetime.now(UTC),
                    time_source=TimeSource.GPS,
                    type=MessageType(type_),
                    order_id=order_id,
                    data=data,
                ).to_json()
            )
    return payloads


@contextlib.asynccontextmanager
async def relays(fleet: Fleet, tmp_path: Path, registry_url: str) -> AsyncIterator[tuple[RelayProcess, RelayProcess]]:
    one, two = (
        RelayProcess(
            tmp_path / name,
            name,
            broker_url=fleet.broker.url,
            ca_file=fleet.broker.ca_file,
            password=fleet.passwords[name],
            registry_url=registry_url,
            share_group="relay",  # dividing the events between them (the default is each reading every one)
        )
        for name in ("relay-1", "relay-2")
    )
    try:
        await one.start()
        await two.start()
        yield one, two
    finally:
        await one.stop()
        await two.stop()


async def count(pg: str, sql: str) -> int:
    connection = await asyncpg.connect(pg)
    try:
        return int(await connection.fetchval(sql))
    finally:
        await connection.close()


async def test_two_relays_share_every_event_and_survive_a_kill(fleet: Fleet, tmp_path: Path) -> None:
    drones = [f"sim-{n:03d}" for n in range(DRONES)]
    for drone in drones:
        assert fleet.accounts is not None
        fleet.passwords[drone] = await fleet.accounts.add(drone, AccountKind.DRONE)
    await fleet.broker.restart()
    async with PostgresServer() as pg:
        async with await Registry.open(pg.url) as registry:
            for drone in drones:
                for n in range(ORDERS_PER_DRONE):
                    await registry.register(f"{drone}-o{n:02d}", f"customer-{drone}-{n}", drone)
        async with relays(fleet, tmp_path, pg.url) as (one, two):
            published = 0

            async def fly(drone: str) -> None:
                nonlocal published
                async with fleet.client(drone) as client:
                    for payload in drone_events(drone):
                        await client.publish_confirmed(Topics(drone).events, payload, timeout_s=30)
                        published += 1

            flights = asyncio.gather(*(fly(d) for d in drones))
            await eventually(lambda: published >= EVENTS // 2, timeout_s=300)
            await one.kill()
            await one.start()
            await flights
            seen_sql = "SELECT count(*) FROM seen_events"

            async def all_seen() -> bool:
                return await count(pg.url, seen_sql) >= EVENTS

            await eventually_true(all_seen, timeout_s=600, every_s=0.5)
            taken_one, taken_two = await one.taken() or 0, await two.taken() or 0
        assert await count(pg.url, seen_sql) == EVENTS
        assert await count(pg.url, "SELECT count(*) FROM statuses") == DRONES * ORDERS_PER_DRONE * 4
        assert taken_two > 0
        assert taken_one > 0, "the relay started again took its share"
        async with await Registry.open(pg.url) as registry:
            for drone in drones[:: max(1, DRONES // 20)]:
                assert await registry.missing_events(drone) == []
            for drone in drones:
                for n in range(0, ORDERS_PER_DRONE, 6):
                    shown = [s.status.value for s in await registry.statuses(f"{drone}-o{n:02d}")]
                    assert shown == ["ACCEPTED", "DEPARTED", "ARRIVING", "DELIVERED"], (drone, n, shown)
