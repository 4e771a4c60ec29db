"""What a customer may see of a drone's events: pure mapping, plain words, nothing of the drone's internals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flightctl.delivery.actions import Enter, Note
from flightctl.delivery.decide import Limits, Observed
from flightctl.delivery.events import AbortCause, DeliveryState
from flightctl.delivery.machine import next_state
from flightctl.ground.customer_status import DROP_ALLOWANCE_S, CustomerStatus, Step, customer_update
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource
from tests.unit.test_delivery_decide import PLACE, entered, flown_to, flying, history_of, noted, run

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
        (state("OUT_OF_CONTACT", parcel="on_board"), CustomerStatus.PROBLEM),
        (state("FAILED", reason="vehicle did not arm"), CustomerStatus.PROBLEM),
        (state("LANDED", released=False), CustomerStatus.PROBLEM),
    ],
)
def test_events_become_plain_statuses_without_internals(envelope: Envelope, status: CustomerStatus) -> None:
    update = customer_update(envelope)
    assert update is not None
    assert update.status is status
    assert update.at == AT
    assert isinstance(update.step, Step), "a step whose words are the catalogue's, never the drone's sentence"


def test_an_island_leg_is_told_by_its_airstrip_on_arrival_and_never_where_it_diverted() -> None:
    """Test a leg's events as the customer sees them: ARRIVED is delivered at the destination airstrip, named;
    DIVERTING and a landing elsewhere are a delay that names no airstrip (nor the runway, the wind, the rule)."""
    arrived = customer_update(
        state("ARRIVED", airstrip="North Ronaldsay", icao="EGEN", runway="03", from_landing_point_m=12.0)
    )
    assert arrived is not None
    assert (arrived.status, arrived.step, arrived.place) == (
        CustomerStatus.DELIVERED, Step.ARRIVED_AT_AIRSTRIP, "North Ronaldsay"
    )  # fmt: skip
    diverting = customer_update(state("DIVERTING", rule="divert", to="EGES runway 03", wind="120 deg at 10 m/s"))
    landed_elsewhere = customer_update(state("LANDED", released=False, airstrip="Sanday", icao="EGES", runway="03"))
    for update in (diverting, landed_elsewhere):
        assert update is not None
        assert (update.status, update.step, update.place) == (CustomerStatus.PROBLEM, Step.DIVERTED, None)
    unloaded = customer_update(state("UNLOADED", by="NRL crew 2"))
    assert unloaded is None, "who unloaded it is the operator's business"


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


@pytest.mark.parametrize(("released", "status"), [(False, CustomerStatus.PROBLEM), (True, None)])
def test_what_the_customer_sees_of_a_lost_link_comes_from_what_decide_writes(
    released: bool, status: CustomerStatus | None
) -> None:
    """Test the OUT_OF_CONTACT detail that decide itself writes, through the customer mapping: "we are checking on
    your delivery" when the parcel may be on board, nothing new once it was delivered. Rewording what decide
    says of the parcel, without the shared vocabulary, fails here."""
    last = DeliveryState.RELEASED if released else DeliveryState.ON_STATION
    history = history_of(flown_to(last, 5_000))
    limits = Limits(link_lost_give_up_s=60)
    for action in run(PLACE, history, Observed(flying(PLACE), link_lost_s=0.0), limits=limits):
        history.apply(
            noted(last, action.observation)
            if isinstance(action, Note)
            else entered(next_state(history.state, action.trigger), 6_000, **action.detail)
        )
    [give_up] = run(PLACE, history, Observed(flying(PLACE), link_lost_s=61.0), limits=limits)
    assert isinstance(give_up, Enter)
    entering = next_state(history.state, give_up.trigger)
    assert entering is DeliveryState.OUT_OF_CONTACT
    update = customer_update(state(entering.value, **give_up.detail))
    assert (update.status if update else None) == status


@pytest.mark.parametrize("name", [s.value for s in DeliveryState])
def test_rewording_what_the_drone_says_changes_nothing_the_customer_sees(name: str) -> None:
    """Test that the free-text fields of a transition (reason, note, vehicle, evidence's words) never decide what a
    customer sees: the same transition with every sentence reworded gives the same update."""
    typed = {"with_parcel": True, "parcel": "on_board", "released": False, "outbound_time_s": 60.0}
    said = {"reason": "battery low", "note": "armed before the restart", "vehicle": "holding", "detail": "Gripper"}
    reworded = {key: f"something else entirely about {key}" for key in said}
    assert customer_update(state(name, **typed, **said)) == customer_update(state(name, **typed, **reworded))


def test_a_state_this_version_does_not_know_makes_no_update_and_is_not_refused() -> None:
    assert customer_update(state("FERRYING", note="a newer drone's state")) is None


@pytest.mark.parametrize(
    ("cause", "step"),
    [
        (AbortCause.WIND, Step.RETURNING_WIND),
        (AbortCause.BATTERY, Step.RETURNING_BATTERY),
        (AbortCause.DROP_POINT, Step.RETURNING_DROP_POINT),
        (AbortCause.OTHER, Step.RETURNING),
        (None, Step.RETURNING),
    ],
)
def test_a_turn_back_tells_the_customer_why_from_the_typed_cause(cause: AbortCause | None, step: Step) -> None:
    """Test that ABORTING with the parcel says why in the customer's terms (wind, battery, the drop point) from
    ``cause`` alone: the operator's reason, here naming something else, plays no part; a drone that sends no
    cause (an older version) still says the parcel is coming back."""
    detail: dict[str, Any] = {"reason": "battery 9.9 V below the abort voltage", "with_parcel": True}
    if cause is not None:
        detail["cause"] = cause.value
    update = customer_update(state("ABORTING", **detail))
    assert update is not None
    assert update.status is CustomerStatus.PROBLEM
    assert update.step is step
