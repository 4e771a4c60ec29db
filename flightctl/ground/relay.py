"""The status relay: every drone's events in, customer statuses out (into the registry the tracking page reads).

Several relays share the work through one shared subscription (``$share/relay/flightctl/v1/drones/+/events``)
and one registry (PostgreSQL), which takes each (drone, seq) once whichever relay got it, so together they
neither lose nor duplicate. Each relay keeps a persistent session and acknowledges a message only after the
registry has it: a relay that dies mid-way gets its unacknowledged messages again when it comes back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiomqtt

from flightctl.ground.customer_status import customer_update
from flightctl.ground.registry import Registry
from flightctl.status.broker import ConfirmedClient, keep_connected, make_client
from flightctl.status.consumer import NotAnEnvelope, read_envelope
from flightctl.status.contract import TOPIC_ROOT
from flightctl.status.settings import BrokerEndpoint

log = logging.getLogger(__name__)

SHARE_GROUP = "relay"
EVENTS_FILTER = f"{TOPIC_ROOT}/+/events"


@dataclass
class RelayStats:
    taken: int = 0  # events this relay took first
    duplicates: int = 0  # taken already (a re-send, or by another relay)
    refused: int = 0  # not an event of ours, or on another drone's topic
    by_drone: dict[str, int] = field(default_factory=dict)


class StatusRelay:
    def __init__(self, registry: Registry, endpoint: BrokerEndpoint, *, name: str, session_expiry_s: int = 86400):
        self.registry = registry
        self.endpoint = endpoint
        self.name = name
        self.session_expiry_s = session_expiry_s
        self.stats = RelayStats()

    async def run(self) -> None:
        await keep_connected(self._client, self._serve, min_delay_s=0.5, max_delay_s=30, on_drop=self._dropped)

    def _client(self) -> ConfirmedClient:
        client = make_client(
            self.endpoint, client_id=f"flightctl-relay-{self.name}", session_expiry_s=self.session_expiry_s
        )
        client.acknowledge_manually()
        return client

    def _dropped(self, error: str, delay_s: float) -> None:
        log.warning("relay %s: broker %s: %s; again in about %.0f s", self.name, self.endpoint, error, delay_s)

    async def _serve(self, client: ConfirmedClient) -> None:
        await client.subscribe(f"$share/{SHARE_GROUP}/{EVENTS_FILTER}", qos=1)
        log.info("relay %s following %s on %s", self.name, EVENTS_FILTER, self.endpoint)
        async for message in client.messages:
            await self.handle(message)
            client.ack(message)

    async def handle(self, message: aiomqtt.Message) -> None:
        topic = str(message.topic)
        parts = topic.split("/")
        try:
            envelope = read_envelope(message.payload)
        except NotAnEnvelope as exc:
            self.stats.refused += 1
            log.warning("relay %s: not an event on %s: %s", self.name, topic, exc)
            return
        if len(parts) != 5 or parts[3] != envelope.drone or envelope.seq is None:
            self.stats.refused += 1
            log.warning("relay %s: %s on %s is not that drone's sequenced event", self.name, envelope.drone, topic)
            return
        new = await self.registry.record(envelope.drone, envelope.seq, envelope.order_id, customer_update(envelope))
        if new:
            self.stats.taken += 1
            self.stats.by_drone[envelope.drone] = self.stats.by_drone.get(envelope.drone, 0) + 1
        else:
            self.stats.duplicates += 1
