"""A fleet of four SITL copters, each with its own `flightctl run` daemon and broker account, an active pair of
mosquittos (the shipped config), one `flightctl relay` process reading both and a PostgreSQL registry, flying a
seeded demand for fifteen simulated minutes through one fault of every kind (a daemon SIGKILLed in flight, a
broker restarted, an autopilot link cut, the relay SIGKILLed, a GPS glitch, the registry restarted, a gust, a
broker stopped for three minutes, a pack sagging on the way out), each order's customer page followed: every
order ends as its faults call for, every event each aircraft journaled is in the registry once, no aircraft
ever holds two orders, every aircraft is on the other broker within 10 s of its broker stopping while the
pages keep updating, and the fleet report's numbers are the journals' numbers."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from flightctl.ground.demand import DemandModel, schedule
from flightctl.ground.registry import Registry
from sitl.fleet import FleetSpec, SimFleet
from sitl.fleet_faults import FaultPlan
from sitl.postgres import PostgresServer
from tests.mqtt.conftest import require_mosquitto
from tests.sitl.conftest import INSTANCE_BASE, require_sitl

pytestmark = [pytest.mark.sitl, pytest.mark.mqtt]

AIRCRAFT = 4
SIM_S = 900.0
SPEEDUP = 5.0
MAX_PAYLOAD_KG = 2.5  # configs/profiles/sitl-quad.yaml
# Seed 30 of this model: eight orders in fifteen minutes, the fourth (at 296 s) a 3.0 kg parcel the aircraft must
# refuse, the others short deliveries in calm air that must be delivered unless a fault strikes them.
DEMAND = DemandModel.model_validate({
    "orders_per_hour": 36,
    "destinations": [{"order": "kirkwall-1200m-height", "weight": 2}, {"order": "kirkwall-1500m-place", "weight": 1}],
    "parcel": {"min_kg": 0.3, "mode_kg": 1.0, "max_kg": 3.2},
    "seed": 30,
})  # fmt: skip
# Sim-01 flies FLT-0001 from 77 s, sim-02 FLT-0002 from 183 s, sim-03 FLT-0003 from 234 s, sim-04 refuses
# FLT-0004 and flies FLT-0005 from 324 s, sim-01 FLT-0006 from 508 s: each is struck in flight.
FAULTS = FaultPlan.model_validate({
    "faults": [
        {"at_min": 2.0, "kind": "daemon_kill", "aircraft": "sim-01"},
        {"at_min": 3.0, "kind": "broker_restart"},
        {"at_min": 3.5, "kind": "radio_cut", "aircraft": "sim-02", "for_s": 20},
        {"at_min": 4.0, "kind": "relay_kill"},
        {"at_min": 4.5, "kind": "gps_glitch", "aircraft": "sim-03", "for_s": 30},
        {"at_min": 5.0, "kind": "registry_restart"},
        {"at_min": 6.0, "kind": "wind", "aircraft": "sim-04", "for_s": 30},
        {"at_min": 7.0, "kind": "broker_failover", "for_s": 180},
        {"at_min": 9.0, "kind": "battery", "aircraft": "sim-01"},
    ]
})  # fmt: skip
FAILOVER_BOUND_S = 10.0  # the issue's: every aircraft on the other broker within it
BEFORE_RELEASE = ("PREFLIGHT", "UPLOADING", "ARMING", "TAKEOFF", "ENROUTE", "ON_STATION")


def journal_rows(path: Path) -> list[tuple[int, str | None, str, dict[str, object]]]:
    """The journal's outbox as the aircraft wrote it: (seq, order, type, data), read here on our own."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT seq, order_id, type, data FROM outbox ORDER BY seq").fetchall()
    return [(int(seq), order_id, type_, json.loads(data)) for seq, order_id, type_, data in rows]


def held_two_at_once(rows: list[tuple[int, str | None, str, dict[str, object]]]) -> list[str]:
    """Orders accepted while the aircraft's previous order had not ended (LANDED or FAILED)."""
    holding, overlaps = None, []
    for _seq, order_id, type_, data in rows:
        if type_ == "order_accepted" and not data.get("duplicate"):
            if holding is not None and holding != order_id:
                overlaps.append(str(order_id))
            holding = order_id
        elif type_ == "state" and data.get("state") in ("LANDED", "FAILED") and order_id == holding:
            holding = None
    return overlaps


async def test_four_aircraft_fly_a_seeded_demand_through_every_fault_and_the_report_is_the_journals(
    tmp_path: Path,
) -> None:
    require_sitl("copter")
    require_mosquitto()
    planned = schedule(DEMAND, SIM_S)
    heavy = {o.order_id for o in planned if o.parcel_kg > MAX_PAYLOAD_KG}
    assert (len(planned), heavy) == (8, {"FLT-0004"}), "the seed's day, as the comment says"

    async with PostgresServer() as postgres:
        spec = FleetSpec(
            tmp_path / "fleet", AIRCRAFT, SIM_S, SPEEDUP, DEMAND,
            first_instance=INSTANCE_BASE + 12, faults=FAULTS, postgres=True, brokers=2,
        )  # fmt: skip
        report = await SimFleet(spec, postgres=postgres).run()
        async with await Registry.open(postgres.url) as registry:  # read here on our own, the fleet stopped
            seen = {record.drone: await registry.seen_seqs(record.drone) for record in report.aircraft}
            statuses = [s for o in report.orders for s in await registry.statuses(o["order_id"])]

    outcomes = {o["order_id"]: o["outcome"] for o in report.orders}
    assert set(outcomes) == {o.order_id for o in planned}, f"every order dispatched: {report.counts}"
    assert report.unserved == 0
    struck = {f.held_order: f for f in report.faults if f.held_order is not None}
    assert [(f.kind, f.aircraft, f.held_order) for f in report.faults] == [
        ("daemon_kill", "sim-01", "FLT-0001"), ("broker_restart", None, None), ("radio_cut", "sim-02", "FLT-0002"),
        ("relay_kill", None, None), ("gps_glitch", "sim-03", "FLT-0003"), ("registry_restart", None, None),
        ("wind", "sim-04", "FLT-0005"), ("broker_failover", None, None), ("battery", "sim-01", "FLT-0006"),
    ], report.faults  # fmt: skip
    assert all(not f.note.startswith(("could not", "not struck")) for f in report.faults), report.faults
    battery = next(f for f in report.faults if f.kind == "battery")
    flat_pack = {o["order_id"] for o in report.orders if o["drone"] == "sim-01" and o["order_id"] > "FLT-0006"}
    for order_id, outcome in outcomes.items():
        if order_id in heavy or order_id in flat_pack:  # too heavy; or sent to an aircraft whose pack is flat
            assert outcome == "refused", (order_id, report.orders)
        elif order_id == battery.held_order and battery.held_state in BEFORE_RELEASE:
            assert outcome == "aborted", (battery, report.orders)  # home with the parcel
        elif order_id in struck:  # taken over by a restarted daemon, flown blind, glitched, gusted: it ends
            assert outcome in ("delivered", "aborted"), (order_id, report.orders)
            assert struck[order_id].outcome == outcome
        else:
            assert outcome == "delivered", (order_id, report.orders)
    refusal = next(o for o in report.orders if o["order_id"] == "FLT-0004")
    assert "payload limit" in str(refusal["reason"])
    assert report.holds()

    failover = next(f for f in report.faults if f.kind == "broker_failover")
    assert failover.took_s is not None, failover.note
    assert failover.took_s < FAILOVER_BOUND_S, failover
    assert failover.pages_updated is not None
    assert failover.pages_updated > 0, "customers' pages kept updating while a broker was down"
    assert report.latency is not None
    assert report.latency.never_shown == 0, "every status the registry holds showed on its page"
    assert report.latency.count == len(statuses), "each shown once"
    assert report.latency.p50_s is not None
    assert report.latency.p99_s is not None
    assert 0 <= report.latency.p50_s <= report.latency.p99_s <= report.latency.max_s  # type: ignore[operator]
    assert sorted(p.name for p in (spec.folder / "plots").iterdir()) == ["costs.png", "latency.png", "orders.png"]

    delivered_in_journals = 0
    assert report.ops is not None, "the relay's ops page answered"
    ops_states = {a["drone_id"]: (a["state"], a["seq"]) for a in report.ops["aircraft"]}
    for record in report.aircraft:
        rows = journal_rows(spec.folder / record.drone / "daemon" / "journal.sqlite")
        seqs = [seq for seq, *_ in rows]
        assert seqs == list(range(1, len(seqs) + 1))
        assert seen[record.drone] == seqs, f"{record.drone}: each journaled event once"
        assert (record.journaled, record.in_registry, record.missing, record.unknown) == (len(seqs), len(seqs), [], [])
        assert held_two_at_once(rows) == [] == record.overlaps
        released = {o for _s, o, t, d in rows if t == "state" and d.get("state") == "RELEASED"}
        landed = {o for _s, o, t, d in rows if t == "state" and d.get("state") == "LANDED"}
        delivered_in_journals += len(released & landed)
        last_state = [(d["state"], seq) for seq, _o, t, d in rows if t == "state"][-1]
        assert ops_states[record.drone] == last_state, f"{record.drone}: the ops page shows its newest state"
        accepted = {o for _s, o, t, d in rows if t in ("order_accepted", "order_rejected")}
        assert record.orders == len(accepted), f"{record.drone}: the orders sent to it are the ones it answered"
    assert report.counts["delivered"] == delivered_in_journals
    assert report.counts["delivered"] + report.counts["aborted"] + report.counts["refused"] == 8
    assert report.counts["refused"] == 1 + len(flat_pack)
    assert sum(r.orders for r in report.aircraft) == report.counts["dispatched"] == 8
    assert sum(report.ops["order_counts"].values()) == 8
    assert report.ops["order_counts"].get("DELIVERED", 0) == report.counts["delivered"]

    assert report.speedup_achieved is not None
    assert report.speedup_achieved > 0.5 * SPEEDUP
    assert {(c.name, c.kind) for c in report.costs} == {
        (f"sim-{n:02d}", kind) for n in range(1, AIRCRAFT + 1) for kind in ("sitl", "daemon")
    }
    assert all(c.cpu_share > 0 and c.rss_mb > 1 for c in report.costs)
    written = json.loads((spec.folder / "fleet-report.json").read_text())
    assert written["counts"] == report.counts
    assert written["holds"] is True


# Seed 182 of this model: a winch drop at 144 s, another at 247 s, a release at height at 322 s, in six minutes.
MIXED_DEMAND = DemandModel.model_validate({
    "orders_per_hour": 15,
    "destinations": [{"order": "kirkwall-1200m-height", "weight": 1}, {"order": "kirkwall-2000m-winch", "weight": 1}],
    "parcel": {"min_kg": 0.3, "mode_kg": 1.0, "max_kg": 2.0},
    "seed": 182,
})  # fmt: skip
MIXED_SIM_S = 360.0


async def test_a_copter_and_a_vtol_each_fly_what_they_can_and_a_winch_drop_waits_for_the_copter(
    tmp_path: Path,
) -> None:
    """Test a mixed fleet: sim-01 an ArduCopter SITL under sitl-quad, sim-02 ArduPlane's QuadPlane under
    sitl-vtol, each with its own daemon. The first winch drop goes to the copter; the second comes due while the
    copter flies the first and waits for it, the VTOL idle beside it (ArduPlane has no winch), and is still
    waiting when the six minutes end (unserved); the release at height goes to the VTOL, which delivers it on
    its wing. Every event of both aircraft is in the registry once."""
    require_sitl("copter")
    require_sitl("plane")
    require_mosquitto()
    planned = schedule(MIXED_DEMAND, MIXED_SIM_S)
    assert [(o.order_id, o.destination) for o in planned] == [
        ("FLT-0001", "kirkwall-2000m-winch"), ("FLT-0002", "kirkwall-2000m-winch"),
        ("FLT-0003", "kirkwall-1200m-height"),
    ], "the seed's day, as the comment says"  # fmt: skip

    spec = FleetSpec(
        tmp_path / "fleet", 2, MIXED_SIM_S, SPEEDUP, MIXED_DEMAND, first_instance=INSTANCE_BASE + 16, vtol=1
    )
    report = await SimFleet(spec).run()

    assert [(a.drone, a.profile) for a in report.aircraft] == [("sim-01", "sitl-quad"), ("sim-02", "sitl-vtol")]
    flown = {o["order_id"]: (o["drone"], o["outcome"]) for o in report.orders}
    assert flown == {"FLT-0001": ("sim-01", "delivered"), "FLT-0003": ("sim-02", "delivered")}, report.orders
    assert report.unserved == 1, "the second winch drop waited for the copter, never sent to the idle VTOL"
    assert report.holds(), report.aircraft
    for record in report.aircraft:
        rows = journal_rows(spec.folder / record.drone / "daemon" / "journal.sqlite")
        assert (record.journaled, record.in_registry) == (len(rows), len(rows))
        released = [o for _s, o, t, d in rows if t == "state" and d.get("state") == "RELEASED"]
        assert released == [next(o for o, (drone, _) in flown.items() if drone == record.drone)]
    # What each daemon flew, from the autopilot's heartbeat: ArduPlane reports a QuadPlane as a fixed wing, and
    # only a QuadPlane hovers to release at a drop point.
    for drone, heard in (("sim-01", "vehicle QUADROTOR"), ("sim-02", "vehicle FIXED_WING")):
        logs = "".join(p.read_text() for p in (spec.folder / drone / "daemon").glob("daemon-*.log"))
        assert heard in logs, (drone, logs[-2000:])
    assert {(c.name, c.kind) for c in report.costs} == {
        (d, k) for d in ("sim-01", "sim-02") for k in ("sitl", "daemon")
    }
