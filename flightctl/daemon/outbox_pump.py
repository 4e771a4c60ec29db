"""The outbox pump: the journal's outbox to the drone's events topic, in sequence, each marked sent only on a
PUBACK that accepted it.

It is the only source of re-sends: a connection that fails leaves the unacknowledged rows unsent, and the next
connection (a fresh client) sends them again from the oldest. A broker outage of any length, a SIGKILL or a
reboot therefore loses nothing; a message the broker took but whose PUBACK was lost goes out twice with the
same sequence number, which consumers drop (they de-duplicate by drone and sequence number).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from pydantic import ValidationError

from flightctl.delivery.journal import Journal, OutboxEntry
from flightctl.mqtt.broker import BrokerRefused, MqttClient, json_properties
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from flightctl.mqtt.messages import contract_data

log = logging.getLogger(__name__)

BATCH = 100


def outbox_envelope(drone_id: str, entry: OutboxEntry) -> Envelope:
    """The envelope an outbox row goes out in: its data as the contract carries it (what the journal holds
    beyond the contract stays on the aircraft)."""
    type_ = MessageType(entry.type)
    return Envelope(
        drone=drone_id,
        seq=entry.seq,
        time=datetime.fromisoformat(entry.at_utc.replace("Z", "+00:00")),
        time_source=TimeSource(entry.time_source),
        type=type_,
        order_id=entry.order_id,
        data=contract_data(type_, entry.data),
    )


class OutboxPump:
    def __init__(self, journal: Journal, topics: Topics, *, publish_timeout_s: float, refused_retry_s: float = 30.0):
        self.journal = journal
        self.topics = topics
        self.publish_timeout_s = publish_timeout_s
        self.refused_retry_s = refused_retry_s
        self.sent = 0
        self.refused: BrokerRefused | None = None  # the last refusal, until a publish succeeds again
        self.unpublishable = 0

    async def run(self, client: MqttClient, wake: asyncio.Event) -> None:
        """Send the backlog, then each new row as ``wake`` says it came; returns only by raising (the connection
        failed: ``BrokerUnavailable``)."""
        while True:
            wake.clear()
            batch = await self.journal.unsent(BATCH)
            if not batch:
                await wake.wait()
                continue
            for entry in batch:
                await self._send(client, entry)

    async def _send(self, client: MqttClient, entry: OutboxEntry) -> None:
        try:
            payload = outbox_envelope(self.topics.drone_id, entry).to_json()
        except (ValidationError, ValueError):
            # A row no envelope can carry (a bug that wrote it): kept in the journal, never allowed to stop the
            # events behind it. Counted and logged, then passed over.
            log.exception("event %d cannot be sent: skipped; it stays in the journal", entry.seq)
            self.unpublishable += 1
            await self.journal.mark_sent(entry.seq)
            return
        while (refusal := await self._try(client, payload)) is not None:
            # Never marked sent: the events after it wait too, so a consumer never sees a gap that fills later.
            if self.refused is None or self.refused.reason != refusal.reason:
                log.error("event %d: %s; retrying every %g s", entry.seq, refusal, self.refused_retry_s)
            self.refused = refusal
            await asyncio.sleep(self.refused_retry_s)
        self.refused = None
        await self.journal.mark_sent(entry.seq)
        self.sent += 1

    async def _try(self, client: MqttClient, payload: bytes) -> BrokerRefused | None:
        try:
            await client.publish_confirmed(
                self.topics.events, payload, timeout_s=self.publish_timeout_s, properties=json_properties()
            )
        except BrokerRefused as exc:
            return exc
        return None
