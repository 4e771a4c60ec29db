"""What the broker tests share: endpoints for the test accounts, a subscriber that collects what it receives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from flightctl.mqtt.broker import MqttClient, keep_connected, make_client
from flightctl.mqtt.consumer import read_envelope
from flightctl.mqtt.contract import Envelope
from flightctl.mqtt.endpoint import BrokerEndpoint
from sitl.mosquitto import Mosquitto
from tests.mqtt.conftest import ACCOUNTS


def endpoint(broker: Mosquitto, user: str, password: str | None = None) -> BrokerEndpoint:
    secret = ACCOUNTS.get(user, "") if password is None else password
    return BrokerEndpoint.from_url(broker.url, username=user, password=secret, ca_file=broker.ca_file)


@dataclass
class Collector:
    """Envelopes received on a topic, across reconnects (a persistent session: nothing queued is missed)."""

    received: list[Envelope] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    arrival_s: list[float] = field(default_factory=list)  # monotonic time each envelope arrived

    async def serve(self, client: MqttClient, topic: str) -> None:
        await client.subscribe(topic, qos=1)
        self.subscribed.set()
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            self.received.append(read_envelope(message.payload))
            self.arrival_s.append(time.monotonic())
            self.changed.set()

    def distinct(self) -> int:
        """Envelopes received, an event (with a sequence number) counted once however often it came."""
        events = {(envelope.drone, envelope.seq) for envelope in self.received if envelope.seq is not None}
        return len(events) + sum(1 for envelope in self.received if envelope.seq is None)

    async def wait_for(self, count: int, timeout_s: float = 30) -> list[Envelope]:
        """Every envelope received, once ``count`` distinct ones have come: QoS 1 may deliver an event twice (a
        session restored after a broker restart), and a duplicate must not stand in for a missing event."""
        async with asyncio.timeout(timeout_s):
            while self.distinct() < count:
                self.changed.clear()
                await self.changed.wait()
        return self.received


@contextlib.asynccontextmanager
async def collecting(
    broker: Mosquitto, topic: str, user: str = "ground", client_id: str | None = None
) -> AsyncIterator[Collector]:
    collector = Collector()
    ep = endpoint(broker, user)
    client_id = client_id or f"collector-{user}"

    def new_client() -> MqttClient:
        return make_client(ep, client_id=client_id, session_expiry_s=3600)

    task = asyncio.create_task(
        keep_connected(new_client, lambda c: collector.serve(c, topic), min_delay_s=0.2, max_delay_s=1)
    )
    try:
        async with asyncio.timeout(15):
            await collector.subscribed.wait()
        yield collector
    finally:
        task.cancel()
        await asyncio.wait({task})  # ends with the CancelledError it was given
