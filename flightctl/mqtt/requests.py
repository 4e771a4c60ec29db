"""What arrives on a drone's orders and commands topics, checked before anything acts on it.

Pure: bytes in, a typed request or every reason it was refused out. Whoever can publish to the topic (a bug in
dispatch, a hostile client with stolen credentials) gets a clear answer and changes nothing: oversized,
non-UTF-8, non-JSON, wrong-envelope and unknown-field payloads never reach the planner.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator

from flightctl.config import StrictModel, validation_problem_list
from flightctl.delivery.order import DeliveryOrder
from flightctl.delivery.runway_choice import SurfaceWind
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


ICAO_PATTERN = r"^[A-Z]{4}$"
Icao = Annotated[str, Field(pattern=ICAO_PATTERN)]
# A leg is named by its config file's name (kirkwall-north-ronaldsay), which the aircraft's config lists.
LEG_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,79}$"
# Who confirms an unload: a name or a crew id, journaled and shown to the operator; one line of text.
CREW_PATTERN = r"^[^\x00-\x1f\x7f]{1,80}$"


class LegOrder(StrictModel):
    """An island leg for a fixed-wing aircraft: its opaque id, the leg, the mass of what it carries, and for a
    return leg the id of the leg it turns around from (whose unload must have been confirmed)."""

    order_id: str = Field(pattern=ORDER_ID_PATTERN)
    leg: str = Field(pattern=LEG_NAME_PATTERN)
    parcel_kg: float = Field(ge=0, le=1000)
    follows: str | None = Field(default=None, pattern=ORDER_ID_PATTERN)


def _measured(where: str, wind: SurfaceWind) -> None:
    if wind.measured_at is None:
        raise ValueError(f"{where}: give measured_at: go/no-go refuses a wind whose age it cannot know")


class OrderRequest(StrictModel):
    """A drop (``order``, with the depot's wind) or an island leg (``leg``, with each airstrip's measured
    surface wind by ICAO and the forecast wind aloft along it): exactly one of the two."""

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    order: DeliveryOrder | None = None
    depot_wind: DepotWind | None = None
    leg: LegOrder | None = None
    airstrip_winds: dict[Icao, SurfaceWind] | None = Field(default=None, max_length=3)
    wind_aloft: SurfaceWind | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.order is None) == (self.leg is None):
            raise ValueError("give order (a drop) or leg (an island leg): exactly one of them")
        if self.order is not None and (self.airstrip_winds is not None or self.wind_aloft is not None):
            raise ValueError("airstrip_winds and wind_aloft go with a leg; a drop order gives depot_wind")
        if self.leg is not None:
            if self.depot_wind is not None:
                raise ValueError("depot_wind goes with a drop order; a leg gives airstrip_winds and wind_aloft")
            if self.wind_aloft is None:
                raise ValueError("a leg needs wind_aloft, the forecast along it: its energy is judged into that wind")
            for icao, wind in (self.airstrip_winds or {}).items():
                _measured(f"airstrip_winds.{icao}", wind)
        return self

    @property
    def order_id(self) -> str:
        ordered = self.order if self.order is not None else self.leg
        assert ordered is not None  # the validator saw to it
        return ordered.order_id

    def what(self) -> dict[str, Any]:
        """What is ordered, as the journal keeps it and a repeat is compared with: the drop or the leg, without
        the weather (an order sent again with a newer wind is the same order)."""
        key, ordered = ("order", self.order) if self.order is not None else ("leg", self.leg)
        assert ordered is not None
        return {key: ordered.model_dump(mode="json", exclude_none=True)}


COMMANDS_NEEDING: dict[str, frozenset[str]] = {
    "abort": frozenset(),
    "status": frozenset(),
    "unloaded": frozenset({"order_id", "by"}),
    "airstrip_wind": frozenset({"icao", "wind"}),
}
# What each may carry besides: a reason with an abort (and, as ever, a status; it is ignored there).
COMMANDS_TAKING: dict[str, frozenset[str]] = {
    **COMMANDS_NEEDING,
    "abort": frozenset({"reason"}),
    "status": frozenset({"reason"}),
}


class CommandRequest(StrictModel):
    """``abort`` (``reason``) and ``status``; for island legs, ``unloaded`` (the crew's confirmation that leg
    ``order_id`` is unloaded, ``by`` whom) and ``airstrip_wind`` (a new surface wind measured at ``icao``)."""

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    command: Literal["abort", "status", "unloaded", "airstrip_wind"]
    reason: str | None = Field(default=None, max_length=200)
    order_id: str | None = Field(default=None, pattern=ORDER_ID_PATTERN)
    by: str | None = Field(default=None, pattern=CREW_PATTERN)
    icao: Icao | None = None
    wind: SurfaceWind | None = None

    @model_validator(mode="after")
    def _fields_of_the_command(self) -> Self:
        given = {name for name in ("reason", "order_id", "by", "icao", "wind") if getattr(self, name) is not None}
        missing = COMMANDS_NEEDING[self.command] - given
        if missing:
            raise ValueError(f"{self.command} needs {', '.join(sorted(missing))}")
        extra = given - COMMANDS_TAKING[self.command]
        if extra:
            raise ValueError(f"{self.command} takes no {', '.join(sorted(extra))}")
        if self.wind is not None:
            _measured("wind", self.wind)
        return self


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
        # Strict, as JSON: a number is a JSON number and a flag a JSON boolean, never "5" or "true" (a sender
        # that quotes its numbers has a bug, and its wind or mass is not to be guessed at); times and enums are
        # still read from their JSON strings.
        return model.model_validate_json(json.dumps(parsed.data), strict=True)
    except ValidationError as exc:
        # A refused order is answered under its id, when it has a plain one; a command names no order.
        order_id = _refused_order_id(parsed.data) if expected is MessageType.ORDER else None
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


def _refused_order_id(data: dict[str, Any]) -> str | None:
    """The id of a refused drop or leg order, only if it is a plain one."""
    for key in ("order", "leg"):
        ordered = data.get(key)
        value = ordered.get("order_id") if isinstance(ordered, dict) else None
        if isinstance(value, str) and re.fullmatch(ORDER_ID_PATTERN, value):
            return value
    return None
