"""What a customer may see of a drone's events: pure mapping, plain words, nothing of the drone's internals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flightctl.ground.customer_status import DROP_ALLOWANCE_S, CustomerStatus, customer_update
from flightctl.status.contract import Envelope, MessageType, TimeSource

AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def event(type_: MessageType, data: dict[str, Any]) -> Envelope:
    return Envelope(drone="d", seq=1, time=AT, time_source=TimeSource.GPS, type=type_, order_id="KWL-1", data=data)


def state(name: str, **detail: Any) -> Envelope:
    return event(MessageType.STATE, {"state": name, "detail": detail})


@pytest.mark.parametrize(
    ("envelope", "status"),
    [
        (event(MessageType.ORDER_ACCEPTED, {"request_id": "r"}), CustomerStatus.ACCEPTED),
        (
            event(MessageType.ORDER_REJECTED, {"request_id": "r", "reasons": ["NO-GO: wind 14 m/s"]}),
            CustomerStatus.PROBLEM,
        ),
        (state("ENROUTE", outbound_time_s=120), CustomerStatus.DEPARTED),
        (state("ON_STATION"), CustomerStatus.ARRIVING),
        (state("RELEASED", lat_deg=58.95, lon_deg=-2.95), CustomerStatus.DELIVERED),
        (state("ABORTING", reason="battery 13.9 V below the abort voltage", with_parcel=True), CustomerStatus.PROBLEM),
        (state("OUT_OF_CONTACT", parcel="presumed on board"), CustomerStatus.PROBLEM),
        (state("FAILED", reason="vehicle did not arm"), CustomerStatus.PROBLEM),
        (state("LANDED", released=False), CustomerStatus.PROBLEM),
    ],
)
def test_events_become_plain_statuses_without_internals(envelope: Envelope, status: CustomerStatus) -> None:
    update = customer_update(envelope)
    assert update is not None
    assert update.status is status
    assert update.at == AT
    for internal in ("58.95", "-2.95", "NO-GO", "battery", "arm", "wind", "V"):
        assert internal not in update.message


def test_the_arrival_estimate_comes_from_the_planned_outbound_time() -> None:
    departed = customer_update(state("ENROUTE", outbound_time_s=120))
    assert departed is not None
    assert departed.eta == AT + timedelta(seconds=120 + DROP_ALLOWANCE_S)


@pytest.mark.parametrize(
    "envelope",
    [
        state("PREFLIGHT"), state("UPLOADING"), state("RETURNING"), state("LANDED", released=True),
        state("ABORTING", reason="after the drop", with_parcel=False),
        event(MessageType.ORDER_ACCEPTED, {"request_id": "r", "duplicate": True}),
        event(MessageType.COMMAND_RESULT, {"request_id": "c", "ok": True}),
    ],
)  # fmt: skip
def test_events_a_customer_has_no_use_for_change_nothing(envelope: Envelope) -> None:
    assert customer_update(envelope) is None
