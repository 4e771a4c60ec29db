"""The typed ``data`` of every message in the contract, one model per message type (docs/mqtt.md is their prose).

Both ends use these models: the daemon builds what it publishes through them (``contract_data``), the relay,
dispatch and the CLI read through them (``read_data``), and a test validates every example in docs/mqtt.md
against them, so the document cannot drift.

Two rules shape them:
- **What leaves the aircraft is what the contract names.** The journal keeps whatever detail a transition was
  recorded with; ``contract_data`` drops every key a model does not declare, so a note written for the
  journal never reaches the ground by accident.
- **A newer drone does not break an older ground.** Models ignore keys they do not declare (a field added in a
  later version is compatible, and ``v1`` in the topic changes only when one is not), and a state name this
  version does not know is carried as text (``StateEvent.delivery_state`` is None for it), never dead-lettered.

Everything is bounded: text has a maximum length, numbers a range, lists a size; values are strict (never "1"
for 1). Orders and commands (ground to drone) are stricter still: ``mqtt.requests``, unknown keys refused.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from flightctl.delivery.actions import AbortHow
from flightctl.delivery.events import AbortCause, DeliveryState, ParcelWhereabouts
from flightctl.link.connection import LinkState
from flightctl.mqtt.contract import ORDER_ID_PATTERN, REQUEST_ID_PATTERN, MessageType
from flightctl.mqtt.requests import CommandRequest, OrderRequest

# A reason, a note, a result: a sentence or a few, for people. Longer text from the journal is clipped on the way
# out (``contract_data``), never refused: a transition must reach the ground even with a long exception in it.
MAX_TEXT = 1000
Text = Annotated[str, Field(max_length=MAX_TEXT)]
RequestId = Annotated[str, Field(pattern=REQUEST_ID_PATTERN)]
OrderId = Annotated[str, Field(pattern=ORDER_ID_PATTERN)]
Count = Annotated[int, Field(ge=0, le=2**63 - 1)]
# Enums are read from their JSON values (strict mode would want the Python enum itself); the values are still
# checked against the members.
HowBack = Annotated[AbortHow, Strict(False)]
Parcel = Annotated[ParcelWhereabouts, Strict(False)]
Cause = Annotated[AbortCause, Strict(False)]
State = Annotated[DeliveryState, Strict(False)]
# No leg of ours is longer than a day: an outbound time beyond it is not an estimate.
MAX_OUTBOUND_S = 86_400


class MessageData(BaseModel):
    """The base of every message's data: strict, bounded, frozen; undeclared keys are dropped (see the module)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


# ---- events: transitions ----------------------------------------------------------------------------------------


class StateDetail(MessageData):
    """What a transition says, beyond its name. Which fields come with which state is in docs/mqtt.md; every
    field is optional, and a customer's status is computed from the typed ones (never from ``reason`` or
    ``note``, which are for the operator and may be reworded at any time)."""

    note: Text | None = None
    reason: Text | None = None
    # ENROUTE: the planned time to the drop point, for an arrival estimate.
    outbound_time_s: float | None = Field(default=None, ge=0, le=MAX_OUTBOUND_S)
    # ABORTING: whether the parcel is still on board, how the vehicle comes home, and why (for the customer).
    with_parcel: bool | None = None
    how: HowBack | None = None
    cause: Cause | None = None
    # OUT_OF_CONTACT: what is known of the parcel, and what the vehicle does meanwhile.
    parcel: Parcel | None = None
    vehicle: Text | None = None
    # RELEASED: the evidence and where.
    evidence: Text | None = None
    detail: Text | None = None
    lat_deg: float | None = Field(default=None, ge=-90, le=90)
    lon_deg: float | None = Field(default=None, ge=-180, le=180)
    error_m: float | None = Field(default=None, ge=0, le=1e7)
    # LANDED: whether the parcel left, and the energy used by then.
    released: bool | None = None
    consumed_wh: float | None = Field(default=None, ge=-1e6, le=1e6)
    # ARRIVED (an island leg's delivery) and TOUCHED_DOWN elsewhere on a leg: the airstrip and runway it landed
    # on, and how far from the runway's planned landing point it came to rest.
    airstrip: Annotated[str, Field(max_length=80)] | None = None
    icao: Annotated[str, Field(pattern=r"^[A-Z]{4}$")] | None = None
    runway: Annotated[str, Field(max_length=8)] | None = None
    from_landing_point_m: float | None = Field(default=None, ge=0, le=1e5)
    # DIVERTING: the leg's rule (divert, return), the runway it now lands on, and the wind that ruled out the
    # destination.
    rule: Annotated[str, Field(max_length=20)] | None = None
    to: Annotated[str, Field(max_length=80)] | None = None
    wind: Annotated[str, Field(max_length=80)] | None = None
    # UNLOADED: who of the ground crew confirmed it.
    by: Annotated[str, Field(max_length=80)] | None = None
    # FAILED: the go/no-go checks that failed, and a disarm that did not take.
    failed: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=50)
    disarm_error: Text | None = None


class StateEvent(MessageData):
    # Text, not the enum: a state a newer drone sends is carried, and makes no customer update.
    state: str = Field(pattern=r"^[A-Z_]{1,40}$")
    detail: StateDetail = Field(default_factory=StateDetail)

    @property
    def delivery_state(self) -> DeliveryState | None:
        """The state, when this version knows it."""
        try:
            return DeliveryState(self.state)
        except ValueError:
            return None


# ---- events: answers --------------------------------------------------------------------------------------------


class _Answer(MessageData):
    # None when the request could not be read far enough to find its id (or the id was not a plain one).
    request_id: RequestId | None
    # Answers to unwanted messages are rationed; the first one given after a pause says how many went unanswered.
    unanswered_before: Count | None = None


class OrderAccepted(_Answer):
    duplicate: bool | None = None
    note: Text | None = None


class OrderRejected(_Answer):
    reasons: list[Text] = Field(max_length=100)


class DeadLetterRecord(MessageData):
    at_utc: str = Field(max_length=40)
    topic: str = Field(max_length=300)
    sender: Text | None
    reason: Text
    excerpt: Text


class DaemonStatus(MessageData):
    """What ``status`` answers: the daemon's delivery, its links and its counters."""

    order_id: OrderId | None
    delivery_state: State | None
    distance_to_go_m: float | None = Field(ge=0)
    autopilot_link: Annotated[LinkState, Strict(False)]
    armed: bool
    mode: Annotated[str, Field(max_length=40)] | None
    unanswered_messages: Count
    # The broker side's counters (absent from a daemon with no broker link).
    broker_connected: bool | None = None
    broker_connections: Count | None = None
    events_sent: Count | None = None
    events_refused: Text | None = None
    events_unpublishable: Count | None = None  # journal rows no envelope could carry (a bug): kept, skipped
    telemetry_sent: Count | None = None
    telemetry_dropped: Count | None = None
    telemetry_stale: Count | None = None
    telemetry_invalid: Count | None = None
    dead_letters: Count | None = None
    last_dead_letter: DeadLetterRecord | None = None
    remote_id: RemoteIdHealth | None = None


class CommandResult(_Answer):
    command: Literal["abort", "status", "unloaded", "airstrip_wind"] | None
    ok: bool
    result: Text
    status: DaemonStatus | None = None


class FlightRecordData(MessageData):
    """A flight's logbook entry as the aircraft knows it (``delivery.flight_record``): the relay chains it into
    the operator's logbook with the ground's own data (operator, pilot, registration)."""

    takeoff_utc: Annotated[str, Field(max_length=40)]
    landing_utc: Annotated[str, Field(max_length=40)]
    duration_s: float = Field(ge=0, le=MAX_OUTBOUND_S)
    takeoff_lat_deg: float = Field(ge=-90, le=90)
    takeoff_lon_deg: float = Field(ge=-180, le=180)
    landing_lat_deg: float | None = Field(default=None, ge=-90, le=90)
    landing_lon_deg: float | None = Field(default=None, ge=-180, le=180)
    landing_airstrip: Annotated[str, Field(max_length=80)] | None = None
    outcome: Annotated[str, Field(pattern=r"^[A-Z_]{1,40}$")]
    delivered: bool
    preflight: Text
    occurrences: list[Text] = Field(max_length=50)
    energy_used_wh: float | None = Field(default=None, ge=-1e6, le=1e6)


# ---- not sequenced ----------------------------------------------------------------------------------------------


class RemoteIdHealth(MessageData):
    """Remote ID as the companion sees it (``flightctl.vehicle.remote_id``); absent when the aircraft flies
    without it. ``problems`` are for people, worded as the go/no-go words them."""

    healthy: bool
    transmitter: Annotated[str, Field(max_length=40)] | None  # its last ARM_STATUS: GOOD_TO_ARM, PRE_ARM_FAIL_...
    transmitter_age_s: float | None = Field(ge=0, le=1e7)
    operator_id: Annotated[str, Field(max_length=20)] | None
    problems: Annotated[list[Text], Field(max_length=8)]


class TelemetryData(MessageData):
    """One sample; any value the autopilot did not report (or reported as not a number) is null."""

    lat_deg: float | None = Field(ge=-90, le=90)
    lon_deg: float | None = Field(ge=-180, le=180)
    alt_amsl_m: float | None = Field(ge=-1000, le=100_000)
    relative_alt_m: float | None = Field(ge=-10_000, le=100_000)
    ground_speed_m_s: float | None = Field(ge=0, le=1000)
    heading_deg: float | None = Field(ge=0, le=360)
    battery_v: float | None = Field(ge=0, le=1000)
    battery_pct: int | None = Field(ge=0, le=100)
    mode: Annotated[str, Field(max_length=40)] | None
    armed: bool
    gps_fix: Annotated[str, Field(max_length=40)] | None
    gps_satellites: int | None = Field(ge=0, le=255)
    ekf_ok: bool | None
    order_id: OrderId | None
    delivery_state: State | None
    distance_to_go_m: float | None = Field(ge=0)
    received_unix_s: float = Field(ge=0)
    remote_id: RemoteIdHealth | None = None


class OnlineData(MessageData):
    online: bool
    version: Annotated[str, Field(max_length=40)]
    order_id: OrderId | None
    # Offline only: "stopped" (a daemon stopped on purpose) or "connection lost" (the last will).
    reason: Literal["stopped", "connection lost"] | None = None


DATA_MODELS: dict[MessageType, type[BaseModel]] = {
    MessageType.ORDER: OrderRequest,
    MessageType.COMMAND: CommandRequest,
    MessageType.STATE: StateEvent,
    MessageType.ORDER_ACCEPTED: OrderAccepted,
    MessageType.ORDER_REJECTED: OrderRejected,
    MessageType.COMMAND_RESULT: CommandResult,
    MessageType.FLIGHT_RECORD: FlightRecordData,
    MessageType.TELEMETRY: TelemetryData,
    MessageType.ONLINE: OnlineData,
}

M = TypeVar("M", bound=BaseModel)


def read_data(model: type[M], data: dict[str, Any]) -> M:
    """A message's data as ``model``; ``ValidationError`` when it is not what the contract says."""
    return model.model_validate(data)


def contract_data(type_: MessageType, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the contract carries it for ``type_``: keys it does not name dropped, text clipped to its
    bound, everything else validated (``ValidationError`` for a value no model allows: a bug that wrote it)."""
    model = DATA_MODELS[type_]
    return model.model_validate(_clipped(data)).model_dump(mode="json", exclude_unset=True)


def _clipped(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
    if isinstance(value, dict):
        return {key: _clipped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clipped(item) for item in value]
    return value


__all__ = [
    "DATA_MODELS",
    "CommandResult",
    "DaemonStatus",
    "FlightRecordData",
    "OnlineData",
    "OrderAccepted",
    "OrderRejected",
    "StateDetail",
    "StateEvent",
    "TelemetryData",
    "ValidationError",
    "contract_data",
    "read_data",
]
