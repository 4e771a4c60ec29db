"""What a customer may see of their order, from a drone's events. Pure.

Only these words, a time and (on the way) an arrival estimate ever reach a customer: no positions, no drone
internals, no other order. A PROBLEM says what it means for the parcel in plain words; the reason the drone
gave stays with the operator.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from flightctl.status.contract import Envelope, MessageType

# Over the drop point to parcel down: the hold for the go-ahead and the descent, generously.
DROP_ALLOWANCE_S = 90


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


def customer_update(event: Envelope) -> StatusUpdate | None:
    """The customer-facing update an event makes, or None for one the customer has no use for."""
    at = event.time
    if event.type is MessageType.ORDER_ACCEPTED and not event.data.get("duplicate"):
        return StatusUpdate(CustomerStatus.ACCEPTED, at, "Your parcel is booked on a drone.")
    if event.type is MessageType.ORDER_REJECTED and event.order_id is not None:
        return StatusUpdate(
            CustomerStatus.PROBLEM, at, "Your parcel could not go by drone this time. We will be in touch."
        )
    if event.type is not MessageType.STATE:
        return None
    state = event.data.get("state")
    detail = event.data.get("detail") or {}
    if state == "ENROUTE":
        outbound = detail.get("outbound_time_s")
        eta = at + timedelta(seconds=float(outbound) + DROP_ALLOWANCE_S) if isinstance(outbound, int | float) else None
        return StatusUpdate(CustomerStatus.DEPARTED, at, "Your parcel is on its way.", eta)
    if state == "ON_STATION":
        return StatusUpdate(
            CustomerStatus.ARRIVING, at, "The drone is above the drop point.", at + timedelta(seconds=DROP_ALLOWANCE_S)
        )
    if state == "RELEASED":
        return StatusUpdate(CustomerStatus.DELIVERED, at, "Your parcel has been delivered.")
    if state == "ABORTING" and detail.get("with_parcel", True):
        return StatusUpdate(CustomerStatus.PROBLEM, at, "The drone is bringing your parcel back to the depot.")
    if state == "OUT_OF_CONTACT" and detail.get("parcel") != "delivered before the link was lost":
        return StatusUpdate(CustomerStatus.PROBLEM, at, "We are checking on your delivery.")
    if state == "FAILED":
        return StatusUpdate(CustomerStatus.PROBLEM, at, "Your parcel could not leave the depot. We will be in touch.")
    if state == "LANDED" and not detail.get("released", False):
        return StatusUpdate(CustomerStatus.PROBLEM, at, "Your parcel is back at the depot. We will be in touch.")
    return None
