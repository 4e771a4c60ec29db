"""An island leg ordered over MQTT: `flightctl run` on ArduPlane SITL, configured with the legs it flies, a real
mosquitto, and a ground station sending what dispatch and the crew send. The leg is flown full length, the
arrival reaches the ground with its airstrip and runway, the crew's unload comes as a command, and every
mistake (a wind out of limits, a drop order to a wing, a return before the unload) is refused saying why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flightctl.ground.registry import Registry
from flightctl.ground.relay import StatusRelay
from flightctl.ground.tracking_page import page_html
from flightctl.mqtt.contract import MessageType
from sitl.instance import SitlInstance
from sitl.legs import lined_up, write_flat_leg
from tests.mqtt.clients import endpoint
from tests.sitl.conftest import INSTANCE_BASE, require_sitl
from tests.sitl.daemon_support import DRONE, cli_broker_args, flightctl, relaying
from tests.sitl.legs import LEG_SPEEDUP
from tests.sitl.test_daemon import open_rig, short_order
from tests.sitl.test_leg_deliveries import leg_delivery
from tests.support.conditions import eventually_true
from tests.unit.test_tracking_page import LONDON, WORDS, visible

pytestmark = [pytest.mark.sitl, pytest.mark.mqtt]

OUT = "kirkwall-north-ronaldsay"
BACK = "north-ronaldsay-kirkwall"
# 53 km at 22 m/s is 40 minutes of vehicle time; with the take-off, the approach and the roll-out, the wall time
# at LEG_SPEEDUP, three times over for a loaded machine.
LEG_WALL_S = 3600 / LEG_SPEEDUP * 3 + 120


def measured(from_deg: float, speed_m_s: float) -> dict[str, Any]:
    return {"from_deg": from_deg, "speed_m_s": speed_m_s, "measured_at": datetime.now(UTC).isoformat()}


def calm_winds() -> dict[str, Any]:
    return {icao: measured(0, 0) for icao in ("EGPA", "EGEN", "EGES")}


async def test_a_leg_ordered_over_mqtt_arrives_is_unloaded_by_command_and_mistakes_are_refused(
    tmp_path: Path,
) -> None:
    """Test the island leg through the daemon: a drop order to the wing and a leg whose destination has only a
    crosswind are rejected with their reasons; the leg is flown to North Ronaldsay (ARRIVED over MQTT naming
    EGEN runway 03, at rest within 35 m of its landing point); a new airstrip wind in flight is passed to it,
    an older one refused; the way back is refused until the crew's `unloaded` command, which is journaled once
    and goes out as UNLOADED. The leg order, the wind and the unload are sent with the CLI an engineer uses
    (`order leg`, `leg report-wind`, `leg unloaded --broker`)."""
    require_sitl("plane")
    legs = [write_flat_leg(tmp_path / "legs", name) for name in (OUT, BACK)]
    home = lined_up(leg_delivery(OUT, "plan-only").plan)
    async with (
        SitlInstance(home=home, vehicle="plane", instance=INSTANCE_BASE + 10, speedup=LEG_SPEEDUP) as sim,
        open_rig(sim, tmp_path, profile="sitl-plane", legs=legs) as rig,
        await Registry.open(str(tmp_path / "registry.sqlite")) as registry,
        relaying(StatusRelay(registry, [endpoint(rig.broker, "ground")], name="relay-1")),
    ):
        ground = rig.ground
        await registry.register("NRL-L1", "customer-on-north-ronaldsay", DRONE)
        drop = await ground.send_order(short_order("KWL-DROP-1"))
        refused_drop = await ground.answer(drop)
        assert refused_drop.type is MessageType.ORDER_REJECTED
        assert refused_drop.data["reasons"] == [
            "this aircraft is a fixed-wing: it lands at airstrips and flies island legs (a leg order), not drops"
        ]

        across = {**calm_winds(), "EGEN": measured(120, 14)}
        crosswind = await ground.send_leg({"order_id": "NRL-X1", "leg": OUT, "parcel_kg": 2.0}, across, measured(0, 0))
        refused_leg = await ground.answer(crosswind)
        assert refused_leg.type is MessageType.ORDER_REJECTED
        (reason,) = refused_leg.data["reasons"]
        assert reason.startswith("no plan for leg kirkwall-north-ronaldsay: "), reason
        assert "crosswind" in reason
        assert "03" in reason

        # The leg, ordered as an engineer would from a laptop: `flightctl order leg`.
        broker = cli_broker_args(rig.broker, tmp_path)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        winds = [arg for icao in ("EGPA", "EGEN", "EGES") for arg in ("--airstrip-wind", f"{icao}=000/0@{now}")]
        code, out, err = await flightctl(
            "order", "leg", OUT, "--order-id", "NRL-L1", "--parcel-kg", "2", "--aloft-wind", "000/0", *winds, *broker,
            "--json",
        )  # fmt: skip
        assert code == 0, (out, err)
        assert json.loads(out)["type"] == "order_accepted"
        await ground.state("NRL-L1", "ENROUTE", timeout_s=180)
        code, out, err = await flightctl("leg", "report-wind", "--airstrip-wind", f"EGEN=030/4@{now}", *broker)
        assert (code, out.strip()) == (0, "EGEN 030 deg at 4 m/s passed to leg NRL-L1"), err
        stale = {"from_deg": 120, "speed_m_s": 20, "measured_at": "2026-01-01T00:00:00Z"}
        older = await ground.answer(await ground.command("airstrip_wind", icao="EGEN", wind=stale))
        assert older.data["ok"] is False
        assert older.data["result"].startswith("older than the EGEN wind already held")
        arrived = await ground.state("NRL-L1", "ARRIVED", timeout_s=LEG_WALL_S)
        detail = arrived.data["detail"]
        assert (detail["airstrip"], detail["icao"], detail["runway"]) == ("North Ronaldsay", "EGEN", "03")
        assert detail["from_landing_point_m"] <= 35
        assert ground.states("NRL-L1") == ["PREFLIGHT", "UPLOADING", "ARMING", "ENROUTE", "ARRIVED"]

        # The customer's page, from what the relay made of the drone's events: where the parcel is, and where to
        # collect it; never the runway, the aircraft or where it flew.
        async def arrival_kept() -> bool:
            return any(status.place for status in await registry.statuses("NRL-L1"))

        await eventually_true(arrival_kept, timeout_s=30)
        page = visible(page_html("NRL-L1", await registry.statuses("NRL-L1"), WORDS, LONDON, datetime.now(UTC)))
        assert "Arrived at " in page  # the headline, with the time
        assert "Your parcel has arrived at North Ronaldsay airstrip." in page
        assert "Please collect your parcel at North Ronaldsay airstrip." in page
        for internal in ("EGEN", "ARRIVED", "DELIVERED", "runway", "Kirkwall", "Sanday"):
            assert internal not in page, (internal, page)

        logged = await ground.event(
            lambda e: e.type == "flight_record" and e.order_id == "NRL-L1", "the leg's flight record", timeout_s=60
        )
        assert (logged.data["outcome"], logged.data["delivered"]) == ("ARRIVED", True)
        assert logged.data["landing_airstrip"] == "North Ronaldsay"

        idle = await ground.answer(await ground.command("airstrip_wind", icao="EGEN", wind=measured(30, 4)))
        assert (idle.data["ok"], idle.data["result"]) == (False, "no island leg in progress")

        back = {"order_id": "NRL-L1-back", "leg": BACK, "parcel_kg": 0.5, "follows": "NRL-L1"}
        early = await ground.answer(await ground.send_leg(back, calm_winds(), measured(0, 0)))
        assert early.type is MessageType.ORDER_REJECTED
        assert "NO-GO turnaround: leg NRL-L1 is ARRIVED: its unload has not been confirmed" in early.data["reasons"]

        code, out, err = await flightctl("leg", "unloaded", "NRL-L1", "--by", "NRL crew 2", *broker)
        assert (code, out.strip()) == (0, "NRL-L1: unload confirmed by NRL crew 2"), err
        event = await ground.state("NRL-L1", "UNLOADED", timeout_s=30)
        assert event.data["detail"]["by"] == "NRL crew 2"
        twice = await ground.answer(await ground.command("unloaded", order_id="NRL-L1", by="someone else"))
        assert twice.data["ok"] is False
        assert (
            "is UNLOADED: only a leg that ARRIVED at its destination is unloaded, and only once"
            in (twice.data["result"])
        )
        assert [e for e in await rig.journal_events("NRL-L1") if e.startswith("state:")][-2:] == [
            "state:ARRIVED",
            "state:UNLOADED",
        ]
