"""The daemon's order and command rules as data: repeats, busy, aborts, and when a failed step ends the order."""

from __future__ import annotations

import pytest

from flightctl.daemon.order_rules import (
    Repeat,
    RepeatAnswer,
    abort_answer,
    answer_to_repeat,
    busy_reason,
    fails_the_order,
)
from flightctl.delivery.events import ON_THE_GROUND, DeliveryState

ORDER = {"order_id": "KWL-1", "drop": {"lat": 58.95, "lon": -2.93}, "method": "payload_place", "parcel_kg": 1.2}


def repeat(answer: str | None, body: dict[str, object] = ORDER, reasons: list[str] | None = None) -> RepeatAnswer:
    return answer_to_repeat(
        "KWL-1",
        {"order": body},
        known_body={"order": ORDER},
        known_answer=answer,
        known_reasons=reasons or [],
        known_request_id="r-1",
        known_received_utc="2026-11-30T10:00:00Z",
    )


def test_the_same_order_already_accepted_is_acknowledged_again_and_never_flown_twice() -> None:
    answer = repeat("accepted")
    assert answer.kind is Repeat.ACCEPTED_AGAIN
    assert answer.note == "already accepted (request r-1); it is never flown twice"


def test_a_different_order_under_a_used_id_is_rejected_whatever_became_of_the_first() -> None:
    for known in ("accepted", "rejected", None):
        answer = repeat(known, body={**ORDER, "parcel_kg": 2.0})
        assert answer.kind is Repeat.REJECTED
        assert answer.reasons == [
            "duplicate: order id KWL-1 was already used for a different order (at 2026-11-30T10:00:00Z)"
        ]


def test_a_leg_under_the_id_of_a_drop_is_a_different_order() -> None:
    leg = {"order_id": "KWL-1", "leg": "kirkwall-north-ronaldsay", "parcel_kg": 1.2}
    answer = answer_to_repeat(
        "KWL-1",
        {"leg": leg},
        known_body={"order": ORDER, "depot_wind": {"speed_m_s": 3}},
        known_answer="accepted",
        known_reasons=[],
        known_request_id="r-1",
        known_received_utc="2026-11-30T10:00:00Z",
    )
    assert answer.kind is Repeat.REJECTED
    assert "already used for a different order" in answer.reasons[0]


def test_an_order_already_rejected_is_rejected_again_with_its_reasons() -> None:
    answer = repeat("rejected", reasons=["NO-GO: wind 14 m/s"])
    assert answer.kind is Repeat.REJECTED
    assert answer.reasons[0] == "NO-GO: wind 14 m/s"
    assert "send it again under a new order id" in answer.reasons[1]


def test_an_order_still_being_checked_is_not_taken_twice() -> None:
    answer = repeat(None)
    assert answer.kind is Repeat.REJECTED
    assert "is being checked now; the answer to request r-1 follows" in answer.reasons[0]


def test_busy_names_the_order_in_flight_and_its_state() -> None:
    assert busy_reason("KWL-9", DeliveryState.ENROUTE) == "busy: flying order KWL-9 (ENROUTE)"
    assert busy_reason("KWL-9", None) == "busy: flying order KWL-9 (starting)"


@pytest.mark.parametrize("state", [None, *ON_THE_GROUND])
def test_an_abort_on_the_ground_is_taken_and_nothing_more_is_done(state: DeliveryState | None) -> None:
    answer = abort_answer(has_delivery=True, state=state, released=False)
    assert (answer.ok, answer.pass_on) == (True, True)
    assert answer.result == "aborting: nothing more is done on the ground"


@pytest.mark.parametrize(
    "state", [DeliveryState.ENROUTE, DeliveryState.ON_STATION, DeliveryState.RELEASING, DeliveryState.ABORTING]
)
def test_an_abort_in_flight_before_the_release_brings_the_parcel_home(state: DeliveryState) -> None:
    answer = abort_answer(has_delivery=True, state=state, released=False)
    assert (answer.ok, answer.pass_on) == (True, True)
    assert "comes home with the parcel" in answer.result


def test_an_abort_after_the_release_is_refused_and_changes_nothing() -> None:
    answer = abort_answer(has_delivery=True, state=DeliveryState.RELEASED, released=True)
    assert (answer.ok, answer.pass_on) == (False, False)


def test_an_abort_with_no_delivery_is_refused() -> None:
    answer = abort_answer(has_delivery=False, state=None, released=False)
    assert (answer.ok, answer.pass_on, answer.result) == (False, False, "no delivery in progress")


@pytest.mark.parametrize(
    ("state", "armed", "fails"),
    [
        (None, False, True),
        (None, True, True),
        (DeliveryState.PREFLIGHT, False, True),
        (DeliveryState.UPLOADING, False, True),
        (DeliveryState.ARMING, False, True),
        (DeliveryState.ARMING, True, False),  # armed: it may be flying; supervise, never fail it blind
        (DeliveryState.ENROUTE, True, False),
        (DeliveryState.ENROUTE, False, False),
        (DeliveryState.RELEASED, True, False),
    ],
)
def test_a_failed_step_ends_the_order_only_on_the_ground_disarmed(
    state: DeliveryState | None, armed: bool, fails: bool
) -> None:
    assert fails_the_order(state, vehicle_armed=armed) is fails
