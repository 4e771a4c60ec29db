"""One flight rebuilt from its journal, and its tlog when there is one: the figures a report shows and its JSON
says. Pure: events and samples in, numbers out, so every figure is tested against the data it came from.

Time is the autopilot's, in seconds since the order's first journaled event (``t_s``), so the journal's events
and the tlog's samples line up, at any SITL speedup. What the journal or the log cannot say is listed in
``missing``, in words, rather than drawn as if it were known.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shapely.geometry import Point, Polygon

from flightctl.delivery.events import CheckStage, DeliveryState, EventKind, Observation
from flightctl.delivery.history import History
from flightctl.delivery.journal import JournalEvent
from flightctl.delivery.outcome import DeliveryOutcome
from flightctl.geo import AltFrame, Location, distance_m
from flightctl.report.tlog_samples import Samples

REPORT_VERSION = 1
TRACK_POINTS_IN_JSON = 2000  # the track is thinned to about this many points in the JSON


@dataclass(frozen=True)
class TimelineEntry:
    t_s: float
    at_utc: str
    kind: str  # state, command, observation, check
    name: str
    line: str  # what a person reads: the reason, the check's line, the command's detail


@dataclass
class Release:
    lat: float
    lon: float
    journal_distance_m: float | None  # what the controller measured when it released
    distance_m: float | None  # from the plan's target, measured again here (None without a plan)
    track_inside_zone: bool | None  # where the flown track was at the release, against the zone
    track_at_release: tuple[float, float] | None = None  # (lat, lon): the tlog's last position before it


@dataclass
class Energy:
    journal_used_wh: float | None  # the autopilot's count, from take-off to the landing (the journal's)
    integrated_wh: float | None  # volts times amps from the tlog over the same span
    needed_wh: float | None  # the plan's budget at the go/no-go
    reserve_wh: float | None
    available_wh: float | None


@dataclass
class FlightReport:
    order_id: str
    outcome: DeliveryOutcome
    started_utc: str
    plan: dict[str, Any] | None
    timeline: list[TimelineEntry]
    phases: list[tuple[float, str]]  # (t_s, state entered)
    checks: list[str]  # every go/no-go line
    aborts: list[str]  # every abort, diversion or loss with its reason
    interlocks: dict[str, Any] | None  # the release interlock check's values
    release: Release | None
    energy: Energy
    samples: Samples
    t0_boot_s: float | None  # the autopilot time t_s counts from
    ground_wind_m_s: float | None
    missing: list[str] = field(default_factory=list)

    def t(self, boot_s: float) -> float:
        return boot_s - (self.t0_boot_s or 0.0)

    def as_json(self) -> dict[str, Any]:
        step = max(1, len(self.samples.position) // TRACK_POINTS_IN_JSON)
        return {
            "report_version": REPORT_VERSION,
            "order_id": self.order_id,
            "started_utc": self.started_utc,
            "outcome": self.outcome.as_json(),
            "missing": self.missing,
            "plan": self.plan,
            "phases": [{"t_s": round(t, 2), "state": state} for t, state in self.phases],
            "timeline": [entry.__dict__ for entry in self.timeline],
            "checks": self.checks,
            "aborts": self.aborts,
            "interlocks": self.interlocks,
            "release": None if self.release is None else self.release.__dict__,
            "energy": self.energy.__dict__,
            "ground_wind_m_s": self.ground_wind_m_s,
            "track": [
                [round(self.t(t), 2), lat, lon, round(alt, 2)] for t, lat, lon, alt in self.samples.position[::step]
            ],
            "series": self._series(),
            "tlog": {
                "files": self.samples.files,
                "messages": dict(self.samples.message_counts.most_common()),
                "autopilot_restarted": self.samples.autopilot_restarted,
            },
        }

    def _series(self) -> dict[str, list[list[Any]]]:
        """The plotted series, each row [t_s, values...], thinned to about TRACK_POINTS_IN_JSON rows."""
        samples = self.samples

        def rows(series: list[tuple[Any, ...]]) -> list[list[Any]]:
            step = max(1, len(series) // TRACK_POINTS_IN_JSON)
            return [[round(self.t(row[0]), 2), *row[1:]] for row in series[::step]]

        return {
            "battery_v_a": rows(samples.battery),
            "consumed_wh": rows(samples.consumed),
            "ground_speed_m_s": rows(samples.ground_speed),
            "wind_m_s_from_deg": rows(samples.wind),
            "mode": rows(samples.modes),
        }


def flight_report(order_id: str, events: list[JournalEvent], samples: Samples | None) -> FlightReport:
    if not events:
        raise ValueError(f"the journal has no events for order {order_id}")
    samples = samples or Samples()
    history = History.of(events)
    outcome = DeliveryOutcome.from_history(order_id, history)
    plan = next((e.detail for e in events if e.observation is Observation.PLAN), None)
    t0_ms = next((e.vehicle_ms for e in events if e.vehicle_ms is not None), None)
    t0_boot = None if t0_ms is None else t0_ms / 1000.0
    start_wall = _utc(events[0].at_utc)

    def t_of(event: JournalEvent) -> float:
        if event.vehicle_ms is not None and t0_ms is not None:
            return (event.vehicle_ms - t0_ms) / 1000.0
        return (_utc(event.at_utc) - start_wall).total_seconds()

    report = FlightReport(
        order_id=order_id,
        outcome=outcome,
        started_utc=events[0].at_utc,
        plan=plan,
        timeline=[TimelineEntry(round(t_of(e), 2), e.at_utc, e.kind.value, e.name, _line(e)) for e in events],
        phases=[(t_of(e), e.name) for e in events if e.kind is EventKind.STATE],
        checks=[str(e.detail.get("line", e.name)) for e in events if _is_preflight(e)],
        aborts=_aborts(events),
        interlocks=_interlocks(events),
        release=None,
        energy=_energy(events, samples, t0_boot),
        samples=samples,
        t0_boot_s=t0_boot,
        ground_wind_m_s=_ground_wind(events),
    )
    report.release = _release(history, plan, samples)
    report.missing = _missing(report, events, history)
    return report


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _is_preflight(event: JournalEvent) -> bool:
    return event.kind is EventKind.CHECK and event.detail.get("stage") == CheckStage.PREFLIGHT


def _line(event: JournalEvent) -> str:
    detail = event.detail
    if event.kind is EventKind.CHECK:
        return str(detail.get("line", ""))
    if event.observation is Observation.PLAN:
        return f"planned: {detail.get('kind', '?')}, {len(detail.get('route', []))} route points"
    shown = {k: v for k, v in detail.items() if not isinstance(v, list | dict) and k != "reason"}
    rest = ", ".join(f"{k} {v}" for k, v in sorted(shown.items()))
    if "reason" in detail:  # the reason first: it is what a person reads the line for
        return f"{detail['reason']} ({rest})" if rest else str(detail["reason"])
    return rest


ABORT_STATES = (DeliveryState.ABORTING, DeliveryState.DIVERTING, DeliveryState.OUT_OF_CONTACT, DeliveryState.FAILED)
ABORT_NOTES = (
    Observation.LINK_LOST,
    Observation.REMOTE_ID_LOST,
    Observation.STEP_FAILED,
    Observation.ABORT_ACTION_FAILED,
    Observation.GRIPPER_GRAB_FAILED,
    Observation.TELEMETRY_INCOMPLETE,
)


def _aborts(events: list[JournalEvent]) -> list[str]:
    lines = []
    for event in events:
        if event.entered in ABORT_STATES or event.observation in ABORT_NOTES:
            lines.append(f"{event.name}: {_line(event)}")
        elif event.kind is EventKind.CHECK and not event.detail.get("ok", True) and not _is_preflight(event):
            lines.append(f"{event.name}: {event.detail.get('line', '')}")
    return lines


def _interlocks(events: list[JournalEvent]) -> dict[str, Any] | None:
    """The last release interlock check: the one the release went ahead on, or the last that held it back."""
    checks = [e for e in events if e.kind is EventKind.CHECK and e.detail.get("stage") == CheckStage.INTERLOCKS]
    return dict(checks[-1].detail) if checks else None


def _ground_wind(events: list[JournalEvent]) -> float | None:
    check = next((e for e in events if _is_preflight(e) and e.name == "ground wind"), None)
    value = None if check is None else check.detail.get("measured_m_s")
    return None if value is None else float(value)


def _energy(events: list[JournalEvent], samples: Samples, t0_boot: float | None) -> Energy:
    history = History.of(events)
    budget = next((e.detail for e in events if _is_preflight(e) and e.name == "energy"), {})
    start = next((e for e in events if e.observation is Observation.ENERGY_AT_START), None)
    end = next((e for e in reversed(events) if e.entered in (DeliveryState.LANDED, DeliveryState.ARRIVED)), None)
    integrated = None
    if start is not None and end is not None and start.vehicle_ms is not None and end.vehicle_ms is not None:
        integrated = integrate_wh(samples.battery, start.vehicle_ms / 1000.0, end.vehicle_ms / 1000.0)
    return Energy(
        journal_used_wh=history.energy_used_wh,
        integrated_wh=integrated,
        needed_wh=budget.get("needed_wh"),
        reserve_wh=budget.get("reserve_wh"),
        available_wh=budget.get("available_wh"),
    )


def integrate_wh(battery: list[tuple[float, float, float]], start_s: float, end_s: float) -> float | None:
    """Volts times amps, by the trapezoid rule, over [start_s, end_s] of autopilot time; None with fewer than
    two samples in it."""
    inside = [(t, v * a) for t, v, a in battery if start_s <= t <= end_s]
    if len(inside) < 2:
        return None
    joules = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(inside))
    return joules / 3600.0


def _release(history: History, plan: dict[str, Any] | None, samples: Samples) -> Release | None:
    point = history.release_point
    if point is None:
        return None
    drop = None if plan is None else plan.get("drop")
    distance = None
    inside = None
    at = track_at_release(history, samples)
    if drop is not None:
        target = Location(drop["lat"], drop["lon"], 0.0, AltFrame.ABSOLUTE)
        distance = round(distance_m(target, point), 2)
        if at is not None:
            zone = Polygon([(lon, lat) for lat, lon in drop["zone"]])
            inside = bool(zone.covers(Point(at[1], at[0])))
    return Release(point.lat_deg, point.lon_deg, history.release_error_m, distance, inside, at)


def track_at_release(history: History, samples: Samples) -> tuple[float, float] | None:
    """The last tlog position at or before the RELEASED transition (lat, lon), None without one."""
    released_ms = history.released_ms
    if released_ms is None:
        return None
    before = [(lat, lon) for t, lat, lon, _alt in samples.position if t <= released_ms / 1000.0]
    return before[-1] if before else None


def _missing(report: FlightReport, events: list[JournalEvent], history: History) -> list[str]:
    missing = []
    if report.plan is None:
        missing.append("no plan on record (a journal from before plans were journaled): the map shows no route")
    if report.samples.empty:
        missing.append("no telemetry log: no track, no plots, no energy integral")
    elif report.samples.autopilot_restarted:
        missing.append("the autopilot restarted during the log: its clock began again, so the times after it jump")
    if not any(e.entered is DeliveryState.ENROUTE for e in events):
        missing.append("it never took off: " + (history.abort_reason or "ended on the ground"))
    if history.state not in (DeliveryState.LANDED, DeliveryState.FAILED, DeliveryState.UNLOADED, DeliveryState.ARRIVED):
        state = history.state.value if history.state else "nothing"
        missing.append(f"the journal ends at {state}: the controller stopped (or was stopped) before the end")
    if report.energy.needed_wh is None:
        missing.append("no energy budget on record")
    return missing
