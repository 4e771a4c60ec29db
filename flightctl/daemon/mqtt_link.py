"""The daemon's side of the broker: connect, and keep connecting, for as long as the daemon runs.

Each connection is a fresh client (one client, one connection: nothing of an old one is re-sent) with a
persistent session (clean start off, a session expiry) so the broker keeps the QoS 1 orders and commands sent
while we were away, and a retained last will, delayed, so a drop of a few seconds does not show the drone
offline. Connected, it runs four things until the connection fails: the outbox pump, telemetry, the online
message, and the orders and commands coming in. A failure of any of them ends the connection; the next one
starts after a backoff with jitter (a fleet that lost the broker together does not come back together).

With more than one broker (an active pair: ``broker.peer_urls``), the daemon is on one at a time and each
connection that fails, or cannot be made, moves it to the next, so a broker that stops costs one backoff, not
the outage. Each broker keeps its own session for the drone; dispatch sends every order to all of them, so the
copy kept by the broker the drone was not on arrives later as a repeat, and is answered as one (orders are
idempotent by order id). Events are sent once, to the broker the drone is on; one sent again after a failover
carries its sequence number, and the relays (reading every broker) keep it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from flightctl import __version__
from flightctl.daemon.outbox_pump import OutboxPump
from flightctl.daemon.settings import BrokerSection, TelemetrySection
from flightctl.daemon.telemetry_feed import DeliveryStatus, Sample, TelemetrySampler
from flightctl.delivery.journal import Clock
from flightctl.errors import MustStop
from flightctl.mqtt.broker import (
    BrokerError,
    Message,
    MqttClient,
    expiry_properties,
    json_properties,
    keep_connected,
    make_client,
    will_message,
)
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics, drone_client_id
from flightctl.mqtt.dead_letters import DeadLetterBox
from flightctl.mqtt.endpoint import BrokerEndpoint
from flightctl.mqtt.messages import contract_data
from flightctl.mqtt.requests import CommandRequest, OrderRequest, Refused, parse_command, parse_order

log = logging.getLogger(__name__)

STOPPED_REASON = "stopped"  # the daemon was stopped on purpose (SIGTERM)
WILL_REASON = "connection lost"  # the broker says it for us: a crash, a power loss, no network


class OrderDesk(Protocol):
    """What the broker side needs of the delivery side (``daemon.worker.DeliveryWorker``). Each call returns
    once what it was given is in the journal (the order, or the answer to it): only then is it acknowledged."""

    def status(self) -> DeliveryStatus: ...

    async def take_order(self, request: OrderRequest) -> None: ...

    async def refuse(self, what: MessageType, refused: Refused) -> None: ...

    async def command(self, request: CommandRequest) -> None: ...


class BrokerLink:
    def __init__(
        self,
        drone_id: str,
        endpoints: Sequence[BrokerEndpoint],
        broker: BrokerSection,
        telemetry: TelemetrySection,
        *,
        worker: OrderDesk,
        pump: OutboxPump,
        sampler: TelemetrySampler,
        clock: Clock,
    ) -> None:
        if not endpoints:
            raise ValueError("a broker link needs at least one broker")
        self.topics = Topics(drone_id)
        self.endpoints = list(endpoints)
        self._at = 0  # the broker tried now: the first, then the next after each drop
        self.failovers = 0
        self.broker = broker
        self.telemetry = telemetry
        self.worker = worker
        self.pump = pump
        self.sampler = sampler
        self.clock = clock
        self.outbox_wake = asyncio.Event()
        self.outbox_wake.set()
        self.order_changed = asyncio.Event()
        self.connections = 0
        self.connected = False
        self.telemetry_sent = 0
        self.telemetry_stale = 0  # samples older than their expiry when the broker came back: never sent
        self.telemetry_invalid = 0  # samples with a value outside the contract's bounds: never sent
        self.last_error: str | None = None
        self.dead_letters = DeadLetterBox(f"drone {drone_id}")
        # Set by whoever stops the daemon on purpose (SIGTERM), before cancelling it: then the drone says
        # "stopped". Any other end of a connection (a crash, a cancellation nobody asked for) leaves the will.
        self.stop_requested = False

    @property
    def endpoint(self) -> BrokerEndpoint:
        """The broker this link is on, or trying next."""
        return self.endpoints[self._at]

    def status(self) -> dict[str, Any]:
        return {
            "broker": str(self.endpoint),
            "broker_failovers": self.failovers,
            "broker_connected": self.connected,
            "broker_connections": self.connections,
            "events_sent": self.pump.sent,
            "events_refused": None if self.pump.refused is None else str(self.pump.refused),
            "events_unpublishable": self.pump.unpublishable,
            "telemetry_sent": self.telemetry_sent,
            "telemetry_dropped": self.sampler.queue.dropped,
            "telemetry_stale": self.telemetry_stale,
            "telemetry_invalid": self.telemetry_invalid,
            **self.dead_letters.report(),
        }

    def _envelope(self, type_: MessageType, data: dict[str, Any], order_id: str | None = None) -> bytes:
        when, source = self.clock()
        envelope = Envelope(
            drone=self.topics.drone_id,
            time=when,
            time_source=TimeSource(source),
            type=type_,
            order_id=order_id,
            data=contract_data(type_, data),
        )
        return envelope.to_json()

    def _online(self, online: bool, reason: str | None = None) -> bytes:
        order_id = self.worker.status().order_id
        data: dict[str, Any] = {"online": online, "version": __version__, "order_id": order_id}
        if reason is not None:
            data["reason"] = reason
        return self._envelope(MessageType.ONLINE, data, order_id)

    def _will(self) -> bytes:
        """The last will, written when the connection opens and published whenever it ends without a word from
        us: it names no order (which may have changed by then), and its time is when the connection began."""
        data = {"online": False, "version": __version__, "order_id": None, "reason": WILL_REASON}
        return self._envelope(MessageType.ONLINE, data)

    async def run(self) -> None:
        """Connect, serve, and connect again, forever (until cancelled)."""
        await keep_connected(
            self._new_client,
            self._serve,
            min_delay_s=self.broker.reconnect_min_s,
            max_delay_s=self.broker.reconnect_max_s,
            on_drop=self._dropped,
        )

    def _new_client(self) -> MqttClient:
        return make_client(
            self.endpoint,
            client_id=drone_client_id(self.topics.drone_id),
            keepalive_s=self.broker.keepalive_s,
            session_expiry_s=self.broker.session_expiry_s,
            will=will_message(self.topics.online, self._will(), delay_s=self.broker.will_delay_s),
            timeout_s=self.broker.publish_timeout_s,
            # Acknowledged only once handled; set before connecting: a kept session's orders come with the CONNACK.
            manual_ack=True,
        )

    def _dropped(self, error: str, delay_s: float) -> None:
        self.connected = False
        self.last_error = error
        lost = self.endpoint
        if len(self.endpoints) > 1:  # the next broker of the pair: one that stopped costs one backoff
            self._at = (self._at + 1) % len(self.endpoints)
            self.failovers += 1
        log.warning("broker %s: %s; connecting to %s in about %.0f s", lost, error, self.endpoint, delay_s)

    async def _serve(self, client: MqttClient) -> None:
        try:
            await client.subscribe(self.topics.orders, qos=1)
            await client.subscribe(self.topics.commands, qos=1)
            await self._publish_online(client)
            self.connected = True
            self.connections += 1
            log.info("connected to the broker %s", self.endpoint)
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.pump.run(client, self.outbox_wake), name="outbox")
                tasks.create_task(self._send_telemetry(client), name="telemetry")
                tasks.create_task(self._keep_online_current(client), name="online")
                tasks.create_task(self._receive(client), name="inbound")
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and self.stop_requested:
                # Stopping on purpose: say so now (the clean DISCONNECT that follows discards the will), then go.
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await client.publish_confirmed(
                            self.topics.online,
                            self._online(False, STOPPED_REASON),
                            timeout_s=2,
                            retain=True,
                            properties=json_properties(),
                        )
            elif not _broker_drop(exc):
                # A crash, or a stop nobody asked for: whatever happens next, the will must go out.
                await client.disconnect_keeping_will()
            raise

    async def _publish_online(self, client: MqttClient) -> None:
        self.order_changed.clear()
        await client.publish_confirmed(
            self.topics.online,
            self._online(True),
            timeout_s=self.broker.publish_timeout_s,
            retain=True,
            properties=json_properties(),
        )

    async def _keep_online_current(self, client: MqttClient) -> None:
        last = self.worker.status().order_id
        while True:
            await self.order_changed.wait()
            self.order_changed.clear()
            now = self.worker.status().order_id
            if now != last:
                last = now
                await self._publish_online(client)

    async def _send_telemetry(self, client: MqttClient) -> None:
        queue, expiry_s = self.sampler.queue, self.telemetry.expiry_s
        while True:
            sample: Sample = await queue.get()
            if time.monotonic() - sample.monotonic_s > expiry_s:
                self.telemetry_stale += 1
                continue
            try:
                payload = self._envelope(MessageType.TELEMETRY, sample.data, sample.data.get("order_id"))
            except ValidationError:
                # A value outside the contract's bounds (a corrupt report): this sample is dropped and counted,
                # the next one goes; telemetry never stops for one bad sample.
                if not self.telemetry_invalid:
                    log.exception("a telemetry sample is outside the contract: dropped (counted from now on)")
                self.telemetry_invalid += 1
                continue
            await client.publish(self.topics.telemetry, payload, qos=0, properties=expiry_properties(expiry_s))
            self.telemetry_sent += 1

    async def _receive(self, client: MqttClient) -> None:
        async for message in client.messages:
            await self._handle(message)
            # Only now, with the order, its answer or its dead letter recorded: a daemon killed before this point
            # gets the message again from its session, and a second copy of a recorded order is answered as one.
            client.ack(message)

    async def _handle(self, message: Message) -> None:
        """One order or command, inside its own failure boundary: whatever it sets off (short of the journal
        failing, which stops the daemon, as the controller must not act without it) is dead-lettered, and the
        daemon serves the next message; the delivery in flight never notices."""
        topic = str(message.topic)
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        what = {self.topics.orders: MessageType.ORDER, self.topics.commands: MessageType.COMMAND}.get(topic)
        if what is None:
            await self.dead_letters.add(topic, payload, "a topic this drone never subscribed to", sender=None)
            return
        try:
            await self._take(what, topic, payload)
        except MustStop:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            await self.dead_letters.add(topic, payload, reason, sender=_SENDERS[what], error=exc)
            await self._answer_failure(what, payload, reason)

    def _parse(self, what: MessageType, payload: bytes) -> OrderRequest | CommandRequest | Refused:
        drone_id = self.topics.drone_id
        return parse_order(payload, drone_id) if what is MessageType.ORDER else parse_command(payload, drone_id)

    async def _take(self, what: MessageType, topic: str, payload: bytes) -> None:
        request = self._parse(what, payload)
        if isinstance(request, Refused):
            await self.worker.refuse(what, request)
            await self.dead_letters.add(topic, payload, "; ".join(request.reasons), sender=_SENDERS[what])
        elif isinstance(request, OrderRequest):
            await self.worker.take_order(request)
        else:
            await self.worker.command(request)

    async def _answer_failure(self, what: MessageType, payload: bytes, reason: str) -> None:
        """Tell the sender an order or command it sent could not be handled (as for one that could not be read)."""
        parsed = self._parse(what, payload)
        order_id = parsed.order_id if isinstance(parsed, OrderRequest) else None
        try:
            refused = Refused([f"could not be handled: {reason}"], parsed.request_id, order_id)
            await self.worker.refuse(what, refused)
        except MustStop:
            raise
        except Exception:
            log.exception("the answer to a message that could not be handled could not be sent either")


def _broker_drop(exc: BaseException) -> bool:
    """The connection failed (the next one follows): nothing to say, the broker knows."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_broker_drop(inner) for inner in exc.exceptions)
    return isinstance(exc, BrokerError)


# Who may write to each of a drone's inbound topics (the broker's rules): the sender of what arrives there.
_SENDERS = {MessageType.ORDER: "a dispatch account", MessageType.COMMAND: "an operator account"}
