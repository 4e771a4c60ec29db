"""What a customer may see of their order, from a drone's events. Pure.

Only a status, a step (whose words are the tracking page's catalogue), a time, (on the way) an arrival
estimate and (for an island leg that arrived) its destination airstrip's name ever reach a customer: no
positions, no drone internals, no other order; a diverted leg never says where it landed. A PROBLEM says what it means
for the parcel; the reason the drone gave stays with the operator.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from flightctl.config import validation_problems
from flightctl.delivery.events import AbortCause, DeliveryState, ParcelWhereabouts
from flightctl.mqtt.consumer import NotAnEnvelope
from flightctl.mqtt.contract import Envelope, MessageType
from flightctl.mqtt.messages import OrderAccepted, StateEvent, read_data

# Over the drop point to parcel down: the hold for the go-ahead and the descent, generously.
DROP_ALLOWANCE_S = 90

M = TypeVar("M", bound=BaseModel)


class CustomerStatus(enum.StrEnum):
    ACCEPTED = "ACCEPTED"
    DEPARTED = "DEPARTED"
    ARRIVING = "ARRIVING"
    DELIVERED = "DELIVERED"
    PROBLEM = "PROBLEM"


class Step(enum.StrEnum):
    """What happened, as a key: the words a customer reads for it are the tracking page's (its catalogue,
    configs/tracking/), so the operator rewords them, or adds a language, without touching code."""

    BOOKED = "booked"
    NOT_BY_DRONE = "not_by_drone"
    ON_ITS_WAY = "on_its_way"
    ABOVE_DROP = "above_drop"
    DELIVERED = "delivered"
    RETURNING = "returning"
    RETURNING_WIND = "returning_wind"
    RETURNING_BATTERY = "returning_battery"
    RETURNING_DROP_POINT = "returning_drop_point"
    CHECKING = "checking"
    NOT_LEFT = "not_left"
    BACK_AT_DEPOT = "back_at_depot"
    ARRIVED_AT_AIRSTRIP = "arrived_at_airstrip"  # an island leg landed at its destination: the airstrip named
    DIVERTED = "diverted"  # an island leg could not land at its destination (the weather): never says where


# Why the drone turned back, in the customer's terms: a cause the drone names (never its operator's sentence).
RETURNING_BECAUSE: dict[AbortCause | None, Step] = {
    AbortCause.WIND: Step.RETURNING_WIND,
    AbortCause.BATTERY: Step.RETURNING_BATTERY,
    AbortCause.DROP_POINT: Step.RETURNING_DROP_POINT,
}

# The steps after which the parcel will not go by drone at all (not a delay: another way is needed).
FAILED_STEPS = frozenset({Step.NOT_BY_DRONE, Step.NOT_LEFT})


@dataclass(frozen=True)
class StatusUpdate:
    status: CustomerStatus
    at: datetime
    step: Step
    eta: datetime | None = None
    place: str | None = None  # the destination airstrip an island leg arrived at, for where to collect


def read_contract(model: type[M], event: Envelope) -> M:
    try:
        return read_data(model, event.data)
    except ValidationError as exc:
        raise NotAnEnvelope(f"{event.type.value} event: {validation_problems(exc)}") from None


def customer_update(event: Envelope) -> StatusUpdate | None:
    """The customer-facing update an event makes, or None for one the customer has no use for. An event whose
    data is not what the drone writes raises ``NotAnEnvelope``."""
    at = event.time
    if event.type is MessageType.ORDER_ACCEPTED and not read_contract(OrderAccepted, event).duplicate:
        return StatusUpdate(CustomerStatus.ACCEPTED, at, Step.BOOKED)
    if event.type is MessageType.ORDER_REJECTED and event.order_id is not None:
        return StatusUpdate(CustomerStatus.PROBLEM, at, Step.NOT_BY_DRONE)
    if event.type is not MessageType.STATE:
        return None
    transition = read_contract(StateEvent, event)
    # Typed fields only: reason, note and the like are for the operator, and may be reworded at any time.
    state, detail = transition.delivery_state, transition.detail
    if state is DeliveryState.ENROUTE:
        outbound = detail.outbound_time_s
        eta = at + timedelta(seconds=outbound + DROP_ALLOWANCE_S) if outbound is not None else None
        return StatusUpdate(CustomerStatus.DEPARTED, at, Step.ON_ITS_WAY, eta)
    if state is DeliveryState.ON_STATION:
        return StatusUpdate(CustomerStatus.ARRIVING, at, Step.ABOVE_DROP, at + timedelta(seconds=DROP_ALLOWANCE_S))
    if state is DeliveryState.RELEASED:
        return StatusUpdate(CustomerStatus.DELIVERED, at, Step.DELIVERED)
    if state is DeliveryState.ARRIVED:
        return StatusUpdate(CustomerStatus.DELIVERED, at, Step.ARRIVED_AT_AIRSTRIP, place=detail.airstrip)
    if state is DeliveryState.DIVERTING:
        return StatusUpdate(CustomerStatus.PROBLEM, at, Step.DIVERTED)
    if state is DeliveryState.ABORTING and detail.with_parcel is not False:
        return StatusUpdate(CustomerStatus.PROBLEM, at, RETURNING_BECAUSE.get(detail.cause, Step.RETURNING))
    if state is DeliveryState.OUT_OF_CONTACT and detail.parcel is not ParcelWhereabouts.DELIVERED:
        return StatusUpdate(CustomerStatus.PROBLEM, at, Step.CHECKING)
    if state is DeliveryState.FAILED:
        return StatusUpdate(CustomerStatus.PROBLEM, at, Step.NOT_LEFT)
    if state is DeliveryState.LANDED and not detail.released:
        # A leg lands at an airstrip (named in its detail), never at a depot: not the destination, so diverted.
        return StatusUpdate(CustomerStatus.PROBLEM, at, Step.DIVERTED if detail.airstrip else Step.BACK_AT_DEPOT)
    return None
