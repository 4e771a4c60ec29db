"""The MQTT contract between a drone and the ground (docs/mqtt.md is its prose): topics, the envelope, message types.

Every topic lives under one drone's namespace, ``flightctl/v1/drones/<drone id>/...``; the ``v1`` changes only
when a message changes incompatibly. Every message, in and out, is one JSON envelope:

    {"schema": 1, "drone": "orkney-07", "seq": 42, "time": "2026-11-28T10:02:03.123Z", "time_source": "gps",
     "type": "state", "order_id": "KWL-0001", "data": {...}}

``seq`` is the drone's event sequence number (events only): it never repeats and never goes back, across
restarts, so a consumer that de-duplicates by (drone, seq) sees each event once. Orders and events carry the
order id and nothing of the customer.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1
TOPIC_ROOT = "flightctl/v1/drones"
# A drone id becomes a topic level and a broker user name: no MQTT wildcards, separators or '%' (mosquitto's
# ACL substitution), never empty.
DRONE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
ORDER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # as DeliveryOrder.order_id
# What a registry column holds (PostgreSQL BIGINT, SQLite INTEGER): a larger number is nobody's sequence number.
MAX_SEQ = 2**63 - 1
# Message times outside this window are a broken clock or an attack; inside it, adding a day or so to a time
# (an arrival estimate) can never overflow a datetime.
EARLIEST_TIME = datetime(2020, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)


class MessageType(enum.StrEnum):
    # ground -> drone (QoS 1)
    ORDER = "order"
    COMMAND = "command"
    # drone -> ground, on events (QoS 1, sequenced)
    STATE = "state"  # a journaled delivery transition
    ORDER_ACCEPTED = "order_accepted"
    ORDER_REJECTED = "order_rejected"
    COMMAND_RESULT = "command_result"
    FLIGHT_RECORD = "flight_record"  # a flight's logbook entry, once it has ended
    # drone -> ground, not sequenced
    TELEMETRY = "telemetry"  # QoS 0, with a message expiry
    ONLINE = "online"  # retained; the last will says offline


class TimeSource(enum.StrEnum):
    GPS = "gps"  # the autopilot's GPS-derived UTC (SYSTEM_TIME)
    COMPANION = "companion"  # the companion computer's clock
    SENDER = "sender"  # a ground system's clock (orders and commands)


def drone_client_id(drone_id: str) -> str:
    """The one MQTT client id a drone's account may connect with (the broker binds the two)."""
    return f"flightctl-{drone_id}"


def relay_client_id(account: str) -> str:
    """The one MQTT client id a relay's account may connect with."""
    return f"flightctl-relay-{account}"


@dataclass(frozen=True)
class Topics:
    """One drone's topics."""

    drone_id: str

    @property
    def base(self) -> str:
        return f"{TOPIC_ROOT}/{self.drone_id}"

    @property
    def orders(self) -> str:
        return f"{self.base}/orders"

    @property
    def commands(self) -> str:
        return f"{self.base}/commands"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def telemetry(self) -> str:
        return f"{self.base}/telemetry"

    @property
    def online(self) -> str:
        return f"{self.base}/online"


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    schema_version: Literal[1] = Field(default=1, alias="schema")
    drone: str = Field(pattern=DRONE_ID_PATTERN)
    seq: int | None = Field(default=None, ge=1, le=MAX_SEQ, strict=True)  # never "1", 1.0 or true
    time: datetime
    time_source: TimeSource
    type: MessageType
    order_id: str | None = Field(default=None, pattern=ORDER_ID_PATTERN)
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def _sane_time(cls, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("give the time with its zone (e.g. 2026-11-28T10:00:00Z)")
        if not EARLIEST_TIME <= when < LATEST_TIME:
            raise ValueError(f"{when.isoformat()} is outside {EARLIEST_TIME.year} to {LATEST_TIME.year}")
        return when

    def to_json(self) -> bytes:
        record = self.model_dump(mode="json", by_alias=True)
        record["time"] = _utc_text(self.time)
        return json.dumps(record, separators=(",", ":"), allow_nan=False).encode()


def _utc_text(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
