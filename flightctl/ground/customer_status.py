"""What a customer may see of their order, from a drone's events. Pure.

Only these words, a time and (on the way) an arrival estimate ever reach a customer: no positions, no drone
internals, no other order. A PROBLEM says what it means for the parcel in plain words; the reason the drone
gave stays with the operator.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flightctl.config import validation_problems
from flightctl.delivery.events import DeliveryState, ParcelWhereabouts
from flightctl.mqtt.consumer import NotAnEnvelope
from flightctl.mqtt.contract import Envelope, MessageType

# Over the drop point to parcel down: the hold for the go-ahead and the descent, generously.
DROP_ALLOWANCE_S = 90
# No leg of ours is longer than a day: an outbound time beyond it is not an estimate.
MAX_OUTBOUND_S = 86_400


class _Read(BaseModel):
    """What the ground reads of an event's data: typed and bounded; fields it does not read are let through."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)


class _StateDetail(_Read):
    outbound_time_s: float | None = Field(default=None, ge=0, le=MAX_OUTBOUND_S)
    with_parcel: bool = True
    parcel: str | None = Field(default=None, max_length=200)
    released: bool = False


class _StateData(_Read):
    # A str, not the enum: a state a newer drone sends and this relay does not know makes no customer update,
    # and is still taken (its sequence number recorded), not dead-lettered.
    state: str = Field(max_length=40)
    detail: _StateDetail | None = None


class _AcceptedData(_Read):
    duplicate: bool = False


_ReadModel = TypeVar("_ReadModel", bound="_Read")


class CustomerStatus(enum.StrEnum):
    ACCEPTED = "ACCEPTED"
    DEPARTED = "DEPARTED"
    ARRIVING = "ARRIVING"
    DELIVERED = "DELIVERED"
    PROBLEM = "PROBLEM"


@dataclass(frozen=True)
class StatusUpdate:
    status: CustomerStatus
    at: datetime
    message: str  # for the customer, plain words
    eta: datetime | None = None


def _read(model: type[_ReadModel], event: Envelope) -> _ReadModel:
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        raise NotAnEnvelope(f"{event.type.value} event: {validation_problems(exc)}") from None


def customer_update(event: Envelope) -> StatusUpdate | None:
    """The customer-facing update an event makes, or None for one the customer has no use for. An event whose
    data is not what the drone writes raises ``NotAnEnvelope``."""
    at = event.time
    if event.type is MessageType.ORDER_ACCEPTED and not _read(_AcceptedData, event).duplicate:
        return StatusUpdate(CustomerStatus.ACCEPTED, at, "Your parcel is booked on a drone.")
    if event.type is MessageType.ORDER_REJECTED and event.order_id is not None:
        return StatusUpdate(
            CustomerStatus.PROBLEM, at, "Your parcel could not go by drone this time. We will be in touch."
        )
    if event.type is not MessageType.STATE:
        return None
    data = _read(_StateData, event)
    state, detail = data.state, data.detail or _StateDetail()
    if state == DeliveryState.ENROUTE:
        outbound = detail.outbound_time_s
        eta = at + timedelta(seconds=outbound + DROP_ALLOWANCE_S) if outbound is not None else None
        return StatusUpdate(CustomerStatus.DEPARTED, at, "Your parcel is on its way.", eta)
    if state == DeliveryState.ON_STATION:
        return StatusUpdate(
            CustomerStatus.ARRIVING, at, "The drone is above the drop point.", at + timedelta(seconds=DROP_ALLOWANCE_S)
        )
    if state == DeliveryState.RELEASED:
        return StatusUpdate(CustomerStatus.DELIVERED, at, "Your parcel has been delivered.")
    if state == DeliveryState.ABORTING and detail.with_parcel:
        return StatusUpdate(CustomerStatus.PROBLEM, at, "The drone is bringing your parcel back to the depot.")
    if state == DeliveryState.OUT_OF_CONTACT and detail.parcel != ParcelWhereabouts.DELIVERED:
        return StatusUpdate(CustomerStatus.PROBLEM, at, "We are checking on your delivery.")
    if state == DeliveryState.FAILED:
        return StatusUpdate(CustomerStatus.PROBLEM, at, "Your parcel could not leave the depot. We will be in touch.")
    if state == DeliveryState.LANDED and not detail.released:
        return StatusUpdate(CustomerStatus.PROBLEM, at, "Your parcel is back at the depot. We will be in touch.")
    return None
