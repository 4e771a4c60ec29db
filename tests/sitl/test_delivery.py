"""Deliveries flown on ArduCopter SITL from the Kirkwall depot: each a whole flight, with its journal."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point, Polygon

from flightctl.delivery.events import DeliveryState
from flightctl.delivery.journal import Journal
from flightctl.delivery.order import DropZone, LatLon
from flightctl.delivery.planner import plan_delivery
from flightctl.geo import distance_m
from flightctl.missions.model import MissionType
from sitl.instance import SitlInstance
from tests.sitl.deliveries import PROFILE, SITE, assert_home_and_disarmed, commands, fly, order, states
from tests.support.reports import SeenReport, seen_offline
from tests.support.tlogs import read_tlog, tlogs_of

pytestmark = pytest.mark.sitl


async def test_payload_place_delivery_1500m(depot_sitl: SitlInstance, tmp_path: Path) -> None:
    """Test a payload-place delivery 1.5 km from the depot: released within 5 m of the target, confirmed by
    ArduPilot, vehicle home and disarmed, and a journal that tells the whole story in order."""
    plan = plan_delivery(order("kirkwall-1500m-place"), SITE, PROFILE)
    assert 1.4 < plan.outbound_km < 1.6
    outcome, events = await fly(depot_sitl, plan, tmp_path / "journal.sqlite")
    assert outcome.delivered, outcome.as_json()
    assert outcome.release_error_m is not None
    assert outcome.release_error_m < 5.0
    assert states(events) == [
        "PREFLIGHT", "UPLOADING", "ARMING", "ENROUTE", "ON_STATION", "RELEASING", "RELEASED", "RETURNING", "LANDED",
    ]  # fmt: skip
    assert commands(events).count("release_authorised") == 1
    released = next(e for e in events if e.name == "RELEASED")
    assert released.detail["evidence"] in ("status text", "servo output")
    assert all(e.detail["ok"] for e in events if e.kind == "check")
    assert_home_and_disarmed(depot_sitl)
    assert outcome.energy_used_wh is not None
    assert outcome.energy_used_wh < plan.energy(headwind_m_s=0).needed_wh * 1.3, "the energy model is not wildly off"
    assert any("Gripper load released" in t.text for t in depot_sitl.vehicle.telemetry.status_log)

    seen = await seen_offline(tmp_path / "journal.sqlite", tmp_path, "delivered")
    assert_self_contained(seen)
    release = seen.data["release"]
    assert release["distance_m"] == pytest.approx(outcome.release_error_m, abs=0.01), "the journal's distance"
    assert_energy_integral_matches(seen.data)
    track_at_release = [p for p in seen.data["track"] if p[0] <= phase_t(seen.data, "RELEASED")][-1]
    zone = Polygon([(lon, lat) for lat, lon in seen.data["plan"]["drop"]["zone"]])
    assert zone.covers(Point(track_at_release[2], track_at_release[1])), "the flown track reaches the zone"
    assert release["track_inside_zone"] is True
    assert "delivered (LANDED)" in seen.text
    assert seen.data["missing"] == []


def assert_self_contained(seen: SeenReport) -> None:
    assert seen.resources == [], "the page fetched something: it must open with no network"
    assert seen.images, "the page has no pictures"
    assert all(image["drawn"] for image in seen.images), seen.images


def assert_energy_integral_matches(data: dict[str, Any]) -> None:
    energy = data["energy"]
    assert energy["integrated_wh"] == pytest.approx(energy["journal_used_wh"], rel=0.05), energy


def phase_t(data: dict[str, Any], state: str) -> float:
    return float(next(p["t_s"] for p in data["phases"] if p["state"] == state))


async def test_release_at_height_delivery(depot_sitl: SitlInstance, tmp_path: Path) -> None:
    """Test a release-at-height delivery (past a no-fly zone): the controller opens the gripper at 5 m after
    the interlocks pass, and the parcel lands in the zone."""
    plan = plan_delivery(order("kirkwall-1200m-height"), SITE, PROFILE)
    assert plan.release_hold_seq is not None
    assert len(plan.mission.mission) > 13, "the route bends around the school's no-fly zone"
    outcome, events = await fly(depot_sitl, plan, tmp_path / "journal.sqlite")
    assert outcome.delivered, outcome.as_json()
    assert outcome.release_error_m is not None
    assert outcome.release_error_m < 4.0
    assert commands(events).count("gripper_release") == 1
    interlocks = [e for e in events if e.name == "release interlocks"]
    assert interlocks[-1].detail["ok"]
    assert_home_and_disarmed(depot_sitl)


async def test_winch_delivery_checked_at_the_servo_output(depot_sitl: SitlInstance, tmp_path: Path) -> None:
    """Test a winch delivery: the winch servo output moves when lowering and retracting (SITL has no winch
    model), the gripper opens in between, and the vehicle comes home."""
    plan = plan_delivery(order("kirkwall-2000m-winch"), SITE, PROFILE)
    outcome, events = await fly(depot_sitl, plan, tmp_path / "journal.sqlite")
    assert outcome.delivered, outcome.as_json()
    order_of_commands = [c for c in commands(events) if c.startswith(("winch", "gripper_release"))]
    assert order_of_commands == ["winch_lower", "gripper_release", "winch_retract", "winch_relax"]
    lowering = next(e for e in events if e.name == "winch_lowering")
    retracting = next(e for e in events if e.name == "winch_retracting")
    assert lowering.detail["servo_us"] != retracting.detail["servo_us"], "lowering and retracting drive the servo apart"
    assert_home_and_disarmed(depot_sitl)


async def test_low_battery_on_the_way_aborts_home_with_the_parcel(depot_sitl: SitlInstance, tmp_path: Path) -> None:
    """Test that a battery sagging below the abort voltage on the way out (SIM_BATT_VOLTAGE lowered) turns the
    vehicle home with the parcel, says why in the journal, and never releases."""
    plan = plan_delivery(order("kirkwall-1500m-place"), SITE, PROFILE)
    vehicle = depot_sitl.vehicle
    journal_path = tmp_path / "journal.sqlite"
    flight = asyncio.create_task(fly(depot_sitl, plan, journal_path))
    await vehicle.telemetry.wait_until(
        lambda s: s.position is not None and distance_m(s.position, SITE.home()) > 400, timeout_s=300, what="400 m out"
    )
    await vehicle.params.set("SIM_BATT_VOLTAGE", 10.2)
    outcome, events = await flight
    assert not outcome.delivered
    assert outcome.abort_reason is not None
    assert outcome.abort_reason.startswith("battery 10.")
    aborting = next(e for e in events if e.name == "ABORTING")
    assert aborting.detail["with_parcel"] is True
    assert "RELEASED" not in states(events)
    assert "release_authorised" not in commands(events)
    assert {"mode": "RTL", "reason": outcome.abort_reason} in [e.detail for e in events if e.name == "set_mode"]
    assert_home_and_disarmed(depot_sitl)
    setup = vehicle.payload.setup
    assert setup is not None
    assert vehicle.payload.gripper_at(vehicle.state, setup.grab_pwm), "the gripper still holds the parcel"

    seen = await seen_offline(journal_path, tmp_path, "battery-abort")
    assert_self_contained(seen)
    assert seen.data["outcome"]["outcome"] == "not delivered"
    assert seen.data["release"] is None
    assert any(line.startswith(f"ABORTING: {outcome.abort_reason} (") for line in seen.data["aborts"])
    assert outcome.abort_reason in seen.text
    assert_energy_integral_matches(seen.data)
    volts = [v for _t, v, _a in seen.data["series"]["battery_v_a"]]
    assert min(volts) < 10.8 < max(volts), "the plot shows the sag below the abort voltage"


async def test_interlock_violated_at_the_drop_means_no_release(depot_sitl: SitlInstance, tmp_path: Path) -> None:
    """Test an order whose drop point lies outside its own drop zone (a configuration error): at the gate the
    interlock fails, nothing is released, the vehicle holds and then comes home with the parcel."""
    base = order("kirkwall-1500m-place")
    zone_elsewhere = [
        LatLon(lat=base.drop.lat + dlat, lon=base.drop.lon + dlon)
        for dlat, dlon in ((0.001, 0.0), (0.001, 0.001), (0.0015, 0.0005))
    ]
    bad = base.model_copy(update={"order_id": "KWL-BAD-ZONE", "drop_zone": DropZone(polygon=zone_elsewhere)})
    plan = plan_delivery(bad, SITE, PROFILE)
    outcome, events = await fly(depot_sitl, plan, tmp_path / "journal.sqlite")
    assert not outcome.delivered
    assert outcome.abort_reason == "release interlock violated at the gate: no release"
    failed = [e for e in events if e.name == "release interlocks" and not e.detail["ok"]]
    assert failed
    assert "outside the drop zone" in failed[0].detail["line"]
    assert "release_authorised" not in commands(events)
    assert "RELEASED" not in states(events)
    assert not any("Gripper load releas" in t.text for t in depot_sitl.vehicle.telemetry.status_log)
    assert_home_and_disarmed(depot_sitl)


async def test_controller_killed_enroute_resumes_with_exactly_one_release(
    depot_sitl: SitlInstance, tmp_path: Path
) -> None:
    """Test that `flightctl deliver` SIGKILLed during ENROUTE and started again with the same journal finishes
    the delivery: no second arming or upload, exactly one release."""
    journal_path = tmp_path / "journal.sqlite"
    command = [
        sys.executable, "-m", "flightctl", "deliver", "kirkwall-1500m-place",
        "--connect", depot_sitl.serial1_url, "--journal", str(journal_path), "--json", "--depot-wind", "0",
    ]  # fmt: skip
    first = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    order_id = order("kirkwall-1500m-place").order_id

    async def journal_states() -> list[str]:
        async with await Journal.open(journal_path, reader=True) as journal:  # the controller owns it
            return states(await journal.events(order_id))

    vehicle = depot_sitl.vehicle
    await vehicle.telemetry.wait_until(
        lambda s: s.armed and s.position is not None and distance_m(s.position, SITE.home()) > 300,
        timeout_s=300,
        what="300 m out under the first controller",
    )
    assert (await journal_states())[-1] == "ENROUTE"
    first.send_signal(signal.SIGKILL)
    await first.wait()
    texts_before = vehicle.telemetry.status_count

    second = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(second.communicate(), timeout=900)
    assert second.returncode == 0, stderr.decode()[-2000:]
    async with await Journal.open(journal_path, reader=True) as journal:
        events = await journal.events(order_id)
    names = [e.name for e in events]
    assert names.count("arm") == 1
    assert names.count("uploaded") == 1
    assert names.count("resumed") == 1
    assert names.count("release_authorised") == 1
    assert states(events).count("RELEASED") == 1
    assert states(events)[-1] == "LANDED"
    released_texts = [t for t in vehicle.telemetry.texts_since(texts_before) if t.text == "Gripper load released"]
    assert len(released_texts) == 1
    assert b'"outcome": "delivered"' in stdout
    assert_home_and_disarmed(depot_sitl)
    # Each run kept a telemetry log beside the journal; the killed one reads back to the moment of the kill.
    killed_log, last_log = tlogs_of(tmp_path, order_id)
    assert json.loads(stdout.decode().splitlines()[-1])["tlog"] == str(last_log)
    killed, last = read_tlog(killed_log), read_tlog(last_log)
    for flown in (killed, last):
        times = [when for _, when in flown]
        assert times == sorted(times), "timestamps never go back"
        assert {"HEARTBEAT", "GLOBAL_POSITION_INT", "MISSION_CURRENT", "SYS_STATUS"} <= {name for name, _ in flown}
    assert killed[-1][1] <= last[0][1], "the killed run's log ends before the second run's begins"
    assert "STATUSTEXT" in {name for name, _ in last}


async def test_order_beyond_the_energy_budget_is_refused_and_nothing_uploaded(
    depot_sitl: SitlInstance, tmp_path: Path
) -> None:
    """Test that an order that cannot come home on the battery is a NO-GO with the numbers, and that the
    vehicle's mission and fence are untouched and it never armed."""
    vehicle = depot_sitl.vehicle
    before = {t: await vehicle.mission.count(t) for t in MissionType}
    plan = plan_delivery(order("kirkwall-4500m-heavy"), SITE, PROFILE)
    outcome, events = await fly(depot_sitl, plan, tmp_path / "journal.sqlite")
    assert outcome.state is DeliveryState.FAILED
    assert not outcome.delivered
    assert len(outcome.nogo) == 1
    assert outcome.nogo[0].startswith("NO-GO energy: needs 140.")
    assert "has 160.0 Wh" in outcome.nogo[0]
    assert {t: await vehicle.mission.count(t) for t in MissionType} == before
    assert "UPLOADING" not in states(events)
    assert "arm" not in commands(events)
    assert not vehicle.state.armed

    seen = await seen_offline(tmp_path / "journal.sqlite", tmp_path, "no-go")
    assert_self_contained(seen)
    assert seen.data["outcome"]["outcome"] == "no-go"
    assert [line for line in seen.data["checks"] if line.startswith("NO-GO")] == outcome.nogo
    assert any(line.startswith("it never took off") for line in seen.data["missing"])
    assert outcome.nogo[0] in seen.text
    assert seen.data["energy"]["needed_wh"] > seen.data["energy"]["available_wh"] - seen.data["energy"]["reserve_wh"]
