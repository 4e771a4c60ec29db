"""An active pair of brokers, two real mosquittos with the same accounts and nothing shared: the daemon's broker
link on one at a time and moving to the other when it stops; a relay reading both into one registry; dispatch
sending through both. Nothing lost, nothing kept twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flightctl.daemon.mqtt_link import BrokerLink
from flightctl.daemon.outbox_pump import OutboxPump
from flightctl.daemon.settings import BrokerSection, TelemetrySection
from flightctl.daemon.telemetry_feed import TelemetrySampler
from flightctl.delivery.journal import Journal
from flightctl.ground.dispatch import send_order
from flightctl.ground.registry import Registry
from flightctl.ground.relay import StatusRelay
from flightctl.mqtt.broker import BrokerUnavailable, json_properties
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from flightctl.vehicle.telemetry import VehicleState
from sitl.mosquitto import Mosquitto
from tests.mqtt.clients import collecting, endpoint
from tests.mqtt.conftest import ACCOUNTS, DRONE, require_mosquitto
from tests.mqtt.test_inbound_acks import Desk
from tests.sitl.daemon_support import relaying
from tests.sitl.deliveries import order
from tests.support.conditions import eventually, eventually_true

pytestmark = pytest.mark.mqtt
TOPICS = Topics(DRONE)
FAILOVER_BOUND_S = 10.0  # the bound: every aircraft on the other broker within it


@dataclass
class Pair:
    a: Mosquitto
    b: Mosquitto


@contextlib.asynccontextmanager
async def broker_pair(folder: Path) -> AsyncIterator[Pair]:
    require_mosquitto()
    async with (
        Mosquitto(folder / "a", accounts=dict(ACCOUNTS)) as a,
        Mosquitto(folder / "b", accounts=dict(ACCOUNTS)) as b,
    ):
        yield Pair(a, b)


@contextlib.asynccontextmanager
async def linked(pair: Pair, journal: Journal) -> AsyncIterator[tuple[BrokerLink, Desk]]:
    """The daemon's broker side on the pair, A first, as `flightctl run` composes it."""
    desk = Desk(dies_before_recording=False)
    link = BrokerLink(
        DRONE,
        [endpoint(pair.a, DRONE), endpoint(pair.b, DRONE)],
        BrokerSection(url=pair.a.url, peer_urls=[pair.b.url], reconnect_min_s=0.2, reconnect_max_s=1),
        TelemetrySection(),
        worker=desk,
        pump=OutboxPump(journal, TOPICS, publish_timeout_s=5),
        sampler=TelemetrySampler(VehicleState, desk.status, rate_hz=1, size=10),
        clock=journal.clock,
    )
    journal.on_outbox = link.outbox_wake.set
    task = asyncio.create_task(link.run())
    try:
        yield link, desk
    finally:
        task.cancel()
        await asyncio.wait({task})


async def events(journal: Journal, first: int, count: int) -> None:
    for n in range(first, first + count):
        await journal.enqueue(
            "KWL-F1", "command_result", {"request_id": f"r-{n}", "command": "status", "ok": True, "result": "status"}
        )


async def test_a_broker_stopping_moves_the_drone_to_its_peer_and_the_relay_keeps_every_event_once(
    tmp_path: Path,
) -> None:
    """Test the pair: the drone's link on A, events through A into the registry by a relay reading both; A
    stopped: the link is on B within 10 s, the events written meanwhile arrive through B; A back and B stopped:
    back on A. The registry holds each of the 60 events once, none missing, whatever was sent twice."""
    async with (
        broker_pair(tmp_path) as pair,
        await Journal.open(tmp_path / "journal.sqlite") as journal,
        await Registry.open(str(tmp_path / "registry.sqlite")) as registry,
        relaying(
            StatusRelay(registry, [endpoint(pair.a, "ground"), endpoint(pair.b, "ground")], name="relay-1")
        ) as relay,
        linked(pair, journal) as (link, _desk),
    ):
        a_at = f"127.0.0.1:{pair.a.port}"

        async def held(count: int) -> bool:
            drones = await registry.drones()
            return bool(drones) and drones[0]["events"] == count

        await eventually(lambda: link.connected, timeout_s=10)
        assert link.endpoint.port == pair.a.port
        await events(journal, 1, 20)
        await eventually_true(lambda: held(20), timeout_s=20)

        stopped = time.monotonic()
        await pair.a.stop()
        await events(journal, 21, 20)  # written while the drone is between brokers
        await eventually(lambda: link.connected and link.endpoint.port == pair.b.port, timeout_s=FAILOVER_BOUND_S)
        assert time.monotonic() - stopped < FAILOVER_BOUND_S
        await eventually_true(lambda: held(40), timeout_s=20)

        relay_on_a = relay.stats.connections_by_broker[a_at]
        await pair.a.start()
        await pair.b.stop()  # the drone may be back on A before the relay: A's restored session holds its events
        await events(journal, 41, 20)
        await eventually(lambda: link.connected and link.endpoint.port == pair.a.port, timeout_s=FAILOVER_BOUND_S)
        await eventually_true(lambda: held(60), timeout_s=20)
        await pair.b.start()
        assert relay.stats.connections_by_broker[a_at] > relay_on_a, "the relay reads A again"

        assert await registry.missing_events(DRONE) == []
        drones = await registry.drones()
        assert (drones[0]["events"], drones[0]["last_seq"], drones[0]["missing"]) == (60, 60, 0)
        assert await journal.outbox_backlog() == 0
        assert link.status()["broker_failovers"] >= 2


async def test_dispatch_sends_through_every_broker_that_is_up_and_takes_the_answer_from_either(
    tmp_path: Path,
) -> None:
    """Test dispatch on the pair: with both up the order is on both (the drone's daemon, on A, takes it once:
    the copy on B is a repeat); with A down it goes through B alone and the answer comes back; with both down it
    says no broker could be reached."""
    async with broker_pair(tmp_path) as pair, collecting(pair.b, TOPICS.orders, user="ground") as on_b:
        ends = [endpoint(pair.a, "ground"), endpoint(pair.b, "ground")]
        answering = asyncio.create_task(answer_orders(pair.b))
        try:
            answer = await send_order(ends, DRONE, order("kirkwall-1500m-place"), wind=None, timeout_s=20)
            assert answer.type is MessageType.ORDER_ACCEPTED
            await on_b.wait_for(1)

            await pair.a.stop()
            answer = await send_order(ends, DRONE, order("kirkwall-1200m-height"), wind=None, timeout_s=20)
            assert answer.type is MessageType.ORDER_ACCEPTED
            await on_b.wait_for(2)
        finally:
            answering.cancel()
            await asyncio.wait({answering})
        await pair.b.stop()
        with pytest.raises(BrokerUnavailable, match="no broker could be reached"):
            await send_order(ends, DRONE, order("kirkwall-1500m-place"), wind=None, timeout_s=5)


async def answer_orders(broker: Mosquitto) -> None:
    """The drone's side on B, as far as answering goes: each order accepted on its events topic."""
    from flightctl.mqtt.broker import make_client
    from flightctl.mqtt.consumer import read_envelope

    async with make_client(endpoint(broker, DRONE), client_id=f"flightctl-{DRONE}") as client:
        await client.subscribe(TOPICS.orders, qos=1)
        seq = 0
        async for message in client.messages:
            request = read_envelope(message.payload)
            seq += 1
            answer = Envelope(
                drone=DRONE, seq=seq, time=request.time, time_source=TimeSource.COMPANION,
                type=MessageType.ORDER_ACCEPTED, order_id=request.order_id,
                data={"request_id": request.data["request_id"]},
            )  # fmt: skip
            await client.publish_confirmed(TOPICS.events, answer.to_json(), timeout_s=5, properties=json_properties())
