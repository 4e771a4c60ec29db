"""Connecting to the broker: a fresh ``MqttClient`` per connection, kept connected, with the properties we use.

Traps this module's callers rely on it to avoid (seen against mosquitto 2.0.11):
- a used client is never re-entered: ``keep_connected`` makes a FRESH client for every connection;
- a publish that timed out is never re-sent by the MQTT library after a reconnect: with a fresh client per
  connection nothing is carried over, and the outbox is the only source of re-sends;
- a PUBACK that refuses the message (e.g. 0x87 not authorised) is not a success: ``publish_confirmed`` raises
  ``BrokerRefused`` for it (``flightctl.mqtt.client``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from flightctl.mqtt.client import BrokerError, BrokerRefused, BrokerUnavailable, Message, MqttClient, Will
from flightctl.mqtt.endpoint import BrokerEndpoint

__all__ = [
    "BrokerError",
    "BrokerRefused",
    "BrokerUnavailable",
    "Message",
    "MqttClient",
    "Will",
    "expiry_properties",
    "json_properties",
    "keep_connected",
    "make_client",
    "tool_connection",
    "will_message",
]


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
    will: Will | None = None,
    timeout_s: float = 10.0,
    manual_ack: bool = False,
) -> MqttClient:
    """A fresh client for one connection. With ``session_expiry_s`` > 0 the broker keeps our session (and the
    QoS 1 messages sent to it) that long while we are away, and we never ask for a clean start. With
    ``manual_ack`` a QoS 1 message is acknowledged only by ``ack``, once handled (set before connecting, so that
    what a kept session delivers at once is not acknowledged before anyone read it)."""
    connect_properties = _properties(PacketTypes.CONNECT)
    connect_properties.SessionExpiryInterval = session_expiry_s
    tls_context = None
    if endpoint.tls:
        tls_context = ssl.create_default_context(cafile=str(endpoint.ca_file) if endpoint.ca_file else None)
    return MqttClient(
        endpoint.host,
        endpoint.port,
        client_id=client_id,
        username=endpoint.username,
        password=endpoint.password,
        will=will,
        keepalive_s=keepalive_s,
        clean_start=session_expiry_s == 0,
        properties=connect_properties,
        tls_context=tls_context,
        timeout_s=timeout_s,
        manual_ack=manual_ack,
    )


def will_message(topic: str, payload: bytes, *, delay_s: int) -> Will:
    """A retained last will the broker publishes ``delay_s`` after an unclean drop, unless we are back by then."""
    properties = _properties(PacketTypes.WILLMESSAGE)
    properties.WillDelayInterval = delay_s
    properties.ContentType = "application/json"
    return Will(topic, payload, qos=1, retain=True, properties=properties)


async def keep_connected(
    new_client: Callable[[], MqttClient],
    serve: Callable[[MqttClient], Awaitable[None]],
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
    ends_connection: tuple[type[Exception], ...] = (BrokerError, *drops)
    while True:
        client = new_client()
        cancelled = False
        try:
            async with client:
                delay_s = min_delay_s
                try:
                    await serve(client)
                except asyncio.CancelledError:
                    cancelled = True  # a stop, not a drop, whatever closing the connection then says
                    raise
        except* ends_connection as group:
            if not cancelled:
                on_drop("; ".join(str(exc) for exc in group.exceptions), delay_s)
        if cancelled:
            raise asyncio.CancelledError
        await asyncio.sleep(delay_s * random.uniform(0.5, 1.0))
        delay_s = min(delay_s * 2, max_delay_s)


@contextlib.asynccontextmanager
async def tool_connection(endpoint: BrokerEndpoint, tool: str) -> AsyncIterator[MqttClient]:
    """A short-lived client for a command or a ground tool (its own id, a clean session)."""
    async with make_client(endpoint, client_id=f"flightctl-{tool}-{uuid.uuid4().hex[:12]}") as client:
        yield client
