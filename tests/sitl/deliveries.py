"""What the delivery SITL tests share: the Kirkwall site and profile, flying one plan, reading its journal."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.journal import Journal, JournalEvent
from flightctl.delivery.order import DeliveryOrder, LatLon, Site, VehicleProfile
from flightctl.delivery.outcome import DeliveryOutcome
from flightctl.delivery.planner import DeliveryPlan
from flightctl.delivery.sequencer import DeliverySequencer
from flightctl.delivery.wind import GroundWind
from flightctl.geo import distance_m
from flightctl.link.tlog import recording, tlog_path
from sitl.instance import SitlInstance

DELIVERY_SPEEDUP = float(os.environ.get("FLIGHTCTL_SITL_DELIVERY_SPEEDUP", "10"))
SITE = read_yaml_model(named_config("sites", "kirkwall"), Site)
PROFILE = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)
# About 500 m east-south-east of the depot, on the line to the 1.5 km order: a short, whole delivery.
SHORT_DROP = LatLon(lat=58.956664, lon=-2.952736)


def order(name: str) -> DeliveryOrder:
    return read_yaml_model(named_config("orders", name), DeliveryOrder)


def calm() -> GroundWind:
    """The depot's weather station, as the simulation has it unless a test sets SIM_WIND_SPD: calm, just now."""
    return GroundWind(0.0, datetime.now(UTC), "test weather station")


async def fly(
    sim: SitlInstance, plan: DeliveryPlan, journal_path: Path, *, ground_wind: GroundWind | None = None
) -> tuple[DeliveryOutcome, list[JournalEvent]]:
    tlog = tlog_path(journal_path.parent, plan.order_id)  # beside the journal, as `flightctl deliver` keeps it
    async with await Journal.open(journal_path) as journal, recording(sim.vehicle.connection, tlog):
        wind = ground_wind or calm()
        outcome = await DeliverySequencer(sim.vehicle, plan, journal, ground_wind=wind).run()
        return outcome, await journal.events(plan.order.order_id)


def states(events: list[JournalEvent]) -> list[str]:
    return [e.name for e in events if e.kind == "state"]


def commands(events: list[JournalEvent]) -> list[str]:
    return [e.name for e in events if e.kind == "command"]


def assert_home_and_disarmed(sim: SitlInstance) -> None:
    state = sim.vehicle.state
    assert not state.armed
    assert state.position is not None
    assert distance_m(state.position, SITE.home()) < 10.0
