"""The relay's view of each aircraft's newest state (flightctl.ground.aircraft_states), for the ops page: newest
by sequence number whatever order events are read in, only state events, poison refused, bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from flightctl.ground import aircraft_states
from flightctl.ground.aircraft_states import AircraftStates, order_counts
from flightctl.mqtt.consumer import NotAnEnvelope
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource

AT = datetime(2026, 12, 2, 10, tzinfo=UTC)


def event(drone: str, seq: int, type_: MessageType = MessageType.STATE, **data: Any) -> Envelope:
    return Envelope(drone=drone, seq=seq, time=AT, time_source=TimeSource.GPS, type=type_, order_id="FLT-1", data=data)


def test_each_aircraft_shows_its_newest_state_whatever_order_its_events_come_in() -> None:
    states = AircraftStates()
    states.take(event("sim-02", 3, state="ENROUTE"))
    states.take(event("sim-01", 7, state="RELEASED"))
    states.take(event("sim-01", 5, state="ENROUTE"))  # read late (a relay's backlog): older, changes nothing
    states.take(event("sim-01", 8, MessageType.COMMAND_RESULT, request_id="r", ok=True))  # not a state
    states.take(event("sim-02", 3, state="ENROUTE"))  # read twice
    assert [(s["drone_id"], s["state"], s["seq"], s["order_id"]) for s in states.view()] == [
        ("sim-01", "RELEASED", 7, "FLT-1"),
        ("sim-02", "ENROUTE", 3, "FLT-1"),
    ]
    assert states.view()[0]["at_utc"] == "2026-12-02T10:00:00+00:00"


def test_a_state_that_is_not_the_contracts_is_refused_and_the_view_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    states = AircraftStates()
    for bad in ({"state": "lowercase"}, {"state": 7}, {"state": "X" * 41}, {"state": "LANDED", "detail": [1]}):
        with pytest.raises(NotAnEnvelope):
            states.take(event("sim-01", 1, **bad))
    assert states.view() == []
    monkeypatch.setattr(aircraft_states, "MAX_AIRCRAFT", 3)
    for n in range(5):
        states.take(event(f"forged-{n}", 1, state="LANDED"))
    assert [s["drone_id"] for s in states.view()] == ["forged-0", "forged-1", "forged-2"]
    states.take(event("forged-0", 2, state="ENROUTE"))
    assert states.view()[0]["state"] == "ENROUTE", "an aircraft already shown still moves on"


def test_orders_are_counted_by_their_latest_status() -> None:
    overview = [{"status": "DELIVERED"}, {"status": "DELIVERED"}, {"status": None}, {"status": "PROBLEM"}]
    assert order_counts(overview) == {"DELIVERED": 2, "PROBLEM": 1, "REGISTERED": 1}
