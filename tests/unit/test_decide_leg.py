"""An island leg's decisions as data: arrival, a landing elsewhere, the destination lost en route, aborts."""

from __future__ import annotations

from typing import Any

import pytest

from flightctl.delivery.actions import Abort, AbortHow, Enter, Note, SetCurrent
from flightctl.delivery.decide import Limits, Observed, Persistence
from flightctl.delivery.decide_leg import LegDelivery, decide_leg, leg_resume_actions
from flightctl.delivery.events import AbortCause, Command, DeliveryState, Observation
from flightctl.delivery.history import History
from flightctl.delivery.legs import RunwayLostRule
from flightctl.delivery.machine import IllegalTransition, Trigger, next_state
from flightctl.geo import offset
from flightctl.vehicle.telemetry import VehicleState
from tests.unit.test_delivery_decide import commanded, flown_to, history_of, noted
from tests.unit.test_island_legs import plan, wind

LIMITS = Limits()
FLIGHT = LegDelivery("KWL-L1", plan(EGEN=wind(30, 5), EGES=wind(30, 5)), parcel_kg=2.0)
RETURNING = LegDelivery(
    "KWL-L2",
    plan("north-ronaldsay-kirkwall", EGPA=wind(90, 5), EGES=wind(30, 5)),
    parcel_kg=2.0,
)


def cruising(ms: int = 100_000, **changes: Any) -> VehicleState:
    """Half way along the leg, in AUTO, a healthy pack."""
    state = VehicleState(
        armed=True,
        mode="AUTO",
        position=FLIGHT.plan.mission.mission[6].location(),
        relative_alt_m=120,
        time_boot_ms=ms,
        battery_voltage_v=12.4,
        battery_consumed_wh=100.0,
        mission_current_seq=6,
    )
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def decide(
    history: History,
    state: VehicleState,
    flight: LegDelivery = FLIGHT,
    persistence: Persistence | None = None,
    **seen: Any,
) -> list[Any]:
    return decide_leg(flight, history, Observed(vehicle=state, **seen), persistence or Persistence(), LIMITS)


def test_landed_and_disarmed_at_the_destination_is_the_delivery_with_the_airstrip_named() -> None:
    """Test that a disarmed aircraft at rest near North Ronaldsay's NAV_LAND point ARRIVED, and the journal says
    where: the airstrip, the runway and how far from the landing point."""
    landing = FLIGHT.plan.sequences[0]
    at_rest = offset(landing.aim_point, bearing_deg=landing.end.heading_deg + 180, distance_m=12)
    actions = decide(history_of(flown_to(DeliveryState.ENROUTE)), cruising(armed=False, position=at_rest))
    assert actions == [
        Enter(
            Trigger.ARRIVED_AT_DESTINATION,
            {"released": False, "consumed_wh": 100.0, "airstrip": "North Ronaldsay", "icao": "EGEN", "runway": "03",
             "from_landing_point_m": 12.0},
        )
    ]  # fmt: skip
    assert next_state(DeliveryState.ENROUTE, Trigger.ARRIVED_AT_DESTINATION) is DeliveryState.ARRIVED


def test_landed_anywhere_else_is_landed_with_the_load_on_board() -> None:
    """Test a landing at the alternate (after a diversion) and one away from every airstrip."""
    alternate = FLIGHT.plan.sequences_at("EGES")[0]
    history = history_of(flown_to(DeliveryState.DIVERTING))
    [at_sanday] = decide(history, cruising(armed=False, position=alternate.aim_point))
    assert isinstance(at_sanday, Enter)
    assert at_sanday.trigger is Trigger.TOUCHED_DOWN
    assert at_sanday.detail["airstrip"] == "Sanday"
    [nowhere] = decide(history, cruising(armed=False))
    assert isinstance(nowhere, Enter)
    assert nowhere.trigger is Trigger.TOUCHED_DOWN
    assert "airstrip" not in nowhere.detail


def test_a_destination_gone_out_of_limits_en_route_diverts_to_the_alternates_landing_sequence() -> None:
    """Test the leg's divert rule: a crosswind now reported at North Ronaldsay enters DIVERTING with the reason
    and sets the mission to Sanday's DO_LAND_START; a wind still inside the limits changes nothing."""
    history = history_of(flown_to(DeliveryState.ENROUTE))
    assert decide(history, cruising(), airstrip_winds={"EGEN": wind(50, 8)}) == []
    actions = decide(history, cruising(), airstrip_winds={"EGEN": wind(120, 10)})
    sanday = FLIGHT.plan.sequences_at("EGES")[0]
    assert actions == [
        Enter(
            Trigger.DESTINATION_UNUSABLE,
            {"reason": "no runway at North Ronaldsay in limits for the wind now reported there, 120 deg at 10 m/s",
             "rule": "divert", "to": "EGES runway 03", "wind": "120 deg at 10 m/s"},
        ),
        SetCurrent(sanday.start_seq, Command.SET_CURRENT, "divert: EGES runway 03"),
    ]  # fmt: skip


def test_a_leg_whose_rule_is_return_turns_back_to_its_origins_landing_sequence() -> None:
    """Test the return rule (North Ronaldsay to Kirkwall): Kirkwall out of limits sends the aircraft back to
    North Ronaldsay's best landing sequence."""
    assert RETURNING.plan.leg.when_destination_unusable is RunwayLostRule.RETURN
    history = history_of(flown_to(DeliveryState.ENROUTE))
    [enter, set_current] = decide(history, cruising(), RETURNING, airstrip_winds={"EGPA": wind(0, 14)})
    back = RETURNING.plan.sequences_at("EGEN")[0]
    assert isinstance(enter, Enter)
    assert enter.detail["rule"] == "return"
    assert set_current == SetCurrent(back.start_seq, Command.SET_CURRENT, f"return: {back.end.name}")


def test_a_diversion_whose_set_current_did_not_take_is_sent_again_once() -> None:
    """Test DIVERTING with the vehicle still on the destination's leg and no set-current journaled since: the
    set-current is sent again; once journaled, nothing more."""
    sanday = FLIGHT.plan.sequences_at("EGES")[0]
    diverting = history_of(flown_to(DeliveryState.DIVERTING))
    assert decide(diverting, cruising()) == [
        SetCurrent(sanday.start_seq, Command.SET_CURRENT, "divert to EGES runway 03")
    ]
    sent = history_of(flown_to(DeliveryState.DIVERTING), commanded(DeliveryState.DIVERTING, Command.SET_CURRENT))
    assert decide(sent, cruising()) == []


def test_a_low_battery_that_lasts_sends_the_aircraft_to_the_nearest_airstrip() -> None:
    """Test the battery rule: one low reading is not a trend, three seconds of it is an RTL (the nearest landing
    sequence) with the battery named as the cause."""
    history = history_of(flown_to(DeliveryState.ENROUTE))
    persistence = Persistence()
    assert decide(history, cruising(100_000, battery_voltage_v=10.0), persistence=persistence) == []
    [abort] = decide(history, cruising(103_500, battery_voltage_v=10.0), persistence=persistence)
    assert isinstance(abort, Abort)
    assert (abort.how, abort.cause) == (AbortHow.RTL, AbortCause.BATTERY)
    assert abort.reason.startswith("battery 10.00 V below the abort voltage 10.5 V")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"mode": "FBWA"}, "the autopilot switched to FBWA"),
        ({"mode": "RTL"}, "the autopilot switched to RTL (a failsafe)"),
        ({"fence_breached": True}, "corridor fence was breached"),
    ],
)
def test_a_failsafe_or_a_breach_is_journaled_and_left_to_the_autopilot(changes: dict[str, Any], reason: str) -> None:
    """Test that the autopilot's own reactions are recorded as an abort it flies itself."""
    [abort] = decide(history_of(flown_to(DeliveryState.ENROUTE)), cruising(**changes))
    assert isinstance(abort, Abort)
    assert abort.how is AbortHow.LEAVE_TO_VEHICLE
    assert reason in abort.reason


def test_the_failsafe_that_acted_is_named_in_the_journal() -> None:
    """Test that the autopilot's own words for its failsafe ride in the abort's reason."""
    [abort] = decide(
        history_of(flown_to(DeliveryState.ENROUTE)),
        cruising(mode="RTL"),
        failsafe_texts=("RC Short Failsafe On", "GCS Failsafe On: RTL"),
    )
    assert isinstance(abort, Abort)
    assert abort.reason == (
        'the autopilot switched to RTL (a failsafe): it said "GCS Failsafe On: RTL": it lands at the nearest airstrip'
    )


def test_an_rtl_we_commanded_is_not_a_failsafe() -> None:
    history = history_of(
        flown_to(DeliveryState.ABORTING), commanded(DeliveryState.ABORTING, Command.SET_MODE, mode="RTL")
    )
    assert decide(history, cruising(mode="RTL")) == []


def test_a_link_lost_over_the_sea_is_noted_and_the_mission_flies_on() -> None:
    """Test that losing the link aborts nothing (the mission lands at the destination by itself), and only the
    controller's bound ends its watch, with the load presumed on board."""
    history = history_of(flown_to(DeliveryState.ENROUTE))
    [note] = decide(history, cruising(), link_lost_s=1.0)
    assert isinstance(note, Note)
    assert note.observation is Observation.LINK_LOST
    assert note.detail["over"] == "the North Isles sea crossing", "where over the sea it was lost"
    [on_land] = decide(history, cruising(position=FLIGHT.plan.home), link_lost_s=1.0)
    assert isinstance(on_land, Note)
    assert "over" not in on_land.detail
    lost = history_of(flown_to(DeliveryState.ENROUTE), noted(DeliveryState.ENROUTE, Observation.LINK_LOST))
    assert decide(lost, cruising(), link_lost_s=10.0) == []
    [given_up] = decide(lost, cruising(), link_lost_s=LIMITS.link_lost_give_up_s)
    assert isinstance(given_up, Enter)
    assert given_up.trigger is Trigger.LINK_GIVEN_UP


def test_an_arrived_leg_waits_only_for_its_unload() -> None:
    """Test that nothing is decided once ARRIVED, and the crew's confirmation is the one way on."""
    assert decide(history_of(flown_to(DeliveryState.ARRIVED)), cruising(armed=False)) == []
    assert next_state(DeliveryState.ARRIVED, Trigger.UNLOAD_CONFIRMED) is DeliveryState.UNLOADED
    with pytest.raises(IllegalTransition, match="not a legal transition"):
        next_state(DeliveryState.DIVERTING, Trigger.ARRIVED_AT_DESTINATION)


@pytest.mark.parametrize(
    "last", [DeliveryState.ENROUTE, DeliveryState.ABORTING, DeliveryState.OUT_OF_CONTACT, DeliveryState.DIVERTING]
)
def test_a_restarted_controller_finds_the_leg_landed_and_says_where(last: DeliveryState) -> None:
    """Test the resume of a leg found on the ground: at the destination it ARRIVED (unless it was diverting),
    elsewhere it was found landed, with the airstrip named; each is a legal step from the journal's state."""
    landing = FLIGHT.plan.sequences[0]
    history = history_of(flown_to(last))
    [at_destination] = leg_resume_actions(
        FLIGHT, history, cruising(armed=False, position=landing.aim_point), mission_is_ours=None
    )
    assert isinstance(at_destination, Enter)
    expected = Trigger.FOUND_LANDED if last is DeliveryState.DIVERTING else Trigger.ARRIVED_AT_DESTINATION
    assert at_destination.trigger is expected
    assert at_destination.detail["airstrip"] == "North Ronaldsay"
    next_state(last, at_destination.trigger)
    sanday = FLIGHT.plan.sequences_at("EGES")[0]
    [elsewhere] = leg_resume_actions(
        FLIGHT, history, cruising(armed=False, position=sanday.aim_point), mission_is_ours=None
    )
    assert isinstance(elsewhere, Enter)
    assert elsewhere.trigger is Trigger.FOUND_LANDED
    assert elsewhere.detail["airstrip"] == "Sanday"
    next_state(last, elsewhere.trigger)


def test_a_restarted_controller_finds_the_leg_flying() -> None:
    """Test the resume in flight: a mission not ours is an RTL to the nearest airstrip; contact regained after
    the controller gave up is an abort the autopilot flies; our own mission in ENROUTE needs nothing."""
    enroute = history_of(flown_to(DeliveryState.ENROUTE))
    assert leg_resume_actions(FLIGHT, enroute, cruising(), mission_is_ours=True) == []
    [foreign] = leg_resume_actions(FLIGHT, enroute, cruising(), mission_is_ours=False)
    assert isinstance(foreign, Abort)
    assert foreign.how is AbortHow.RTL
    [regained] = leg_resume_actions(
        FLIGHT, history_of(flown_to(DeliveryState.OUT_OF_CONTACT)), cruising(), mission_is_ours=True
    )
    assert isinstance(regained, Abort)
    assert regained.how is AbortHow.LEAVE_TO_VEHICLE
    next_state(DeliveryState.OUT_OF_CONTACT, Trigger.ABORTED)
