"""Sending an order or a command to a drone and waiting for its answer: what dispatch does, and `flightctl
order send`, `order leg`, `leg unloaded --broker` and `leg report-wind`.

With an active pair of brokers, a request goes to every broker that can be reached, and the answer is taken from
whichever the drone is on: the drone takes an order once by its id, so the copy on the other broker (kept in the
drone's session there) only ever comes back as a repeat. One broker down is no failure; all of them down is."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from flightctl.delivery.order import DeliveryOrder
from flightctl.delivery.wind import GroundWind
from flightctl.errors import ConfigError, VehicleTimeout
from flightctl.mqtt.broker import BrokerUnavailable, Message, MqttClient, json_properties, tool_connection
from flightctl.mqtt.consumer import NotAnEnvelope, read_envelope
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from flightctl.mqtt.dead_letters import DeadLetterBox
from flightctl.mqtt.endpoint import BrokerEndpoint
from flightctl.mqtt.messages import CommandResult, OrderAccepted, OrderRejected, read_data
from flightctl.mqtt.requests import MAX_INBOUND_BYTES, DepotWind
from flightctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class NoAnswer(VehicleTimeout):
    """The drone did not answer a request in time (offline, or the broker keeps the request for later)."""


def order_message(drone: str, order: DeliveryOrder, request_id: str, wind: GroundWind | None) -> bytes:
    data: dict[str, Any] = {"request_id": request_id, "order": order.model_dump(mode="json", exclude_none=True)}
    if wind is not None:
        data["depot_wind"] = DepotWind(speed_m_s=wind.speed_m_s, measured_at=wind.measured_at).model_dump(mode="json")
    return request_message(drone, MessageType.ORDER, data, order.order_id)


async def send_order(
    endpoints: Sequence[BrokerEndpoint],
    drone: str,
    order: DeliveryOrder,
    *,
    wind: GroundWind | None,
    timeout_s: float,
    dead_letters: DeadLetterBox | None = None,
    on_sent: Callable[[], None] = lambda: None,
) -> Envelope:
    """Publish ``order`` to ``drone`` and return its answer (order_accepted or order_rejected). ``on_sent`` is
    called once the broker has the order (from then on it reaches the drone, answer or not). What else comes on
    the drone's events topic meanwhile is passed over; what is not an event of ours goes to ``dead_letters``."""
    request_id = new_request_id()
    payload = order_message(drone, order, request_id, wind)
    return await send_request(
        endpoints, drone, Topics(drone).orders, payload, request_id, f"order {order.order_id}",
        timeout_s=timeout_s, dead_letters=dead_letters, on_sent=on_sent,
    )  # fmt: skip


def new_request_id() -> str:
    return f"req-{uuid.uuid4().hex[:16]}"


def request_message(drone: str, type_: MessageType, data: dict[str, Any], order_id: str | None = None) -> bytes:
    """An order or a command (``data`` already in the contract's shape) in its envelope, from the sender now."""
    return Envelope(
        drone=drone, time=datetime.now(UTC), time_source=TimeSource.SENDER, type=type_, order_id=order_id, data=data
    ).to_json()


async def send_request(
    endpoints: Sequence[BrokerEndpoint],
    drone: str,
    topic: str,
    payload: bytes,
    request_id: str,
    what: str,
    *,
    timeout_s: float,
    dead_letters: DeadLetterBox | None = None,
    on_sent: Callable[[], None] = lambda: None,
) -> Envelope:
    """Publish an order or a command (``payload``, carrying ``request_id``) on ``topic`` through every broker in
    ``endpoints`` that can be reached, and return the drone's answer to it, from any of them: order_accepted,
    order_rejected or command_result. ``what`` names it in a ``NoAnswer``; ``BrokerUnavailable`` when no broker
    took it."""
    box = dead_letters or DeadLetterBox("dispatch")
    if len(payload) > MAX_INBOUND_BYTES:  # the drone would refuse it unread: say so here, and send nothing
        raise ConfigError(f"{what}: {len(payload)} bytes, over the drone's limit of {MAX_INBOUND_BYTES}")
    async with contextlib.AsyncExitStack() as stack:
        clients = await _reached(stack, endpoints, drone, what)
        sent = await _published(clients, topic, payload, timeout_s, what)
        log.info("%s sent through %d of %d broker(s)", what, sent, len(endpoints))
        on_sent()
        arrived: asyncio.Queue[Message] = asyncio.Queue()
        readers = [asyncio.create_task(_forward(client, arrived)) for client in clients]
        for reader in readers:  # stopped before the connections close (callbacks run last-in, first-out)
            stack.push_async_callback(cancel_and_wait, reader)
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    message = await arrived.get()
                    try:
                        envelope = read_envelope(message.payload)
                    except NotAnEnvelope as exc:
                        await box.add(str(message.topic), message.payload, str(exc), sender=drone)
                        continue
                    if _answers(envelope, request_id):
                        return envelope
        except TimeoutError:
            pass
        raise NoAnswer(
            f"drone {drone} did not answer {what} within {timeout_s:g} s. The broker keeps it in the drone's "
            "session if the drone has connected to it before (it answers when it is back); for a drone that never "
            "has, nothing keeps it"
        )


async def _reached(
    stack: contextlib.AsyncExitStack, endpoints: Sequence[BrokerEndpoint], drone: str, what: str
) -> list[MqttClient]:
    """A connection to each broker that answers, following the drone's events; ``BrokerUnavailable`` if none does."""

    async def connect(endpoint: BrokerEndpoint) -> MqttClient:
        client = await stack.enter_async_context(tool_connection(endpoint, "dispatch"))
        await client.subscribe(Topics(drone).events, qos=1)
        return client

    results = await asyncio.gather(*(connect(e) for e in endpoints), return_exceptions=True)
    clients = [r for r in results if isinstance(r, MqttClient)]
    for endpoint, result in zip(endpoints, results, strict=True):
        if isinstance(result, BaseException):
            if not isinstance(result, BrokerUnavailable):
                raise result  # refused (not authorised, say): a mistake to report, not an outage to route round
            log.warning("%s: broker %s cannot be reached (%s); sending through the others", what, endpoint, result)
    if not clients:
        problems = "; ".join(f"{e}: {r}" for e, r in zip(endpoints, results, strict=True))
        raise BrokerUnavailable(f"{what}: no broker could be reached ({problems})")
    return clients


async def _published(clients: list[MqttClient], topic: str, payload: bytes, timeout_s: float, what: str) -> int:
    """Publish on every connection, confirmed; how many brokers took it (``BrokerUnavailable`` if none did)."""

    async def publish(client: MqttClient) -> None:
        await client.publish_confirmed(topic, payload, timeout_s=timeout_s, properties=json_properties())

    results = await asyncio.gather(*(publish(c) for c in clients), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, BrokerUnavailable):
            raise result
    taken = sum(1 for result in results if not isinstance(result, BaseException))
    if not taken:
        raise BrokerUnavailable(f"{what}: no broker took it ({'; '.join(map(str, results))})")
    return taken


async def _forward(client: MqttClient, into: asyncio.Queue[Message]) -> None:
    """One broker's messages into the queue the answer is waited on; a broker that drops meanwhile is left."""
    with contextlib.suppress(BrokerUnavailable):
        async for message in client.messages:
            into.put_nowait(message)


def _answers(envelope: Envelope, request_id: str) -> bool:
    """Whether ``envelope`` is the drone's answer to our order, read through the contract's models (an answer that
    is not what the contract says answers nothing)."""
    try:
        if envelope.type is MessageType.ORDER_ACCEPTED:
            return read_data(OrderAccepted, envelope.data).request_id == request_id
        if envelope.type is MessageType.ORDER_REJECTED:
            return read_data(OrderRejected, envelope.data).request_id == request_id
        if envelope.type is MessageType.COMMAND_RESULT:
            return read_data(CommandResult, envelope.data).request_id == request_id
    except ValidationError:
        pass
    return False
