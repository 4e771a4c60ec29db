"""A flight's entry for the operator's logbook, from its journal: what the aircraft knows of the fields UK CAA
AMC1 UAS.SPEC.050(1)(g) asks a Specific-category operator to keep. Pure.

The aircraft knows its take-off and landing (times and places), the duration, how the flight ended, the
pre-flight check it passed and the occurrences on the way (aborts, failsafes, lost links, Remote ID losses, steps
that failed). The operator's own data (operator number, remote pilot, registration, VLOS or BVLOS) is the
ground's to add (the relay's config); customer data never enters: the order is named by its opaque id only.
A flight is one that took off: an order that ended on the ground (NO-GO, failed before take-off) has no entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flightctl.delivery.events import FLOWN, CheckStage, DeliveryState, EventKind, Observation
from flightctl.delivery.history import History
from flightctl.delivery.journal import JournalEvent
from flightctl.geo import Location

# What counts as an occurrence, beyond the transitions that are one (ABORTING, OUT_OF_CONTACT, DIVERTING).
OCCURRENCE_NOTES = {
    Observation.LINK_LOST: "autopilot link lost",
    Observation.REMOTE_ID_LOST: "Remote ID lost",
    Observation.STEP_FAILED: "a step failed",
    Observation.ABORT_ACTION_FAILED: "an abort's action failed",
}
OCCURRENCE_STATES = (DeliveryState.ABORTING, DeliveryState.OUT_OF_CONTACT, DeliveryState.DIVERTING)
MAX_OCCURRENCES = 50


def flight_record(
    events: Sequence[JournalEvent], *, took_off_at: Location, landed_at: Location | None
) -> dict[str, Any] | None:
    """The logbook entry for a flight that ended (``FLOWN``), or None for an order that never took off or has
    not ended. ``took_off_at``: where the flight began (its home); ``landed_at``: where the aircraft is now."""
    history = History.of(list(events))
    outcome = history.state
    if outcome is None or outcome not in FLOWN:
        return None
    enroute = next((e for e in events if e.entered is DeliveryState.ENROUTE), None)
    if enroute is None:
        return None  # never took off
    ended = next(e for e in reversed(events) if e.entered is outcome)
    takeoff_utc, landing_utc = _utc(enroute.at_utc), _utc(ended.at_utc)
    record: dict[str, Any] = {
        "takeoff_utc": enroute.at_utc,
        "landing_utc": ended.at_utc,
        "duration_s": round(max(0.0, (landing_utc - takeoff_utc).total_seconds()), 1),
        "takeoff_lat_deg": took_off_at.lat_deg,
        "takeoff_lon_deg": took_off_at.lon_deg,
        "outcome": outcome.value,
        "delivered": history.released or history.arrived,
        "preflight": _preflight(events),
        "occurrences": _occurrences(events),
        "energy_used_wh": None if history.energy_used_wh is None else round(history.energy_used_wh, 1),
    }
    if landed_at is not None:
        record |= {"landing_lat_deg": landed_at.lat_deg, "landing_lon_deg": landed_at.lon_deg}
    landed = ended.detail
    if landed.get("airstrip"):
        record["landing_airstrip"] = landed["airstrip"]
    return record


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _preflight(events: Sequence[JournalEvent]) -> str:
    """The go/no-go it passed, as its checks' names: "GO: gps, ekf, battery, ..." (an order has one go/no-go:
    it is flown once, and a resumed flight does not judge it again)."""
    checks = [e for e in events if e.kind is EventKind.CHECK and e.detail.get("stage") == CheckStage.PREFLIGHT]
    passed = [e.name for e in checks if e.detail.get("ok")]
    failed = [e.name for e in checks if not e.detail.get("ok")]
    if not checks:
        return "no go/no-go on record"
    return ("GO: " if not failed else "NO-GO: ") + ", ".join(failed or passed)


def _occurrences(events: Sequence[JournalEvent]) -> list[str]:
    found: list[str] = []
    for event in events:
        if event.entered in OCCURRENCE_STATES:
            reason = event.detail.get("reason")
            found.append(f"{event.name}: {reason}" if reason else event.name)
        observation = event.observation
        if observation in OCCURRENCE_NOTES:
            said = event.detail.get("error") or event.detail.get("problems") or ""
            found.append(f"{OCCURRENCE_NOTES[observation]}{': ' + str(said) if said else ''}")
    return found[:MAX_OCCURRENCES]
