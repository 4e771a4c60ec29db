"""One MQTT 5 connection to the broker, as aiomqtt makes it, plus what aiomqtt 2.x leaves out.

Traps of aiomqtt 2.x (seen against mosquitto 2.0.11) that shape this module and its callers:
- it does not reconnect by itself, and re-entering a used client is fragile: callers make a FRESH client for
  every connection (``connect_client``), never reuse one;
- a publish that timed out may be re-sent by paho after a reconnect of the same client, a duplicate out of
  order: with a fresh client per connection paho re-sends nothing, and the outbox is the only source of re-sends;
- a PUBACK that refuses the message (e.g. 0x87 not authorised) completes the publish as if it succeeded:
  ``ConfirmedClient`` keeps the PUBACK's reason code and ``publish_confirmed`` raises ``BrokerRefused`` for it;
- every wait (connect, subscribe, publish, disconnect) goes through ``asyncio.wait_for``, which on Python 3.11
  swallows a cancellation that arrives as the awaited answer does: the caller carries on as if never cancelled,
  and a daemon told to stop by SIGTERM does not. ``ConfirmedClient`` waits with ``asyncio.timeout`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from flightctl.errors import FlightctlError, Refused, Unavailable
from flightctl.mqtt.endpoint import BrokerEndpoint

T = TypeVar("T")


class BrokerError(FlightctlError):
    """Talking to the MQTT broker failed."""


class BrokerUnavailable(BrokerError, Unavailable):
    """No connection to the broker, or it dropped: connect again later."""


class BrokerRefused(BrokerError, Refused):
    """The broker answered a publish with a failure reason code (e.g. not authorised): the message is not sent."""

    def __init__(self, topic: str, reason: ReasonCode) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"the broker refused the message on {topic}: {reason} (0x{reason.value:02x})")


class ConfirmedClient(aiomqtt.Client):
    """aiomqtt's client that also tells a refused QoS 1 publish from an accepted one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaited: set[int] = set()
        self._reasons: dict[int, ReasonCode] = {}

    async def _wait_for(self, fut: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109  (aiomqtt's signature)
        """aiomqtt's every wait, with its meaning (None: the client's timeout; inf: none; expiry: MqttError), and
        a cancellation that always goes through (see the module's doc)."""
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(None if limit == math.inf else limit):
                return await fut
        except TimeoutError:
            raise aiomqtt.MqttError("Operation timed out") from None

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Properties
    ) -> None:
        if mid in self._awaited:
            self._reasons[mid] = reason_code
        super()._on_publish(client, userdata, mid, reason_code, properties)

    def acknowledge_manually(self) -> None:
        """Acknowledge QoS 1 messages only when ``ack`` is called, after they were handled: a consumer that dies
        before then gets them again (paho acknowledges on receipt otherwise, before anything was done)."""
        self._client.manual_ack_set(True)

    def ack(self, message: aiomqtt.Message) -> None:
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)

    async def disconnect_keeping_will(self, timeout_s: float = 2.0) -> None:
        """End the connection so that the broker still publishes our last will: MQTT 5's DISCONNECT with reason
        0x04, "Disconnect with Will Message" (mosquitto: handle_disconnect.c keeps the will for it; any other
        DISCONNECT discards it). For a process going down by a crash: a clean DISCONNECT would say "all is well"
        and leave the drone shown online. Best effort: a connection already gone keeps the will anyway."""
        disconnect_with_will = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        if self._client.disconnect(reasoncode=disconnect_with_will) != paho.MQTT_ERR_SUCCESS:
            return
        with contextlib.suppress(TimeoutError, aiomqtt.MqttError):
            async with asyncio.timeout(timeout_s):
                await asyncio.wait({self._disconnected})

    def forget_disconnect(self) -> None:
        """aiomqtt leaves an unexpected disconnection's error in a future nobody awaits (asyncio then logs "Future
        exception was never retrieved"); the caller already has it from the call that failed."""
        if self._disconnected.done() and not self._disconnected.cancelled():
            self._disconnected.exception()

    async def publish_confirmed(
        self,
        topic: str,
        payload: bytes,
        *,
        timeout_s: float,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> None:
        """Publish at QoS 1 and return once the broker acknowledged it with a success code."""
        # paho's own publish, as aiomqtt's does it, so the message id is ours to match the PUBACK against.
        info = self._client.publish(topic, payload, 1, retain, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise BrokerUnavailable(f"could not publish on {topic}: {paho.error_string(info.rc)}")
        self._awaited.add(info.mid)
        try:
            confirmation = asyncio.Event()
            with self._pending_call(info.mid, confirmation, self._pending_publishes):
                if info.mid not in self._reasons:
                    await self._wait_for(confirmation.wait(), timeout=timeout_s)
            reason = self._reasons.pop(info.mid, None)
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailable(f"no PUBACK for the message on {topic} within {timeout_s:g} s: {exc}") from exc
        finally:
            self._awaited.discard(info.mid)
            self._reasons.pop(info.mid, None)
        if reason is not None and reason.is_failure:
            raise BrokerRefused(topic, reason)


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]  # paho's constructor has no annotations


def expiry_properties(expiry_s: int) -> Properties:
    properties = _properties(PacketTypes.PUBLISH)
    properties.MessageExpiryInterval = expiry_s
    properties.ContentType = "application/json"
    return properties


def json_properties() -> Properties:
    properties = _properties(PacketTypes.PUBLISH)
    properties.ContentType = "application/json"
    return properties


def make_client(
    endpoint: BrokerEndpoint,
    *,
    client_id: str,
    keepalive_s: int = 30,
    session_expiry_s: int = 0,
    will: aiomqtt.Will | None = None,
    timeout_s: float = 10.0,
) -> ConfirmedClient:
    """A fresh client for one connection. With ``session_expiry_s`` > 0 the broker keeps our session (and the
    QoS 1 messages sent to it) that long while we are away, and we never ask for a clean start."""
    connect_properties = _properties(PacketTypes.CONNECT)
    connect_properties.SessionExpiryInterval = session_expiry_s
    tls_context = None
    if endpoint.tls:
        tls_context = ssl.create_default_context(cafile=str(endpoint.ca_file) if endpoint.ca_file else None)
    return ConfirmedClient(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=endpoint.password,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        keepalive=keepalive_s,
        clean_start=session_expiry_s == 0,
        properties=connect_properties,
        tls_context=tls_context,
        timeout=timeout_s,
    )


def will_message(topic: str, payload: bytes, *, delay_s: int) -> aiomqtt.Will:
    """A retained last will the broker publishes ``delay_s`` after an unclean drop, unless we are back by then."""
    properties = _properties(PacketTypes.WILLMESSAGE)
    properties.WillDelayInterval = delay_s
    properties.ContentType = "application/json"
    return aiomqtt.Will(topic, payload, qos=1, retain=True, properties=properties)


async def keep_connected(
    new_client: Callable[[], ConfirmedClient],
    serve: Callable[[ConfirmedClient], Awaitable[None]],
    *,
    min_delay_s: float,
    max_delay_s: float,
    on_drop: Callable[[str, float], None] = lambda _error, _delay: None,
    drops: tuple[type[Exception], ...] = (),
) -> NoReturn:
    """Connect with a fresh client, ``serve`` it until the connection fails, and do it again, forever.

    ``drops``: more errors of ``serve`` that end only this connection (a store it writes to is down, say), as the
    broker's own failures do. Waits between attempts double from ``min_delay_s`` to ``max_delay_s`` and are
    jittered (a fleet that lost the broker together does not come back in the same second); a connection that
    worked resets them."""
    delay_s = min_delay_s
    ends_connection: tuple[type[Exception], ...] = (aiomqtt.MqttError, BrokerError, *drops)
    while True:
        client = new_client()
        cancelled = False
        try:
            async with client:
                delay_s = min_delay_s
                try:
                    await serve(client)
                except asyncio.CancelledError:
                    # Noted here, because a DISCONNECT that times out while the client closes makes aiomqtt raise
                    # MqttError from __aexit__ in place of this CancelledError: that is a stop, not a drop.
                    cancelled = True
                    raise
        except* ends_connection as group:
            if not cancelled:
                on_drop("; ".join(str(exc) for exc in group.exceptions), delay_s)
        finally:
            client.forget_disconnect()
        if cancelled:
            raise asyncio.CancelledError
        await asyncio.sleep(delay_s * random.uniform(0.5, 1.0))
        delay_s = min(delay_s * 2, max_delay_s)


@contextlib.asynccontextmanager
async def tool_connection(endpoint: BrokerEndpoint, tool: str) -> AsyncIterator[ConfirmedClient]:
    """A short-lived client for a command or a ground tool (its own id, a clean session); the broker's failures
    become ``BrokerUnavailable``."""
    try:
        async with make_client(endpoint, client_id=f"flightctl-{tool}-{uuid.uuid4().hex[:12]}") as client:
            yield client
    except aiomqtt.MqttError as exc:
        raise BrokerUnavailable(f"broker {endpoint}: {exc}") from None
