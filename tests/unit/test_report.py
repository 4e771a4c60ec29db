"""The flight report as data: a synthetic flight (journal events and a tlog written frame by frame), and the
figures the report computes from it, checked against what went in."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.events import CheckStage, DeliveryState, EventKind, Observation
from flightctl.delivery.journal import JournalEvent
from flightctl.delivery.order import DeliveryOrder, Site, VehicleProfile
from flightctl.delivery.plan_record import plan_record
from flightctl.delivery.planner import plan_delivery
from flightctl.dialect import mavlink
from flightctl.geo import Location, bearing_deg, distance_m, offset
from flightctl.link.tlog import TIMESTAMP
from flightctl.report.build import tlogs_beside
from flightctl.report.coastline import shores
from flightctl.report.flight import flight_report, integrate_wh
from flightctl.report.page import render_page
from flightctl.report.tlog_samples import read_tlogs

SITE = read_yaml_model(named_config("sites", "kirkwall"), Site)
PROFILE = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)
PLAN = plan_delivery(read_yaml_model(named_config("orders", "kirkwall-1500m-place"), DeliveryOrder), SITE, PROFILE)
SPEEDUP = 5.0  # the autopilot's clock runs this much faster than the tlog's arrival stamps
BOOT_AT_START_MS = 60_000
_ids = itertools.count(1)


def event(event_kind: EventKind, name: str, ms: int | None, /, **detail: Any) -> JournalEvent:
    state = DeliveryState(name) if event_kind is EventKind.STATE else DeliveryState.PREFLIGHT
    return JournalEvent(next(_ids), PLAN.order_id, "2026-12-01T10:00:00+00:00", ms, event_kind, state, name, detail)


def check(name: str, ok: bool, line: str, stage: CheckStage = CheckStage.PREFLIGHT, **numbers: Any) -> JournalEvent:
    return event(EventKind.CHECK, name, BOOT_AT_START_MS, ok=ok, line=line, stage=stage.value, **numbers)


def delivered_journal(release: Location) -> list[JournalEvent]:
    """A delivery that took off at 62 s of autopilot time, released at 120 s and landed at 200 s."""
    target = PLAN.order.drop_location()
    state, note = EventKind.STATE, EventKind.OBSERVATION
    return [
        event(state, "PREFLIGHT", BOOT_AT_START_MS),
        event(note, Observation.PLAN, BOOT_AT_START_MS, **plan_record(PLAN)),
        check("ground wind", True, "GO    ground wind: 3.0 m/s", measured_m_s=3.0),
        check("energy", True, "GO    energy: needs 25 Wh", needed_wh=25.0, reserve_wh=32.0, available_wh=160.0),
        event(state, "ARMING", 61_000),
        event(note, Observation.ENERGY_AT_START, 61_500, consumed_wh=0.0),
        event(state, "ENROUTE", 62_000),
        check("release interlocks", True, "all interlocks satisfied", CheckStage.INTERLOCKS, distance_m=0.4),
        event(
            state,
            "RELEASED",
            120_000,
            lat_deg=release.lat_deg,
            lon_deg=release.lon_deg,
            error_m=distance_m(target, release),
        ),
        event(state, "RETURNING", 121_000),
        event(state, "LANDED", 200_000, consumed_wh=13.0),
    ]


def frame(message: Any, sender: Any, wall_s: float) -> bytes:
    return TIMESTAMP.pack(round(wall_s * 1e6)) + bytes(message.pack(sender))


def write_flight_tlog(path: Path, release: Location) -> float:
    """10 Hz of positions on the autopilot's clock from 55 s to 205 s (out to ``release`` by 120 s, and home),
    with SYS_STATUS at 1 Hz between them: 12 V, and 10 A once armed at 61.5 s. Returns the Wh that is."""
    autopilot = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    ground = mavlink.MAVLink(None, srcSystem=255, srcComponent=190)
    home = SITE.home()
    frames = [frame(mavlink.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3), ground, 1000.0)]  # a GCS: not read
    for step in range(55 * 10, 205 * 10 + 1):
        boot_s = step / 10
        wall_s = 1000.0 + (boot_s - 55) / SPEEDUP
        share = min(1.0, max(0.0, (boot_s - 62) / 58)) if boot_s <= 120 else max(0.0, 1 - (boot_s - 121) / 79)
        here = offset(home, bearing_deg=bearing_deg(home, release), distance_m=share * distance_m(home, release))
        position = mavlink.MAVLink_global_position_int_message(
            round(boot_s * 1000), here.lat_e7, here.lon_e7, 20_000, round(share * 40_000), 0, 0, 0, 0
        )
        frames.append(frame(position, autopilot, wall_s))
        if step % 10 == 5:
            amps = 1_000 if boot_s >= 61.5 else 0
            status = mavlink.MAVLink_sys_status_message(0, 0, 0, 0, 12_000, amps, 80, 0, 0, 0, 0, 0, 0)
            frames.append(frame(status, autopilot, wall_s + 0.05 / SPEEDUP))
            frames.append(frame(mavlink.MAVLink_heartbeat_message(2, 3, 0, 4, 4, 3), autopilot, wall_s))
    path.write_bytes(b"".join(frames))
    return 12 * 10 * (200 - 61.5) / 3600


def near_target(metres: float) -> Location:
    return offset(PLAN.order.drop_location(), bearing_deg=45, distance_m=metres)


def test_the_energy_is_volts_times_amps_over_the_autopilots_time_not_the_logs(tmp_path: Path) -> None:
    """Test a flight logged at 5x speed: the integral runs on the autopilot's clock (the journal's), so it is
    12 V x 10 A over the 138.5 s from take-off to landing, within 1 %, not a fifth of that."""
    expected_wh = write_flight_tlog(tmp_path / "f.tlog", near_target(0.5))
    report = flight_report(PLAN.order_id, delivered_journal(near_target(0.5)), read_tlogs([tmp_path / "f.tlog"]))
    assert report.energy.integrated_wh == pytest.approx(expected_wh, rel=0.01)
    assert report.energy.journal_used_wh == 13.0
    assert (report.energy.needed_wh, report.energy.reserve_wh, report.energy.available_wh) == (25.0, 32.0, 160.0)
    assert report.ground_wind_m_s == 3.0
    assert report.samples.message_counts["HEARTBEAT"] == 150, "the ground station's heartbeat is not the aircraft's"


def test_the_release_distance_is_measured_again_from_the_plans_target(tmp_path: Path) -> None:
    """Test that the report's release distance (from the journaled plan's target to the journaled release point)
    is the controller's, and that the track at the release is judged against the zone's polygon."""
    release = near_target(1.5)
    write_flight_tlog(tmp_path / "f.tlog", release)
    report = flight_report(PLAN.order_id, delivered_journal(release), read_tlogs([tmp_path / "f.tlog"]))
    assert report.release is not None
    assert report.release.distance_m == pytest.approx(1.5, abs=0.01)
    assert report.release.distance_m == pytest.approx(report.release.journal_distance_m, abs=0.01)
    assert report.release.track_inside_zone is True
    assert report.interlocks is not None
    assert report.interlocks["distance_m"] == 0.4
    data = report.as_json()
    assert data["release"]["distance_m"] == report.release.distance_m
    assert data["track"][0][0] == pytest.approx(-5.0), "t counts from the order's first event"


def test_a_track_that_ends_outside_the_zone_is_said_to(tmp_path: Path) -> None:
    """Test a release journaled inside the zone while the tlog's track was 60 m off: the report says the track
    was outside (two sources disagreeing is what a report is for)."""
    write_flight_tlog(tmp_path / "f.tlog", near_target(60))
    report = flight_report(PLAN.order_id, delivered_journal(near_target(0.5)), read_tlogs([tmp_path / "f.tlog"]))
    assert report.release is not None
    assert report.release.track_inside_zone is False


def test_a_no_go_report_says_what_is_missing() -> None:
    """Test a NO-GO with no tlog: the report lists the failed check, and says it never took off and has no
    track, rather than drawing an empty flight."""
    events = [
        event(EventKind.STATE, "PREFLIGHT", BOOT_AT_START_MS),
        event(EventKind.OBSERVATION, Observation.PLAN, BOOT_AT_START_MS, **plan_record(PLAN)),
        check("energy", False, "NO-GO energy: needs 140.2 Wh", needed_wh=140.2, reserve_wh=32.0, available_wh=160.0),
        event(EventKind.STATE, "FAILED", 61_000, reason="NO-GO", failed=["energy"]),
    ]
    report = flight_report(PLAN.order_id, events, None)
    assert report.outcome.verdict == "no-go"
    assert report.checks == ["NO-GO energy: needs 140.2 Wh"]
    assert any(line.startswith("it never took off") for line in report.missing)
    assert any(line.startswith("no telemetry log") for line in report.missing)
    assert report.release is None
    assert report.energy.needed_wh == 140.2


def test_a_killed_controller_s_report_says_where_the_journal_ends(tmp_path: Path) -> None:
    """Test a journal that stops at ENROUTE (the controller SIGKILLed) and a tlog cut mid-frame: the report
    reads every whole frame and says the journal ends before the flight did."""
    write_flight_tlog(tmp_path / "f.tlog", near_target(0.5))
    whole = (tmp_path / "f.tlog").read_bytes()
    (tmp_path / "f.tlog").write_bytes(whole[: len(whole) // 2 + 7])
    events = delivered_journal(near_target(0.5))[:7]
    report = flight_report(PLAN.order_id, events, read_tlogs([tmp_path / "f.tlog"]))
    assert any("journal ends at ENROUTE" in line for line in report.missing)
    assert 0 < len(report.samples.position) < 1501


def test_the_page_is_self_contained_and_escapes_what_the_journal_says() -> None:
    """Test that a hostile abort reason is text on the page, not markup, and that the page fetches nothing:
    a CSP that forbids it, and no URL but data: ones."""
    events = [
        event(EventKind.STATE, "PREFLIGHT", BOOT_AT_START_MS),
        event(EventKind.STATE, "FAILED", 61_000, reason="<script>alert(1)</script>"),
    ]
    page = render_page(flight_report("KWL-<b>", events, None), route_png=b"\x89PNG", drop_png=None, plots_png=None)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "KWL-&lt;b&gt;" in page
    assert "default-src 'none'" in page
    assert not re.search(r"(src|href)=\"(?!data:)", page)


def test_the_order_s_tlogs_are_found_oldest_first_with_their_rotations(tmp_path: Path) -> None:
    """Test the tlogs beside a journal: one run's rotated parts before it, runs in time order, and another
    order whose id starts the same left out."""
    names = [
        "KWL-1-20261201T100000Z.tlog.2", "KWL-1-20261201T100000Z.tlog.1", "KWL-1-20261201T100000Z.tlog",
        "KWL-1-20261201T110000Z.tlog", "KWL-1-2-20261201T100500Z.tlog", "KWL-1-notes.txt",
    ]  # fmt: skip
    for name in reversed(names):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in tlogs_beside(tmp_path / "journal.sqlite", "KWL-1")] == names[:4]


def test_the_coastline_has_orkney_land_and_sea_where_they_are() -> None:
    """Test the shipped coastline: Kirkwall is on land, Scapa Flow is sea, and North Ronaldsay (4 km long,
    the smallest island a leg lands on) is there at all."""
    found = shores(-3.4, 58.8, -2.3, 59.45)
    land = [shore.shape for shore in found if shore.land]

    def on_land(lat: float, lon: float) -> bool:
        return any(shape.contains(Point(lon, lat)) for shape in land)

    assert on_land(58.9809, -2.9600), "Kirkwall"
    assert not on_land(58.8900, -3.1000), "Scapa Flow"
    assert on_land(59.3660, -2.4340), "North Ronaldsay"


def test_the_json_is_json(tmp_path: Path) -> None:
    """Test that the report's JSON survives a round trip with every figure the page shows."""
    write_flight_tlog(tmp_path / "f.tlog", near_target(0.5))
    report = flight_report(PLAN.order_id, delivered_journal(near_target(0.5)), read_tlogs([tmp_path / "f.tlog"]))
    data = json.loads(json.dumps(report.as_json()))
    assert data["outcome"]["outcome"] == "delivered"
    assert data["plan"]["kind"] == "drop"
    assert [p["state"] for p in data["phases"]] == [
        "PREFLIGHT", "ARMING", "ENROUTE", "RELEASED", "RETURNING", "LANDED",
    ]  # fmt: skip
    assert data["energy"]["integrated_wh"] == pytest.approx(report.energy.integrated_wh)
    assert integrate_wh([(0.0, 12.0, 10.0)], 0.0, 10.0) is None, "one sample is no integral"


def test_a_legs_plan_names_its_three_airstrips_and_its_fence(tmp_path: Path) -> None:
    """Test the plan journaled for an island leg: its route, the three airstrips by role (the map labels them),
    and the corridor as the operating area; and a leg report with no tlog draws and says what it lacks."""
    from tests.unit.test_decide_leg import FLIGHT

    record = plan_record(FLIGHT)
    assert record["kind"] == "leg"
    assert [place["name"].split("(")[1].rstrip(")") for place in record["places"]] == [
        "EGPA, origin", "EGEN, destination", "EGES, alternate",
    ]  # fmt: skip
    assert len(record["route"]) > 10
    assert record["operating_area"], "the leg's corridor"
    assert json.loads(json.dumps(record)) == record
    events = [
        event(EventKind.STATE, "PREFLIGHT", BOOT_AT_START_MS),
        event(EventKind.OBSERVATION, Observation.PLAN, BOOT_AT_START_MS, **record),
    ]
    report = flight_report("KWL-L1", events, None)
    assert report.plan == record
    assert any("journal ends at PREFLIGHT" in line for line in report.missing)
