"""Deliveries on one autopilot that stays up, and over links that are bad or gone: what the aircraft sees when
the companion computer stays connected between orders and the radio is a radio."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
import yaml

from flightctl.delivery.journal import Journal, JournalEvent
from flightctl.delivery.order import DeliveryOrder
from flightctl.delivery.planner import plan_delivery
from flightctl.geo import distance_m
from sitl.instance import SitlInstance
from sitl.relay import LossyRelay
from tests.sitl.deliveries import (
    PROFILE,
    SHORT_DROP,
    SITE,
    assert_home_and_disarmed,
    commands,
    fly,
    order,
    states,
)

pytestmark = pytest.mark.sitl

DELIVERED_STATES = [
    "PREFLIGHT", "UPLOADING", "ARMING", "ENROUTE", "ON_STATION", "RELEASING", "RELEASED", "RETURNING", "LANDED",
]  # fmt: skip


def short_order(order_id: str) -> DeliveryOrder:
    return order("kirkwall-1500m-place").model_copy(update={"order_id": order_id, "drop": SHORT_DROP})


def order_file(tmp_path: Path, order_id: str) -> Path:
    path = tmp_path / f"{order_id}.yaml"
    path.write_text(yaml.safe_dump(short_order(order_id).model_dump(mode="json", exclude_none=True)))
    return path


def tcp_endpoint(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("tcp:").rsplit(":", 1)
    return host, int(port)


async def deliver_cli(*args: str, timeout_s: float) -> tuple[int, dict[str, object], str]:
    """`flightctl deliver ... --json` as a user runs it: (exit code, the summary, the tail of stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightctl", "deliver", *args, "--json", "--depot-wind", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    lines = stdout.decode().strip().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    assert process.returncode is not None
    return process.returncode, summary, stderr.decode()[-3000:]


async def journal_events(path: Path, order_id: str) -> list[JournalEvent]:
    async with await Journal.open(path, reader=True) as journal:
        return await journal.events(order_id)


@pytest.mark.parametrize("journals", ["one journal", "a journal each"])
async def test_a_second_delivery_on_the_same_autopilot(depot_sitl: SitlInstance, tmp_path: Path, journals: str) -> None:
    """Test two deliveries in a row on one running SITL: the second starts with the vehicle in AUTO on the ground,
    as the first left it, and is flown and delivered like the first."""
    first = plan_delivery(short_order("KWL-S1"), SITE, PROFILE)
    second = plan_delivery(short_order("KWL-S2"), SITE, PROFILE)
    outcome, _ = await fly(depot_sitl, first, tmp_path / "first.sqlite")
    assert outcome.delivered, outcome.as_json()
    vehicle = depot_sitl.vehicle
    assert vehicle.state.mode == "AUTO", "the case under test: the first delivery left the vehicle in AUTO"
    assert not vehicle.state.armed
    journal = tmp_path / ("first.sqlite" if journals == "one journal" else "second.sqlite")
    outcome, events = await fly(depot_sitl, second, journal)
    assert outcome.delivered, outcome.as_json()
    assert states(events) == DELIVERED_STATES
    sets = [e.detail for e in events if e.name in ("set_mode", "set_current") and e.state == "ARMING"]
    assert sets == [
        {"mode": "GUIDED", "reason": "leave AUTO so the new mission starts"},
        {"seq": 1, "reason": "start the new mission at its first item"},
        {"mode": "AUTO"},
    ]
    assert any(e.name == "mission_started" for e in events)
    assert_home_and_disarmed(depot_sitl)


async def test_link_cut_for_good_ends_deliver_within_its_bound_and_a_restart_records_the_landing(
    depot_sitl: SitlInstance, tmp_path: Path
) -> None:
    """Test that with the link cut for good near the gate the vehicle comes home by itself with the parcel,
    `deliver` ends with exit 2 within --link-lost-timeout saying the outcome is unknown, and a restart with the
    same journal once the link is back records the landing with the parcel still on board."""
    plan = plan_delivery(short_order("KWL-CUT"), SITE, PROFILE)
    journal = tmp_path / "journal.sqlite"
    vehicle = depot_sitl.vehicle
    async with LossyRelay(*tcp_endpoint(depot_sitl.serial2_url), loss=0.0) as relay:
        args = [str(order_file(tmp_path, "KWL-CUT")), "--connect", relay.url, "--journal", str(journal)]
        flight = asyncio.create_task(deliver_cli(*args, "--link-lost-timeout", "20", timeout_s=600))
        drop = plan.order.drop_location()
        await vehicle.telemetry.wait_until(
            lambda s: s.armed and s.position is not None and distance_m(s.position, drop) < 120,
            timeout_s=300,
            what="120 m from the drop point under the controller",
        )
        relay.cut()
        cut_at = asyncio.get_running_loop().time()
        code, summary, stderr = await flight
        waited_s = asyncio.get_running_loop().time() - cut_at
        assert code == 2, stderr
        assert summary["final_state"] == "OUT_OF_CONTACT"
        assert summary["outcome"] == "unknown: out of contact, parcel presumed on board"
        assert waited_s < 20 + 15, f"deliver took {waited_s:.0f} s after the cut"
        await vehicle.telemetry.wait_until(
            lambda s: not s.armed, timeout_s=600, what="the vehicle home and landed by its own fallback"
        )
        assert_home_and_disarmed(depot_sitl)
        setup = vehicle.payload.setup or await vehicle.payload.discover()
        assert vehicle.payload.gripper_at(vehicle.state, setup.grab_pwm), "the parcel is still gripped"

        relay.restore()
        code, summary, stderr = await deliver_cli(*args, timeout_s=120)
    assert code == 2, stderr
    assert summary["final_state"] == "LANDED"
    assert summary["outcome"] == "not delivered"
    events = await journal_events(journal, "KWL-CUT")
    assert states(events)[-3:] == ["ABORTING", "OUT_OF_CONTACT", "LANDED"]
    landed = events[-1]
    assert landed.detail["released"] is False
    assert "release_authorised" not in commands(events)


async def test_deliveries_through_a_radio_that_loses_a_fifth_of_its_datagrams(
    depot_sitl: SitlInstance, tmp_path: Path
) -> None:
    """Test three deliveries in a row, each through a relay dropping 20 % of datagrams each way, each delivered
    (rate requests, upload and supervision all ride out the loss)."""
    for run in range(3):
        order_id = f"KWL-LOSSY-{run}"
        async with LossyRelay(*tcp_endpoint(depot_sitl.serial2_url), loss=0.2, seed=run) as relay:
            args = [str(order_file(tmp_path, order_id)), "--connect", relay.url]
            started = asyncio.get_running_loop().time()
            code, summary, stderr = await deliver_cli(*args, "--journal", str(tmp_path / "j.sqlite"), timeout_s=900)
            took = asyncio.get_running_loop().time() - started
            print(f"lossy delivery {run}: exit {code} in {took:.0f} s; relay {relay.stats}")
            assert code == 0, f"{summary}\n{stderr}"
            assert summary["outcome"] == "delivered"
            assert relay.stats.dropped_to_client > 10
            assert relay.stats.dropped_from_client > 10
        assert_home_and_disarmed(depot_sitl)
