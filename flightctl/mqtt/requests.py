"""What arrives on a drone's orders and commands topics, checked before anything acts on it.

Pure: bytes in, a typed request or every reason it was refused out. Whoever can publish to the topic (a bug in
dispatch, a hostile client with stolen credentials) gets a clear answer and changes nothing: oversized,
non-UTF-8, non-JSON, wrong-envelope and unknown-field payloads never reach the planner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import Field, ValidationError, field_validator

from flightctl.config import StrictModel, validation_problem_list
from flightctl.delivery.order import DeliveryOrder
from flightctl.delivery.wind import GroundWind
from flightctl.mqtt.consumer import NotAnEnvelope, read_json_object
from flightctl.mqtt.contract import ORDER_ID_PATTERN, REQUEST_ID_PATTERN, Envelope, MessageType

# An order is a few hundred bytes; a drop-zone polygon of a hundred points is still under 8 KiB. Anything
# bigger is a mistake or an attack, refused before it is parsed.
MAX_INBOUND_BYTES = 16 * 1024


class DepotWind(StrictModel):
    """The depot weather station's reading, which dispatch sends with the order: go/no-go needs the wind."""

    speed_m_s: float = Field(ge=0, le=100)
    measured_at: datetime

    @field_validator("measured_at")
    @classmethod
    def _zoned(cls, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("give the time with its zone (e.g. 2026-11-28T10:00:00Z)")
        return when

    def ground_wind(self) -> GroundWind:
        return GroundWind(self.speed_m_s, self.measured_at, "depot weather station (via dispatch)")


class OrderRequest(StrictModel):
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    order: DeliveryOrder
    depot_wind: DepotWind | None = None


class CommandRequest(StrictModel):
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    command: Literal["abort", "status"]
    reason: str | None = Field(default=None, max_length=200)


Request = TypeVar("Request", OrderRequest, CommandRequest)


@dataclass(frozen=True)
class Refused:
    """Why a payload was not taken, with whatever could be read of who sent it (to address the answer)."""

    reasons: list[str]
    request_id: str | None = None
    order_id: str | None = None


def parse_order(payload: bytes, drone_id: str) -> OrderRequest | Refused:
    return _parse(payload, drone_id, MessageType.ORDER, OrderRequest)


def parse_command(payload: bytes, drone_id: str) -> CommandRequest | Refused:
    return _parse(payload, drone_id, MessageType.COMMAND, CommandRequest)


def _parse(payload: bytes, drone_id: str, expected: MessageType, model: type[Request]) -> Request | Refused:
    parsed = _envelope(payload, drone_id, expected)
    if isinstance(parsed, Refused):
        return parsed
    try:
        return model.model_validate(parsed.data)
    except ValidationError as exc:
        # A refused order is answered under its id, when it has a plain one; a command names no order.
        order = parsed.data.get("order") if expected is MessageType.ORDER else None
        order_id = _order_id(order.get("order_id")) if isinstance(order, dict) else None
        return Refused(validation_problem_list(exc, "data."), _plain_id(parsed.data.get("request_id")), order_id)


def _envelope(payload: bytes, drone_id: str, expected: MessageType) -> Envelope | Refused:
    try:
        document = read_json_object(payload, max_bytes=MAX_INBOUND_BYTES)
    except NotAnEnvelope as exc:
        return Refused([str(exc)])
    data = document.get("data")
    request_id = _plain_id(data.get("request_id")) if isinstance(data, dict) else None
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        return Refused(validation_problem_list(exc), request_id)
    problems = []
    if envelope.type is not expected:
        problems.append(f"type: {envelope.type.value!r} on the {expected.value}s topic")
    if envelope.drone != drone_id:
        problems.append(f"drone: addressed to {envelope.drone!r}, this is {drone_id!r}")
    if problems:
        return Refused(problems, request_id)
    return envelope


def _plain_id(value: object) -> str | None:
    """A request id read from a refused payload, only if it is one (safe to echo back: short, plain characters)."""
    return value if isinstance(value, str) and re.fullmatch(REQUEST_ID_PATTERN, value) else None


def _order_id(value: object) -> str | None:
    return value if isinstance(value, str) and re.fullmatch(ORDER_ID_PATTERN, value) else None
