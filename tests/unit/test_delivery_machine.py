"""The delivery's one state machine, driven as data: the table, the ground phase, flight, resume and the worker.

No vehicle and no SITL. Each test feeds triggers (or the actions ``decide`` and ``resume_actions`` return) through
``next_state`` and asserts the states, in the manner of h11's test_state.py.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from pathlib import Path

import pytest

from flightctl.delivery.actions import Abort, Action, Enter, FailOnGround, MarkReleased
from flightctl.delivery.decide import Limits, Observed, Persistence, decide
from flightctl.delivery.events import FLOWN, LOOP_ENDS, ON_THE_GROUND, TERMINAL, DeliveryState, Observation
from flightctl.delivery.history import History
from flightctl.delivery.journal import Journal
from flightctl.delivery.machine import TRANSITIONS, IllegalTransition, Trigger, next_state, triggers_from
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.recorder import DeliveryRecorder
from flightctl.delivery.resume import Start, resume_actions, start_decision
from flightctl.vehicle.telemetry import VehicleState
from tests.unit.test_delivery_decide import EVIDENCE, HEIGHT, PLACE, WINCH, flown_to, flying, history_of, noted

ROOT = Path(__file__).resolve().parents[2]
S = DeliveryState
EVERY_STATE: list[DeliveryState | None] = [None, *DeliveryState]


def walk(*triggers: Trigger, start: DeliveryState | None = None) -> list[DeliveryState]:
    states: list[DeliveryState] = []
    state = start
    for trigger in triggers:
        state = next_state(state, trigger)
        states.append(state)
    return states


def trigger_of(action: Action) -> Trigger | None:
    """The trigger the sequencer enters for ``action`` (None: the action enters no state)."""
    if isinstance(action, Enter):
        return action.trigger
    if isinstance(action, Abort):
        return Trigger.ABORTED
    if isinstance(action, MarkReleased):
        return Trigger.RELEASE_CONFIRMED
    if isinstance(action, FailOnGround):
        return Trigger.MISSION_NEVER_STARTED
    return None


# ---- the table -----------------------------------------------------------------------------------------------


def test_every_trigger_is_in_the_table() -> None:
    """Test that no trigger exists that the table never accepts (a trigger nobody can use is a bug in one or
    the other)."""
    assert {trigger for (_state, trigger) in TRANSITIONS} == set(Trigger)


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL:
        assert triggers_from(state) == frozenset()


def test_every_state_is_reachable_and_every_unfinished_one_can_finish() -> None:
    """Test the table's graph: each state can be reached from an order the journal has not seen, and from each
    state a delivery can still end in LANDED or FAILED (no state is a trap)."""
    edges: dict[DeliveryState | None, set[DeliveryState]] = {}
    for (source, _trigger), target in TRANSITIONS.items():
        edges.setdefault(source, set()).add(target)

    def reachable(start: DeliveryState | None) -> set[DeliveryState]:
        seen: set[DeliveryState] = set()
        queue: deque[DeliveryState | None] = deque([start])
        while queue:
            for target in edges.get(queue.popleft(), set()) - seen:
                seen.add(target)
                queue.append(target)
        return seen

    assert reachable(None) == set(DeliveryState)
    for state in set(DeliveryState) - TERMINAL:
        assert reachable(state) & TERMINAL, f"{state} cannot finish"


def test_a_whole_delivery_walks_the_table() -> None:
    assert walk(
        Trigger.GROUND_PHASE_STARTED,
        Trigger.GO,
        Trigger.UPLOADED,
        Trigger.ARMED,
        Trigger.REACHED_GATE,
        Trigger.RELEASE_AUTHORISED,
        Trigger.RELEASE_CONFIRMED,
        Trigger.HEADING_HOME,
        Trigger.TOUCHED_DOWN,
    ) == [S.PREFLIGHT, S.UPLOADING, S.ARMING, S.ENROUTE, S.ON_STATION, S.RELEASING, S.RELEASED, S.RETURNING, S.LANDED]


@pytest.mark.parametrize(
    ("triggers", "ends"),
    [
        ((Trigger.GROUND_PHASE_STARTED, Trigger.NO_GO), S.FAILED),
        ((Trigger.GROUND_PHASE_STARTED, Trigger.GO, Trigger.UPLOAD_FAILED), S.FAILED),
        ((Trigger.GROUND_PHASE_STARTED, Trigger.GO, Trigger.UPLOADED, Trigger.ARM_FAILED), S.FAILED),
        ((Trigger.GROUND_PHASE_STARTED, Trigger.CANCELLED_ON_THE_GROUND), S.FAILED),
        ((Trigger.GROUND_PHASE_STARTED, Trigger.GO, Trigger.CANCELLED_ON_THE_GROUND), S.FAILED),
        ((Trigger.VEHICLE_NOT_OURS,), S.FAILED),
        ((Trigger.GROUND_STEP_FAILED,), S.FAILED),
        ((Trigger.GROUND_PHASE_STARTED, Trigger.GO, Trigger.UPLOADED, Trigger.ARMED, Trigger.MISSION_NEVER_STARTED),
         S.FAILED),
        ((Trigger.GROUND_PHASE_STARTED, Trigger.GO, Trigger.UPLOADED, Trigger.ARMED, Trigger.ABORTED,
          Trigger.TOUCHED_DOWN), S.LANDED),
        ((Trigger.GROUND_PHASE_STARTED, Trigger.GO, Trigger.UPLOADED, Trigger.ARMED, Trigger.LINK_GIVEN_UP,
          Trigger.ABORTED, Trigger.TOUCHED_DOWN), S.LANDED),
        ((Trigger.GROUND_PHASE_STARTED, Trigger.GO, Trigger.UPLOADED, Trigger.ARMED, Trigger.LINK_GIVEN_UP,
          Trigger.FOUND_LANDED), S.LANDED),
    ],
)  # fmt: skip
def test_every_way_a_delivery_ends(triggers: tuple[Trigger, ...], ends: DeliveryState) -> None:
    assert walk(*triggers)[-1] is ends


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (S.ENROUTE, Trigger.RELEASE_CONFIRMED),  # a release nobody authorised
        (S.ENROUTE, Trigger.GROUND_PHASE_STARTED),  # a pre-flight after take-off
        (S.LANDED, Trigger.ABORTED),  # nothing after the end
        (S.FAILED, Trigger.GROUND_PHASE_STARTED),
        (None, Trigger.ARMED),  # arming an order never checked
        (S.PREFLIGHT, Trigger.UPLOADED),  # uploading without a GO
        (S.RELEASED, Trigger.RELEASE_AUTHORISED),  # authorising a second release
        (S.OUT_OF_CONTACT, Trigger.LINK_GIVEN_UP),
    ],
)
def test_an_illegal_transition_names_the_state_and_the_trigger(state: DeliveryState | None, trigger: Trigger) -> None:
    with pytest.raises(IllegalTransition) as raised:
        next_state(state, trigger)
    assert raised.value.state == state
    assert raised.value.trigger is trigger
    assert trigger.value in str(raised.value)
    assert ("before any state" if state is None else state.value) in str(raised.value)


async def test_the_recorder_refuses_an_illegal_transition_and_journals_nothing(tmp_path: Path) -> None:
    journal = await Journal.open(tmp_path / "journal.sqlite")
    try:
        history = History()
        recorder = DeliveryRecorder(journal, "KWL-1", history, lambda: 1_000)
        assert await recorder.enter(Trigger.GROUND_PHASE_STARTED) is S.PREFLIGHT
        with pytest.raises(IllegalTransition):
            await recorder.enter(Trigger.RELEASE_CONFIRMED, evidence="none")
        events = await journal.events("KWL-1")
        assert [event.name for event in events] == ["PREFLIGHT"]
        assert history.state is S.PREFLIGHT
    finally:
        await journal.close()


# ---- the ground phase and the worker, as the sequencer and the worker use them ----------------------------------


@pytest.mark.parametrize("last", EVERY_STATE)
@pytest.mark.parametrize("armed", [False, True])
def test_every_start_is_a_legal_first_step(last: DeliveryState | None, armed: bool) -> None:
    """Test that, for every journal a controller can start from, what the sequencer enters first is in the table:
    a fresh ground phase, a refusal, or the resume's actions."""
    history = History.of(flown_to(last) if last not in (None, S.PREFLIGHT, S.UPLOADING) else [])
    history.state = last
    start = start_decision(history, armed)
    if start is Start.FRESH:
        next_state(last, Trigger.GROUND_PHASE_STARTED)
    elif start is Start.REFUSE:
        next_state(last, Trigger.VEHICLE_NOT_OURS)
    elif start in (Start.FOUND_LANDED, Start.RESUME_FLYING):
        for ours in (True, False):
            state = last
            for action in resume_actions(history, VehicleState(armed=armed, mode="AUTO"), mission_is_ours=ours):
                if (trigger := trigger_of(action)) is not None:
                    state = next_state(state, trigger)
    else:
        assert last in FLOWN


@pytest.mark.parametrize("state", [None, *ON_THE_GROUND])
def test_the_worker_fails_a_broken_ground_step_from_any_ground_state(state: DeliveryState | None) -> None:
    assert next_state(state, Trigger.GROUND_STEP_FAILED) is S.FAILED


def test_an_operator_abort_is_legal_wherever_the_sequencer_asks_whether_the_order_is_still_wanted() -> None:
    """After go/no-go (PREFLIGHT) and after the upload (UPLOADING): the two places ``_still_wanted`` runs."""
    for state in (S.PREFLIGHT, S.UPLOADING):
        assert next_state(state, Trigger.CANCELLED_ON_THE_GROUND) is S.FAILED


# ---- resume --------------------------------------------------------------------------------------------------


def test_resume_on_the_ground_ends_the_delivery_as_landed() -> None:
    history = history_of(flown_to(S.RELEASED, 5_000))
    [action] = resume_actions(history, VehicleState(armed=False, battery_consumed_wh=30.0), mission_is_ours=None)
    assert action == Enter(
        Trigger.FOUND_LANDED,
        {"note": "found on the ground when supervision resumed", "released": True, "consumed_wh": 30.0},
    )
    assert next_state(history.state, action.trigger) is S.LANDED


def test_resume_of_an_arming_that_flew_says_so_then_supervises() -> None:
    history = history_of(flown_to(S.ARMING))
    [action] = resume_actions(history, VehicleState(armed=True, mode="AUTO"), mission_is_ours=True)
    assert action == Enter(Trigger.ARMED, {"note": "armed before the restart"})


def test_resume_with_a_mission_not_ours_returns_by_rtl() -> None:
    history = history_of(flown_to(S.ON_STATION, 5_000))
    [action] = resume_actions(history, VehicleState(armed=True, mode="AUTO"), mission_is_ours=False)
    assert isinstance(action, Abort)
    assert action.how == "rtl"


def test_resume_after_contact_was_lost_brings_the_parcel_home_along_the_route() -> None:
    history = history_of(flown_to(S.ON_STATION, 5_000), noted(S.ON_STATION, Observation.LINK_LOST))
    history.state = S.OUT_OF_CONTACT
    [action] = resume_actions(history, VehicleState(armed=True, mode="AUTO"), mission_is_ours=True)
    assert isinstance(action, Abort)
    assert action.how == "return_along_route"
    assert next_state(history.state, Trigger.ABORTED) is S.ABORTING


def test_resume_in_a_healthy_flight_does_nothing_before_supervising() -> None:
    history = history_of(flown_to(S.ENROUTE, 5_000))
    assert resume_actions(history, VehicleState(armed=True, mode="AUTO"), mission_is_ours=True) == []


# ---- flight: every decision, in every state, is a legal transition ---------------------------------------------


def observations(plan: DeliveryPlan) -> list[Observed]:
    """A spread of what the loop can see: each mission item that matters, armed or not, the link up, just lost
    or lost for good, release evidence or none, a flat battery, a gale."""
    seen: list[Observed] = []
    seqs = (0, 1, plan.gate_seq, plan.drop_seq, plan.release_hold_seq, plan.climb_seq)
    for seq, armed, lost, evidence in itertools.product(seqs, (True, False), (None, 0.0, 10_000.0), (None, EVIDENCE)):
        vehicle = flying(plan, 200_000, seq=seq)
        vehicle.armed = armed
        seen.append(Observed(vehicle, link_lost_s=lost, release_evidence=evidence))
    seen.append(Observed(flying(plan, 200_000, battery_voltage_v=9.0)))
    seen.append(Observed(flying(plan, 200_000, wind_speed_m_s=30.0)))
    seen.append(Observed(flying(plan, 200_000), operator_abort="stop"))
    return seen


@pytest.mark.parametrize("plan", [PLACE, HEIGHT, WINCH], ids=["place", "height", "winch"])
@pytest.mark.parametrize("state", [s for s in DeliveryState if s not in ON_THE_GROUND])
def test_every_decision_in_flight_enters_a_state_the_table_allows(plan: DeliveryPlan, state: DeliveryState) -> None:
    """Test ``decide`` over a spread of observations in each state a delivery can fly in: every state it asks
    the sequencer to enter (directly, by an abort, a confirmed release or a failed mission start) is legal from
    there. The states decide never moves out of (the terminal ones, OUT_OF_CONTACT) must yield no transition."""
    decided: set[Trigger] = set()
    for seen in observations(plan):
        history = history_of(flown_to(state, 5_000))
        for action in decide(plan, history, seen, Persistence(), Limits(persist_s=0, link_lost_give_up_s=60)):
            if (trigger := trigger_of(action)) is None:
                continue
            decided.add(trigger)
            assert (state, trigger) in TRANSITIONS, f"decide asked for {trigger} in {state}"
    if state in LOOP_ENDS:
        assert decided == set()
    else:
        assert decided, f"no observation moved {state} on"  # the spread is wide enough to move every live state


# ---- nothing enters a state but through the machine --------------------------------------------------------


def test_only_the_recorder_writes_a_state_to_the_journal() -> None:
    """Test that ``record_state`` (the journal's write of a transition) is called only by the recorder, whose
    ``enter`` asks the machine first: no module can enter a state the table does not allow."""
    callers = set()
    for path in (ROOT / "flightctl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "record_state" and isinstance(node.ctx, ast.Load):
                callers.add(path.relative_to(ROOT).as_posix())
    assert callers == {"flightctl/delivery/recorder.py"}


def test_enter_is_only_ever_given_a_trigger() -> None:
    """Test that every ``.enter(...)`` call in flightctl names a Trigger (``Trigger.X``, or an action's
    ``.trigger``), never a DeliveryState."""
    for path in (ROOT / "flightctl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "enter"):
                continue
            [first] = node.args
            text = ast.unparse(first)
            assert text.startswith("Trigger.") or text.endswith(".trigger"), f"{path.name}: enter({text})"
