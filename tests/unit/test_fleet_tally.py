"""The fleet's demand model (seeded, Poisson, the destination mix and the parcel triangle) and its tally (each
order's outcome, each aircraft's held order, events once by sequence number, the achieved speedup)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.order import DeliveryOrder, VehicleProfile
from flightctl.delivery.planner import kind_problem
from flightctl.errors import ConfigError
from flightctl.ground.demand import DemandModel, PlannedOrder, assign, load_demand, schedule
from flightctl.ground.fleet_tally import FleetTally, Outcome
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def model(**changes: Any) -> DemandModel:
    document = {
        "orders_per_hour": 60,
        "destinations": [
            {"order": "kirkwall-1200m-height", "weight": 3},
            {"order": "kirkwall-2000m-winch", "weight": 1},
        ],
        "parcel": {"min_kg": 0.5, "mode_kg": 1.0, "max_kg": 3.0},
        "seed": 7,
    } | changes
    return DemandModel.model_validate(document)


def test_a_seeded_day_is_the_same_day_and_follows_the_model() -> None:
    day = schedule(model(), 100 * 3600)
    assert day == schedule(model(), 100 * 3600), "the same seed, the same day"
    assert day != schedule(model(seed=8), 100 * 3600)
    assert 5400 <= len(day) <= 6600, "about 60 an hour for 100 hours"
    assert [o.at_s for o in day] == sorted(o.at_s for o in day)
    assert all(0 <= o.at_s < 100 * 3600 for o in day)
    assert len({o.order_id for o in day}) == len(day)
    mix = Counter(o.destination for o in day)
    assert 2.6 <= mix["kirkwall-1200m-height"] / mix["kirkwall-2000m-winch"] <= 3.4
    masses = [o.parcel_kg for o in day]
    assert min(masses) >= 0.5
    assert max(masses) <= 3.0
    assert 1.35 <= sum(masses) / len(masses) <= 1.65, "a triangle's mean is (min + mode + max) / 3"


def shipped(kind: type[Any], folder: str, name: str) -> Any:
    return read_yaml_model(named_config(folder, name), kind)


def test_each_order_goes_to_a_free_aircraft_able_to_fly_it_and_a_winch_drop_never_to_a_vtol() -> None:
    """Test the dispatcher's choice, with the planner's own rule for what a kind can fly: a winch drop due first
    while only a VTOL is free waits, without holding up the release-at-height drop behind it, which the VTOL
    takes; once a copter is free the winch drop goes to it; among able aircraft the least flown is chosen, by
    name on a tie; with nobody free, or nobody able, nothing is sent."""
    profiles = {
        "sim-01": shipped(VehicleProfile, "profiles", "sitl-quad"),
        "sim-02": shipped(VehicleProfile, "profiles", "sitl-vtol"),
    }
    orders = {
        name: shipped(DeliveryOrder, "orders", name) for name in ("kirkwall-2000m-winch", "kirkwall-1200m-height")
    }

    def able(planned: PlannedOrder, drone: str) -> bool:
        return kind_problem(orders[planned.destination], profiles[drone]) is None

    winch = PlannedOrder(10.0, "FLT-0001", "kirkwall-2000m-winch", 1.0)
    height = PlannedOrder(20.0, "FLT-0002", "kirkwall-1200m-height", 1.0)
    assert assign([winch, height], {"sim-02": 0}, able) == (height, "sim-02")
    assert assign([winch], {"sim-02": 0}, able) is None, "a winch drop is never sent to a VTOL"
    assert assign([winch, height], {"sim-01": 3, "sim-02": 0}, able) == (winch, "sim-01")
    assert assign([height], {"sim-01": 3, "sim-02": 1}, able) == (height, "sim-02"), "the least flown"
    assert assign([height], {"sim-02": 1, "sim-01": 1}, able) == (height, "sim-01"), "by name on a tie"
    assert assign([winch, height], {}, able) is None
    assert assign([], {"sim-01": 0}, able) is None


def test_a_demand_file_with_a_mistake_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "demand.yaml"
    path.write_text("orders_per_hour: 10\ndestinations: [{order: kirkwall-9km, weight: 1}]\n"
                    "parcel: {min_kg: 1, mode_kg: 1, max_kg: 2}\n")  # fmt: skip
    with pytest.raises(ConfigError, match="no order 'kirkwall-9km'"):
        load_demand(path)
    path.write_text("orders_per_hour: 10\ndestinations: [{order: kirkwall-1200m-height, weight: 1}]\n"
                    "parcel: {min_kg: 2, mode_kg: 1, max_kg: 3}\n")  # fmt: skip
    with pytest.raises(ConfigError, match="min_kg <= mode_kg <= max_kg"):
        load_demand(path)
    assert load_demand().orders_per_hour > 0, "the shipped model loads"


def event(drone: str, seq: int, type_: MessageType, order_id: str | None, **data: Any) -> Envelope:
    return Envelope(drone=drone, seq=seq, time=T0, time_source=TimeSource.GPS, type=type_, order_id=order_id, data=data)


def states(drone: str, first_seq: int, order_id: str, *names: str) -> list[Envelope]:
    return [event(drone, first_seq + n, MessageType.STATE, order_id, state=s, detail={}) for n, s in enumerate(names)]


def test_each_order_ends_as_its_events_say_and_an_aircraft_is_free_again_after() -> None:
    tally = FleetTally(["sim-01", "sim-02"])
    tally.sent("A", "sim-01", "kirkwall-1200m-height")
    tally.sent("B", "sim-02", "kirkwall-1200m-height")
    assert tally.idle() == [], "an order on its way counts as held"
    stream = [
        event("sim-01", 1, MessageType.ORDER_ACCEPTED, "A", request_id="r1"),
        *states("sim-01", 2, "A", "PREFLIGHT", "ENROUTE", "RELEASING", "RELEASED", "RETURNING", "LANDED"),
        event("sim-02", 1, MessageType.ORDER_ACCEPTED, "B", request_id="r2"),
        *states("sim-02", 2, "B", "PREFLIGHT", "ENROUTE", "ABORTING", "RETURNING", "LANDED"),
    ]
    for envelope in stream[:5]:
        tally.take(envelope, 0.0)
    assert tally.orders["A"].outcome is Outcome.FLYING
    assert tally.aircraft["sim-01"].holding == "A"
    for envelope in stream:  # the broker delivered the first five twice: taken once
        tally.take(envelope, 0.0)
    assert (tally.orders["A"].outcome, tally.orders["B"].outcome) == (Outcome.DELIVERED, Outcome.ABORTED)
    assert tally.aircraft["sim-01"].events == 7
    assert tally.idle() == ["sim-01", "sim-02"]
    tally.sent("C", "sim-01", "kirkwall-2000m-winch")
    tally.take(event("sim-01", 8, MessageType.ORDER_REJECTED, "C", request_id="r3", reasons=["parcel 2.9 kg ..."]), 0)
    tally.sent("D", "sim-02", "kirkwall-2000m-winch")
    tally.unsent("D", "no broker could be reached")
    tally.sent("E", "sim-02", "kirkwall-2000m-winch")
    tally.take(event("sim-02", 8, MessageType.ORDER_ACCEPTED, "E", request_id="r5"), 0)
    tally.take(states("sim-02", 9, "E", "FAILED")[0], 0)
    assert (tally.orders["C"].outcome, tally.orders["C"].reason) == (Outcome.REFUSED, "parcel 2.9 kg ...")
    assert tally.counts() == {
        "dispatched": 5, "sent": 0, "flying": 0, "delivered": 1, "aborted": 2, "refused": 1, "unsent": 1,
    }  # fmt: skip
    assert tally.all_ended()
    assert all(not a.overlaps for a in tally.aircraft.values())


def test_an_aircraft_that_accepts_a_second_order_while_holding_one_is_caught() -> None:
    tally = FleetTally(["sim-01"])
    tally.sent("A", "sim-01", "x")
    tally.sent("B", "sim-01", "x")
    tally.take(event("sim-01", 1, MessageType.ORDER_ACCEPTED, "A", request_id="r1"), 0)
    tally.take(event("sim-01", 2, MessageType.ORDER_ACCEPTED, "A", request_id="r1", duplicate=True), 0)
    assert tally.aircraft["sim-01"].overlaps == [], "the same order again is not a second one"
    tally.take(event("sim-01", 3, MessageType.ORDER_ACCEPTED, "B", request_id="r2"), 0)
    assert tally.aircraft["sim-01"].overlaps == ["B"]


def test_the_achieved_speedup_is_simulated_time_over_wall_time() -> None:
    tally = FleetTally(["sim-01"])
    for wall_s in range(11):
        at = T0 + timedelta(seconds=5 * wall_s)
        tally.take(Envelope(drone="sim-01", time=at, time_source=TimeSource.GPS, type=MessageType.TELEMETRY, data={}),
                   float(wall_s))  # fmt: skip
    tally.take(Envelope(drone="sim-01", time=T0, time_source=TimeSource.COMPANION, type=MessageType.TELEMETRY, data={}),
               99.0)  # fmt: skip  # not on the autopilot's clock: not counted
    assert tally.aircraft["sim-01"].speedup() == pytest.approx(5.0)
    tally.take(event("sim-09", 1, MessageType.ORDER_ACCEPTED, "A", request_id="r"), 0)  # not in this fleet
    assert list(tally.aircraft) == ["sim-01"]


def test_a_fault_plan_gives_the_same_timeline_for_the_same_seed_and_names_its_mistakes(tmp_path: Path) -> None:
    from sitl.fleet_faults import FaultKind, FaultPlan, load_faults, timeline

    drones = ["sim-01", "sim-02", "sim-03"]
    path = tmp_path / "faults.yaml"
    path.write_text(
        "seed: 3\nfaults:\n  - {at_min: 4, kind: broker_restart}\n  - {at_min: 1, kind: daemon_kill, aircraft: sim-02}\n"
        "random:\n  - {count: 5, kinds: [gps_glitch, relay_kill], between_min: [2, 6]}\n"
    )
    plan = load_faults(path)
    first = timeline(plan, drones)
    assert first == timeline(plan, drones)
    assert first != timeline(plan.model_copy(update={"seed": 4}), drones)
    assert len(first) == 7
    assert [f.at_min for f in first] == sorted(f.at_min for f in first)
    assert first[0].kind is FaultKind.DAEMON_KILL
    drawn = [f for f in first if f.kind in (FaultKind.GPS_GLITCH, FaultKind.RELAY_KILL)]
    assert all(2 <= f.at_min <= 6 for f in drawn)
    assert all((f.aircraft in drones) if f.kind is FaultKind.GPS_GLITCH else f.aircraft is None for f in drawn)
    assert next(f for f in drawn if f.kind is FaultKind.GPS_GLITCH).amount() == 20.0, "metres, by default"

    for text, says in [
        ("faults: [{at_min: 1, kind: radio_cut}]", "strikes one aircraft"),
        ("faults: [{at_min: 1, kind: broker_restart, aircraft: sim-01}]", "strikes the whole fleet"),
        ("faults: [{at_min: 1, kind: meteor, aircraft: sim-01}]", "kind"),
        ("random: [{count: 1, kinds: [wind], between_min: [5, 2]}]", "first <= last"),
    ]:
        path.write_text(text + "\n")
        with pytest.raises(ConfigError, match=says):
            load_faults(path)
    with pytest.raises(ConfigError, match="no aircraft sim-09"):
        timeline(FaultPlan.model_validate({"faults": [{"at_min": 1, "kind": "wind", "aircraft": "sim-09"}]}), drones)


def test_poison_from_an_aircraft_is_counted_as_nothing_and_the_next_event_is_taken() -> None:
    """Test events whose data has the wrong types, deep nesting, huge numbers and NaN (as the contract lets
    through the envelope): the tally neither fails nor takes a wrong outcome, and the next real event counts."""
    from flightctl.mqtt.consumer import NotAnEnvelope, read_envelope

    tally = FleetTally(["sim-01"])
    tally.sent("A", "sim-01", "x")
    nested: Any = {}
    for _ in range(60):
        nested = {"d": nested}
    poison = [
        event("sim-01", 1, MessageType.ORDER_REJECTED, "A", request_id="r", reasons="not a list"),
        event("sim-01", 2, MessageType.STATE, "A", state={"not": "a state"}, detail=["not", "a", "mapping"]),
        event("sim-01", 3, MessageType.STATE, "A", state="ABORTING", detail=nested),
        event("sim-01", 4, MessageType.STATE, "A", state=1e308, detail={"reason": 10**30}),
    ]
    tally.take(poison[0], 0.0)
    assert (tally.orders["A"].outcome, tally.orders["A"].reason) == (Outcome.REFUSED, None), "not a list: no reason"
    for envelope in poison[1:]:
        tally.take(envelope, 0.0)
    assert tally.orders["A"].outcome is Outcome.REFUSED, "states after a refusal end nothing"
    for payload in (b'{"schema": 1, "drone": "sim-01", "seq": NaN}', b"[" * 100_000, b'{"seq": 1e999}'):
        with pytest.raises(NotAnEnvelope):
            read_envelope(payload)
    tally.sent("B", "sim-01", "x")
    for envelope in [event("sim-01", 5, MessageType.ORDER_ACCEPTED, "B", request_id="r2"),
                     *states("sim-01", 6, "B", "RELEASED", "LANDED")]:  # fmt: skip
        tally.take(envelope, 0.0)
    assert tally.aircraft["sim-01"].events == 7
    assert tally.orders["B"].outcome is Outcome.DELIVERED


def telemetry(drone: str) -> Envelope:
    return Envelope(drone=drone, time=T0, time_source=TimeSource.GPS, type=MessageType.TELEMETRY, data={})


def test_a_broker_failover_is_over_when_every_aircraft_is_heard_through_the_other_broker_after_it_began() -> None:
    tally = FleetTally(["sim-01", "sim-02"])
    tally.take(telemetry("sim-01"), 1.0, via="a")
    tally.take(telemetry("sim-02"), 1.5, via="a")
    assert tally.moved_to("b", since=2.0) == ["sim-01", "sim-02"]
    tally.take(telemetry("sim-01"), 4.0, via="b")
    tally.take(telemetry("sim-01"), 5.0, via="b")  # still on b: since stays when it moved
    assert tally.moved_to("b", since=2.0) == ["sim-02"]
    assert tally.aircraft["sim-01"].broker_since == 4.0
    tally.take(telemetry("sim-02"), 6.5, via="b")
    assert tally.moved_to("b", since=2.0) == []
    assert tally.moved_to("b", since=5.0) == ["sim-01"], "on b from before: not a move after 5.0"


def test_each_orders_acceptance_and_end_and_each_events_arrival_are_kept_once() -> None:
    tally = FleetTally(["sim-01"])
    tally.sent("A", "sim-01", "x")
    tally.sent("B", "sim-01", "x")
    tally.take(event("sim-01", 1, MessageType.ORDER_ACCEPTED, "A", request_id="r1"), 10.0)
    tally.take(event("sim-01", 1, MessageType.ORDER_ACCEPTED, "A", request_id="r1"), 11.0)  # again: not later
    for n, envelope in enumerate(states("sim-01", 2, "A", "ENROUTE", "RELEASED", "LANDED")):
        tally.take(envelope, 20.0 + n)
    tally.take(event("sim-01", 5, MessageType.ORDER_REJECTED, "B", request_id="r2", reasons=["too heavy"]), 30.0)
    assert (tally.orders["A"].accepted_s, tally.orders["A"].ended_s) == (10.0, 22.0)
    assert (tally.orders["B"].accepted_s, tally.orders["B"].ended_s) == (None, 30.0)
    assert tally.arrived == {("sim-01", 1): 10.0, ("sim-01", 2): 20.0, ("sim-01", 3): 21.0, ("sim-01", 4): 22.0,
                             ("sim-01", 5): 30.0}  # fmt: skip


def test_page_latency_is_from_the_broker_to_the_page_with_its_percentiles() -> None:
    from flightctl.ground.fleet_tally import page_delays, page_latency

    arrived = {("sim-01", n): float(n) for n in range(1, 101)}
    shown = {("sim-01", n): n + n / 100 for n in range(1, 101)}  # event n took n/100 s
    shown[("sim-02", 1)] = 5.0  # shown, but its arrival was never heard: not counted
    delays = page_delays(arrived, shown)
    assert len(delays) == 100
    assert delays[0] == pytest.approx(0.01)
    summary = page_latency(delays, never_shown=2)
    assert summary.count == 100
    assert summary.p50_s == pytest.approx(0.505, abs=1e-3)
    assert summary.p99_s == pytest.approx(0.99, abs=1e-2)
    assert (summary.max_s, summary.never_shown) == (1.0, 2)
    assert page_delays({("sim-01", 1): 5.0}, {("sim-01", 1): 4.9}) == [0.0], "the watcher heard it a moment late"
    assert page_latency([]).p50_s is None
    assert page_latency([0.3]).p99_s == 0.3
