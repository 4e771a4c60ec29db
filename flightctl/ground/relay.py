"""The status relay: every drone's events in, customer statuses out (into the registry the tracking page reads).

Each relay reads every drone's events (``flightctl/v1/drones/+/events``) into one registry (PostgreSQL for several
relays), which takes each (drone, seq) once whichever relay got it first, so together they neither lose nor
duplicate. Relays may instead divide the events between them through a shared subscription
(``$share/<group>/...``, ``share_group`` in the config), but mosquitto 2.0 does not route to a shared subscription
restored from its persistence file: what drones send to a restarted broker before the relays have subscribed again
is acknowledged to the drone and lost. A plain subscription's session gets it. Each relay keeps a persistent session and
acknowledges a message only after the registry has it: a relay that dies mid-way gets its unacknowledged
messages again when it comes back.

With an active pair of brokers (``broker.peer_urls``), a relay reads all of them at once, each through its own
connection and session: a drone is on whichever broker it could reach, and sends an event again on the other
after a failover; the registry's (drone, seq) key makes the second copy a duplicate, not a second event.

One message never stops a relay. Each is handled inside its own failure boundary: one that is not an event of
ours, or that sets off anything unexpected, is dead-lettered (counted, the first of a burst kept in the registry
and logged) and acknowledged, so the broker never hands it to a relay again. Only an outage of the registry
itself leaves a message unacknowledged: the relay drops its connection and comes back, and the message with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flightctl.ground.aircraft_states import AircraftStates
from flightctl.ground.customer_status import customer_update, read_contract
from flightctl.ground.logbook import NO_GROUND_DATA, LogbookGround
from flightctl.ground.registry import EventToKeep, Registry, RegistryUnavailable
from flightctl.mqtt.broker import BrokerRefused, Message, MqttClient, keep_connected, make_client
from flightctl.mqtt.consumer import NotAnEnvelope, read_envelope
from flightctl.mqtt.contract import TOPIC_ROOT, MessageType, relay_client_id
from flightctl.mqtt.dead_letters import DeadLetter, DeadLetterBox
from flightctl.mqtt.endpoint import BrokerEndpoint
from flightctl.mqtt.messages import FlightRecordData

log = logging.getLogger(__name__)

EVENTS_FILTER = f"{TOPIC_ROOT}/+/events"
RECONNECT_MAX_S = 5.0
BATCH_MAX = 500  # events taken in one registry transaction


@dataclass
class RelayStats:
    taken: int = 0  # events this relay took first
    duplicates: int = 0  # taken already (a re-send, or by another relay)
    dead_letters: int = 0  # not an event of ours, or one that could not be handled
    connections: int = 0  # to the brokers, each subscribed
    connections_by_broker: dict[str, int] = field(default_factory=dict)  # by "host:port"
    by_drone: dict[str, int] = field(default_factory=dict)


def sender_of(topic: str) -> str | None:
    """The drone whose topic this is: the broker lets only that drone's account publish there."""
    parts = topic.split("/")
    return parts[3] if len(parts) == 5 and topic.startswith(f"{TOPIC_ROOT}/") else None


class StatusRelay:
    def __init__(
        self,
        registry: Registry,
        endpoints: Sequence[BrokerEndpoint],
        *,
        name: str,
        share_group: str | None = None,
        session_expiry_s: int = 86400,
        logbook: LogbookGround | None = None,
    ):
        self.registry = registry
        self.logbook = logbook  # the operator's part of each flight record
        if not endpoints:
            raise ValueError("a relay needs at least one broker")
        self.endpoints = list(endpoints)
        self.name = name
        self.share_group = share_group
        self.session_expiry_s = session_expiry_s
        self.stats = RelayStats()
        self.aircraft = AircraftStates()  # each aircraft's newest state, for the ops view
        self.dead_letters = DeadLetterBox(f"relay {name}", keep=self._keep_dead_letter)

    @property
    def subscription(self) -> str:
        return EVENTS_FILTER if self.share_group is None else f"$share/{self.share_group}/{EVENTS_FILTER}"

    async def run(self) -> None:
        """Read every broker, each connection kept up on its own, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            for endpoint in self.endpoints:
                tasks.create_task(self._follow(endpoint), name=f"relay {self.name} on {endpoint}")

    async def _follow(self, endpoint: BrokerEndpoint) -> None:
        def dropped(error: str, delay_s: float) -> None:
            log.warning("relay %s on %s: %s; again in about %.0f s", self.name, endpoint, error, delay_s)

        async def serve(client: MqttClient) -> None:
            await self._serve(client, endpoint)

        await keep_connected(
            lambda: self._client(endpoint),
            serve,
            min_delay_s=0.5,
            # A few relays, not a fleet: no herd to spread out, and a broker of the pair that comes back is read
            # again within seconds (its kept session holds what drones sent it meanwhile).
            max_delay_s=RECONNECT_MAX_S,
            on_drop=dropped,
            drops=(RegistryUnavailable,),
        )

    def client_id(self, endpoint: BrokerEndpoint) -> str:
        """The one id the broker lets this relay's account connect with (named after the account, not the relay)."""
        return relay_client_id(endpoint.username or self.name)

    def _client(self, endpoint: BrokerEndpoint) -> MqttClient:
        return make_client(
            endpoint, client_id=self.client_id(endpoint), session_expiry_s=self.session_expiry_s, manual_ack=True
        )

    async def _serve(self, client: MqttClient, endpoint: BrokerEndpoint) -> None:
        try:
            await client.subscribe(self.subscription, qos=1)
        except BrokerRefused:
            log.warning(
                "relay %s on %s: the broker refused %s: an accounts folder made by an older flightctl needs "
                "`flightctl broker refresh-rules` and a broker restart",
                self.name, endpoint, self.subscription,
            )  # fmt: skip
            raise
        self.stats.connections += 1
        where = f"{endpoint.host}:{endpoint.port}"
        self.stats.connections_by_broker[where] = self.stats.connections_by_broker.get(where, 0) + 1
        log.info("relay %s following %s on %s", self.name, self.subscription, endpoint)
        async for message in client.messages:
            # What has arrived meanwhile goes with it: one transaction for the lot (a fleet's backlog after an
            # outage is thousands of events), each acknowledged only once the registry has it.
            batch = [message, *client.arrived(BATCH_MAX - 1)]
            await self.handle_batch(batch)
            for handled in batch:
                client.ack(handled)

    async def handle(self, message: Message) -> None:
        """Take one event, or dead-letter it; raises only ``RegistryUnavailable`` (the message is not at fault)."""
        await self.handle_batch([message])

    async def handle_batch(self, messages: list[Message]) -> None:
        """Take each event, or dead-letter it, the events in one registry transaction; raises only
        ``RegistryUnavailable`` (then none is taken, and none should be acknowledged)."""
        readable: list[tuple[Message, EventToKeep]] = []
        for message in messages:
            topic = str(message.topic)
            try:
                readable.append((message, self._read(topic, message.payload)))
            except NotAnEnvelope as exc:
                await self._dead_letter(topic, message.payload, str(exc))
            except Exception as exc:  # one message, whatever it sets off, never stops the relay
                await self._dead_letter(topic, message.payload, _reason(exc), error=exc)
        if not readable:
            return
        try:
            new = await self.registry.record_many([event for _message, event in readable])
        except RegistryUnavailable:
            raise
        except Exception:
            # The registry refused something in the batch: each on its own, so only that one is dead-lettered.
            for message, event in readable:
                await self._keep_one(message, event)
            return
        for (_message, event), fresh in zip(readable, new, strict=True):
            self._count(event, fresh)

    async def _keep_one(self, message: Message, event: EventToKeep) -> None:
        try:
            self._count(event, (await self.registry.record_many([event]))[0])
        except RegistryUnavailable:
            raise
        except Exception as exc:
            await self._dead_letter(str(message.topic), message.payload, _reason(exc), error=exc)

    def _count(self, event: EventToKeep, new: bool) -> None:
        if new:
            self.stats.taken += 1
            self.stats.by_drone[event.drone_id] = self.stats.by_drone.get(event.drone_id, 0) + 1
        else:
            self.stats.duplicates += 1

    def _read(self, topic: str, payload: Any) -> EventToKeep:
        """The event in ``payload``, as the registry keeps it; ``NotAnEnvelope`` (or anything a bad message sets
        off) if it is not an event of the drone whose topic it came on."""
        envelope = read_envelope(payload)
        if sender_of(topic) != envelope.drone:
            raise NotAnEnvelope(f"an event of {envelope.drone!r} on {topic}")
        if envelope.seq is None:
            raise NotAnEnvelope("an event without a sequence number")
        update = customer_update(envelope)
        self.aircraft.take(envelope)
        flight = None
        if envelope.type is MessageType.FLIGHT_RECORD:
            record = read_contract(FlightRecordData, envelope)
            ground = NO_GROUND_DATA if self.logbook is None else self.logbook.for_drone(envelope.drone)
            flight = (record.model_dump(mode="json", exclude_none=True), ground)
        return EventToKeep(envelope.drone, envelope.seq, envelope.order_id, update, flight)

    async def _dead_letter(self, topic: str, payload: Any, reason: str, error: Exception | None = None) -> None:
        """Counted always; logged (a bug with its traceback) and kept within the box's budget."""
        self.stats.dead_letters += 1
        await self.dead_letters.add(topic, payload, reason, sender=sender_of(topic), error=error)

    async def _keep_dead_letter(self, letter: DeadLetter) -> None:
        await self.registry.keep_dead_letter(self.name, letter)


def _reason(exc: Exception) -> str:
    return f"could not be handled: {type(exc).__name__}: {exc}"
