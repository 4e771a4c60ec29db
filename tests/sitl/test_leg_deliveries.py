"""Island legs as deliveries, flown by the delivery sequencer in ArduPlane SITL and read back from the journal:
Kirkwall to North Ronaldsay and back with the unload between, and a diversion to Sanday en route."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.airstrips import Airstrip
from flightctl.delivery.decide_leg import LegDelivery
from flightctl.delivery.journal import Journal, JournalEvent
from flightctl.delivery.leg_planner import AirstripsOfLeg, plan_leg
from flightctl.delivery.legs import Leg
from flightctl.delivery.outcome import DeliveryOutcome
from flightctl.delivery.runway_choice import SurfaceWind
from flightctl.delivery.sequencer import DeliverySequencer
from flightctl.delivery.unload import confirm_unload
from flightctl.errors import ConfigError
from flightctl.geo import distance_m
from sitl.instance import SitlInstance
from sitl.legs import flat_world, lined_up
from tests.sitl.conftest import INSTANCE_BASE, require_sitl
from tests.sitl.legs import LEG_SPEEDUP
from tests.sitl.test_island_legs import PLANE

pytestmark = pytest.mark.sitl


def leg_delivery(name: str, order_id: str, *, parcel_kg: float = 2.0, follows: str | None = None) -> LegDelivery:
    """The leg planned in SITL's flat world for calm air, with the three airstrips' winds measured just now."""
    leg = read_yaml_model(named_config("legs", name), Leg)
    strips = flat_world(
        AirstripsOfLeg(
            *(
                read_yaml_model(named_config("airstrips", n), Airstrip)
                for n in (leg.origin, leg.destination, leg.alternate)
            )
        )
    )
    now = datetime.now(UTC)
    calm = SurfaceWind(from_deg=0, speed_m_s=0, measured_at=now)
    winds = {strip.icao: calm for strip in (strips.origin, strips.destination, strips.alternate)}
    plan = plan_leg(leg, strips, PLANE, winds)
    return LegDelivery(order_id, plan, parcel_kg, winds=winds, wind_aloft=calm, follows=follows)


async def fly(sim: SitlInstance, flight: LegDelivery, journal: Journal) -> tuple[DeliveryOutcome, list[JournalEvent]]:
    outcome = await DeliverySequencer(sim.vehicle, flight, journal).run()
    return outcome, await journal.events(flight.order_id)


def states(events: list[JournalEvent]) -> list[str]:
    return [event.name for event in events if event.kind == "state"]


async def test_a_leg_delivered_at_north_ronaldsay_unloaded_and_flown_back_with_both_legs_in_the_journal(
    tmp_path: Path,
) -> None:
    """Test the island round trip: Kirkwall to North Ronaldsay ARRIVED (the delivery, naming the airstrip and
    runway), a return refused by the turnaround check until the crew confirms the unload, the unload journaled
    once, then North Ronaldsay back to Kirkwall ARRIVED: one journal, both legs."""
    require_sitl("plane")
    out = leg_delivery("kirkwall-north-ronaldsay", "KWL-L1")
    async with await Journal.open(tmp_path / "journal.sqlite") as journal:
        async with SitlInstance(
            home=lined_up(out.plan), vehicle="plane", instance=INSTANCE_BASE + 7, speedup=LEG_SPEEDUP
        ) as sim:
            outcome, events = await fly(sim, out, journal)
        assert outcome.delivered, outcome.as_json()
        assert states(events) == ["PREFLIGHT", "UPLOADING", "ARMING", "ENROUTE", "ARRIVED"]
        arrived = events[-1].detail
        assert (arrived["airstrip"], arrived["icao"], arrived["runway"]) == ("North Ronaldsay", "EGEN", "03")
        assert arrived["from_landing_point_m"] <= 35

        back = leg_delivery("north-ronaldsay-kirkwall", "KWL-L1-back", parcel_kg=0.5, follows="KWL-L1")
        async with SitlInstance(  # the crew lined the aircraft up on the runway home
            home=lined_up(back.plan), vehicle="plane", instance=INSTANCE_BASE + 7, speedup=LEG_SPEEDUP
        ) as sim:
            refused, _ = await fly(sim, back, journal)
            assert refused.state.value == "FAILED"
            assert refused.nogo == ["NO-GO turnaround: leg KWL-L1 is ARRIVED: its unload has not been confirmed"]
            await confirm_unload(journal, "KWL-L1", by="North Ronaldsay ground crew")
            with pytest.raises(ConfigError, match="is UNLOADED: only a leg that ARRIVED"):
                await confirm_unload(journal, "KWL-L1", by="twice")
            again = leg_delivery("north-ronaldsay-kirkwall", "KWL-L1-back2", parcel_kg=0.5, follows="KWL-L1")
            home_again, back_events = await fly(sim, again, journal)
        assert home_again.delivered, home_again.as_json()
        assert back_events[-1].detail["airstrip"] == "Kirkwall"
        assert states(await journal.events("KWL-L1"))[-2:] == ["ARRIVED", "UNLOADED"]
        assert states(await journal.events("KWL-L1-back"))[-1] == "FAILED"
        assert states(back_events)[-1] == "ARRIVED"
        unloaded = (await journal.events("KWL-L1"))[-1]
        assert unloaded.detail["by"] == "North Ronaldsay ground crew"


async def test_the_destination_out_of_limits_en_route_diverts_to_sanday_and_lands_there(tmp_path: Path) -> None:
    """Test the leg's divert rule flown: 25 km out, North Ronaldsay reports 10 m/s straight across its strip;
    the controller enters DIVERTING naming the wind, sets the mission to Sanday's landing sequence, and the
    aircraft lands at Sanday (LANDED, not delivered, the load on board)."""
    require_sitl("plane")
    flight = leg_delivery("kirkwall-north-ronaldsay", "KWL-D1")
    async with (
        await Journal.open(tmp_path / "journal.sqlite") as journal,
        SitlInstance(
            home=lined_up(flight.plan), vehicle="plane", instance=INSTANCE_BASE + 7, speedup=LEG_SPEEDUP
        ) as sim,
    ):
        sequencer = DeliverySequencer(sim.vehicle, flight, journal)
        running = asyncio.create_task(sequencer.run())
        home = flight.plan.home
        await sim.vehicle.telemetry.wait_until(
            lambda s: s.position is not None and distance_m(s.position, home) > 25_000,
            timeout_s=25_000 / 15 + 300,
            what="25 km along the leg",
        )
        sequencer.report_airstrip_wind("EGEN", SurfaceWind.parse("120/10"))
        async with asyncio.timeout(40_000 / 15 / LEG_SPEEDUP * 3 + 120):
            outcome = await running
        events = await journal.events(flight.order_id)
    assert not outcome.delivered
    assert states(events) == ["PREFLIGHT", "UPLOADING", "ARMING", "ENROUTE", "DIVERTING", "LANDED"]
    diverting = next(event for event in events if event.name == "DIVERTING")
    assert diverting.detail["to"] == "EGES runway 03"
    assert "120 deg at 10 m/s" in diverting.detail["reason"]
    landed = events[-1].detail
    assert landed["airstrip"] == "Sanday"
    assert landed["from_landing_point_m"] <= 35


async def _flightctl(*args: str, cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "flightctl",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(600):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_sim_leg_flies_a_leg_from_the_command_line_and_leg_unloaded_confirms_it(tmp_path: Path) -> None:
    """Test the engineer's commands: `flightctl sim leg` flies Kirkwall to North Ronaldsay in SITL and exits 0
    ARRIVED with its JSON summary and tlog; `flightctl leg unloaded` confirms it once, and refuses a second time
    with exit 1 and one line."""
    require_sitl("plane")
    instance = str(INSTANCE_BASE + 7)
    code, out, err = await _flightctl(
        "sim", "leg", "kirkwall-north-ronaldsay", "--order-id", "KWL-C1", "--instance", instance, "--json", cwd=tmp_path
    )
    assert code == 0, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["outcome"] == "delivered"
    assert summary["final_state"] == "ARRIVED"
    assert await asyncio.to_thread((tmp_path / summary["tlog"]).is_file), "the tlog beside the journal"
    journal = str(tmp_path / "flightctl-legs.sqlite")
    code, out, err = await _flightctl("leg", "unloaded", "KWL-C1", "--journal", journal, "--by", "crew 7", cwd=tmp_path)
    assert code == 0, err
    assert "KWL-C1: unload confirmed by crew 7" in out
    code, out, err = await _flightctl("leg", "unloaded", "KWL-C1", "--journal", journal, "--by", "crew 7", cwd=tmp_path)
    assert code == 1
    assert "order KWL-C1 is UNLOADED: only a leg that ARRIVED at its destination is unloaded" in " ".join(err.split())
