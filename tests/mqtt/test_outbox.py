"""The outbox against a real mosquitto: in order, marked sent only on an accepting PUBACK, nothing lost through
a broker outage, a refusal seen for what it is."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flightctl.daemon.outbox_pump import OutboxPump
from flightctl.delivery.events import DeliveryState
from flightctl.delivery.journal import Journal
from flightctl.mqtt.broker import BrokerRefused, MqttClient, keep_connected, make_client
from flightctl.mqtt.contract import Topics
from sitl.mosquitto import Mosquitto
from tests.mqtt.clients import collecting, endpoint
from tests.mqtt.conftest import ACCOUNTS, DRONE, require_mosquitto
from tests.support.conditions import eventually

pytestmark = pytest.mark.mqtt
TOPICS = Topics(DRONE)


@contextlib.asynccontextmanager
async def pumping(broker: Mosquitto, journal: Journal, *, user: str = DRONE) -> AsyncIterator[OutboxPump]:
    """The outbox pump, kept connected as the daemon keeps it (fresh client per connection, backoff)."""
    pump = OutboxPump(journal, TOPICS, publish_timeout_s=5, refused_retry_s=0.5)
    wake = asyncio.Event()
    journal.on_outbox = wake.set
    wake.set()
    ep = endpoint(broker, user)

    def new_client() -> MqttClient:
        return make_client(ep, client_id=f"flightctl-{DRONE}", session_expiry_s=3600)

    task = asyncio.create_task(keep_connected(new_client, lambda c: pump.run(c, wake), min_delay_s=0.2, max_delay_s=1))
    try:
        yield pump
    finally:
        task.cancel()
        await asyncio.wait({task})  # ends with the CancelledError it was given


async def test_events_arrive_in_sequence_and_are_marked_sent(broker: Mosquitto, tmp_path: Path) -> None:
    """Test that journaled transitions and answers go out in sequence order over TLS with a password, and each is
    marked sent once the broker acknowledged it."""
    async with await Journal.open(tmp_path / "j.sqlite") as journal, collecting(broker, TOPICS.events) as seen:
        for state in (DeliveryState.PREFLIGHT, DeliveryState.UPLOADING):
            await journal.record_state("KWL-1", state, {"note": state.value}, vehicle_ms=1000)
        await journal.enqueue("KWL-1", "order_accepted", {"request_id": "r1"})
        async with pumping(broker, journal) as pump:
            received = await seen.wait_for(3)
            await eventually(lambda: pump.sent == 3, timeout_s=10)
        assert [e.seq for e in received] == [1, 2, 3]
        assert [e.type for e in received] == ["state", "state", "order_accepted"]
        assert received[0].data == {"state": "PREFLIGHT", "detail": {"note": "PREFLIGHT"}}
        assert {e.drone for e in received} == {DRONE}
        assert await journal.outbox_backlog() == 0


async def test_a_broker_outage_loses_nothing_and_the_backlog_flushes_in_order(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Test that events written while the broker is down are all delivered, in sequence, once it is back, to a
    subscriber whose session the broker kept."""
    async with await Journal.open(tmp_path / "j.sqlite") as journal, collecting(broker, TOPICS.events) as seen:
        async with pumping(broker, journal) as pump:
            await journal.enqueue("KWL-2", "order_accepted", {"request_id": "before"})
            await seen.wait_for(1)
            await broker.stop()
            for n in range(20):
                await journal.enqueue(
                    "KWL-2",
                    "command_result",
                    {"request_id": f"during-{n}", "command": "status", "ok": True, "result": "status"},
                )
            assert await journal.outbox_backlog() == 20
            await broker.start()
            received = await seen.wait_for(21, timeout_s=60)
            await eventually(lambda: pump.sent == 21, timeout_s=10)
        seqs = [e.seq for e in received]
        assert sorted(set(seqs)) == list(range(1, 22)), "every event, none lost"
        first_seen = list(dict.fromkeys(seqs))
        assert first_seen == sorted(first_seen), "in sequence order"
        assert await journal.outbox_backlog() == 0


async def test_a_refused_publish_is_reported_and_never_marked_sent(tmp_path: Path) -> None:
    """Test that a PUBACK refusing the message (mosquitto's 0x87 not authorised, for a topic the ACL does not
    allow) raises BrokerRefused and leaves the event in the outbox (some MQTT libraries report such a PUBACK as success)."""
    require_mosquitto()
    acl = f"user {DRONE}\ntopic read {TOPICS.orders}\n"  # no write to its events
    async with (
        Mosquitto(tmp_path / "broker", accounts=dict(ACCOUNTS), acl=acl) as broker,
        await Journal.open(tmp_path / "j.sqlite") as journal,
    ):
        async with make_client(endpoint(broker, DRONE), client_id="refused") as client:
            with pytest.raises(BrokerRefused, match="0x87"):
                await client.publish_confirmed(TOPICS.events, b"{}", timeout_s=5)
        await journal.enqueue("KWL-3", "order_accepted", {"request_id": "r"})
        async with pumping(broker, journal) as pump:
            await eventually(lambda: pump.refused is not None, timeout_s=15)
        assert "not authorised" in str(pump.refused).lower() or "not authorized" in str(pump.refused).lower()
        assert await journal.outbox_backlog() == 1
        assert pump.sent == 0


async def test_a_row_no_envelope_can_carry_never_stops_the_events_behind_it(broker: Mosquitto, tmp_path: Path) -> None:
    """Test that an outbox row with an order id the contract does not allow is logged and passed over, and the
    events after it still go out."""
    async with await Journal.open(tmp_path / "j.sqlite") as journal, collecting(broker, TOPICS.events) as seen:
        await journal.enqueue("not/an order id", "order_rejected", {"request_id": None, "reasons": ["x"]})
        await journal.enqueue("KWL-4", "order_accepted", {"request_id": "r"})
        async with pumping(broker, journal) as pump:
            [received] = await seen.wait_for(1)
            await eventually(lambda: pump.unpublishable == 1, timeout_s=10)
        assert (received.seq, received.order_id) == (2, "KWL-4")
