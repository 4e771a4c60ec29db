"""Sending an order or a command to a drone and waiting for its answer: what dispatch does, and `flightctl
order send`, `order leg`, `leg unloaded --broker` and `leg report-wind`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from flightctl.delivery.order import DeliveryOrder
from flightctl.delivery.wind import GroundWind
from flightctl.errors import ConfigError, VehicleTimeout
from flightctl.mqtt.broker import json_properties, tool_connection
from flightctl.mqtt.consumer import NotAnEnvelope, read_envelope
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from flightctl.mqtt.dead_letters import DeadLetterBox
from flightctl.mqtt.endpoint import BrokerEndpoint
from flightctl.mqtt.messages import CommandResult, OrderAccepted, OrderRejected, read_data
from flightctl.mqtt.requests import MAX_INBOUND_BYTES, DepotWind


class NoAnswer(VehicleTimeout):
    """The drone did not answer a request in time (offline, or the broker keeps the request for later)."""


def order_message(drone: str, order: DeliveryOrder, request_id: str, wind: GroundWind | None) -> bytes:
    data: dict[str, Any] = {"request_id": request_id, "order": order.model_dump(mode="json", exclude_none=True)}
    if wind is not None:
        data["depot_wind"] = DepotWind(speed_m_s=wind.speed_m_s, measured_at=wind.measured_at).model_dump(mode="json")
    return request_message(drone, MessageType.ORDER, data, order.order_id)


async def send_order(
    endpoint: BrokerEndpoint,
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
        endpoint, drone, Topics(drone).orders, payload, request_id, f"order {order.order_id}",
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
    endpoint: BrokerEndpoint,
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
    """Publish an order or a command (``payload``, carrying ``request_id``) on ``topic`` and return the drone's
    answer to it: order_accepted, order_rejected or command_result. ``what`` names it in a ``NoAnswer``."""
    box = dead_letters or DeadLetterBox("dispatch")
    if len(payload) > MAX_INBOUND_BYTES:  # the drone would refuse it unread: say so here, and send nothing
        raise ConfigError(f"{what}: {len(payload)} bytes, over the drone's limit of {MAX_INBOUND_BYTES}")
    async with tool_connection(endpoint, "dispatch") as client:
        await client.subscribe(Topics(drone).events, qos=1)
        await client.publish_confirmed(topic, payload, timeout_s=timeout_s, properties=json_properties())
        on_sent()
        try:
            async with asyncio.timeout(timeout_s):
                async for message in client.messages:
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
