"""Remote ID on a copter at the Kirkwall depot, enforced as on a UK aircraft: the companion's broadcast, the
go/no-go for each missing piece (nothing armed), and the transmitter going silent en route.

The SITL instance runs the simulated transmitter module (sitl/remote_id_tx.py) and no broadcast of its own:
what the autopilot hears of the operator is what the code under test sends."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flightctl.config import configs_dir
from flightctl.delivery.journal import Journal
from flightctl.delivery.order import DeliveryMethod, DeliveryOrder, RemoteIdLossRule
from flightctl.delivery.planner import plan_delivery
from flightctl.delivery.sequencer import DeliverySequencer
from flightctl.geo import distance_m
from flightctl.tasks import cancel_and_wait
from flightctl.vehicle.remote_id_settings import RemoteIdSettings
from flightctl.vehicle.telemetry import Clock
from flightctl.vehicle.vehicle import Vehicle
from sitl.instance import SitlInstance
from sitl.locations import Home
from sitl.remote_id_tx import sitl_operator
from tests.sitl.conftest import INSTANCE_BASE, require_sitl
from tests.sitl.deliveries import (
    DELIVERY_SPEEDUP,
    PROFILE,
    SHORT_DROP,
    SITE,
    assert_home_and_disarmed,
    calm,
    fly,
    order,
)
from tests.sitl.deliveries import states as state_names

pytestmark = pytest.mark.sitl

OPERATOR = sitl_operator("copter")


@pytest.fixture
async def uk_copter() -> AsyncIterator[SitlInstance]:
    require_sitl("copter")
    home = Home(lat_deg=SITE.depot.lat, lon_deg=SITE.depot.lon, alt_m=SITE.depot_alt_m, heading_deg=0)
    async with SitlInstance(home=home, instance=INSTANCE_BASE + 9, speedup=DELIVERY_SPEEDUP, remote_id=True) as sim:
        yield sim


def short_order(order_id: str) -> DeliveryOrder:
    base = order("kirkwall-1200m-height")
    assert base.method is DeliveryMethod.RELEASE_AT_HEIGHT
    return base.model_copy(update={"order_id": order_id, "drop": SHORT_DROP})


async def test_with_everything_present_a_delivery_arms_and_flies(uk_copter: SitlInstance, tmp_path: Path) -> None:
    """Test that nothing arms before the companion speaks; that Remote ID is healthy within 3 s (vehicle time)
    of the broadcast starting; and that a delivery then flies as before, its go/no-go saying so."""
    vehicle = uk_copter.vehicle
    assert not vehicle.state.prearm_ok, "the autopilot enforces Remote ID: no pre-arm pass without the operator"
    async with vehicle.remote_id.broadcasting(OPERATOR):
        await vehicle.telemetry.wait_until(
            lambda _s: vehicle.remote_id.status().healthy, timeout_s=3.0, what="Remote ID healthy", clock=Clock.VEHICLE
        )
        outcome, events = await fly(uk_copter, plan_delivery(short_order("RID-OK"), SITE, PROFILE), tmp_path / "j")
    assert outcome.delivered, outcome.as_json()
    check = next(e for e in events if e.kind == "check" and e.name == "remote id")
    assert check.detail["ok"], check.detail
    assert "GOOD_TO_ARM" in check.detail["line"]
    assert_home_and_disarmed(uk_copter)


async def test_each_missing_piece_is_a_no_go_that_names_it_and_nothing_arms(
    uk_copter: SitlInstance, tmp_path: Path
) -> None:
    """Test the NO-GO for a transmitter reporting a failure, a silent one, no operator location, a stale one,
    no operator ID, and an autopilot with no transmitter port: each names what is missing, and the aircraft is
    never armed."""
    vehicle, tx = uk_copter.vehicle, uk_copter.transmitter
    plan = plan_delivery(short_order("RID-NOGO"), SITE, PROFILE)

    async def no_go(name: str, settings: RemoteIdSettings, expected: str) -> str:
        async with vehicle.remote_id.broadcasting(settings):
            outcome, events = await fly(uk_copter, plan, tmp_path / f"{name}.sqlite")
        assert not outcome.delivered
        said = [e.detail.get("line") or e.detail.get("reason") for e in events if e.kind in ("check", "state")]
        assert "ARMING" not in state_names(events), "\n".join(map(str, said))
        assert state_names(events)[-1] == "FAILED"
        assert not vehicle.state.armed
        check = next(e for e in events if e.kind == "check" and e.name == "remote id")
        assert not check.detail["ok"], name
        assert expected in check.detail["line"], (name, check.detail["line"])
        return str(check.detail["line"])

    tx.fail("BLE module fault")
    await vehicle.telemetry.wait_until(
        lambda _s: vehicle.remote_id.status().arm_error == "BLE module fault", timeout_s=5, what="the fault reported"
    )
    await no_go("failure", OPERATOR, "transmitter reports a failure: BLE module fault")
    tx.go_silent()
    await vehicle.telemetry.sleep(4)
    line = await no_go("silent", OPERATOR, "Remote ID transmitter silent")
    assert "autopilot: " in line, "the autopilot's own reason is quoted"
    # A companion starting while the module is dead has never heard it: "no transmitter", not "silent".
    async with (
        Vehicle.connect(uk_copter.serial1_url) as companion,
        companion.remote_id.broadcasting(OPERATOR),
        await Journal.open(tmp_path / "none.sqlite") as journal,
    ):
        outcome = await DeliverySequencer(companion, plan, journal, ground_wind=calm()).run()
        events = await journal.events(plan.order.order_id)
    assert not outcome.delivered
    assert "ARMING" not in state_names(events)
    check = next(e for e in events if e.kind == "check" and e.name == "remote id")
    assert "no Remote ID transmitter: no OPEN_DRONE_ID_ARM_STATUS heard" in check.detail["line"], check.detail
    tx.recover()
    await no_go("no location", OPERATOR.model_copy(update={"operator_location": None}), "no operator location")
    await no_go("no operator id", OPERATOR.model_copy(update={"operator_id": None}), "no operator ID configured")
    # The companion's sender dies while its settings stand: the operator location goes stale.
    async with vehicle.remote_id.broadcasting(OPERATOR) as sender:
        assert sender is not None
        await vehicle.telemetry.sleep(2)
        await cancel_and_wait(sender)
        await vehicle.telemetry.sleep(4)
        outcome, events = await fly(uk_copter, plan, tmp_path / "stale.sqlite")
    assert not outcome.delivered
    assert "ARMING" not in state_names(events)
    check = next(e for e in events if e.kind == "check" and e.name == "remote id")
    assert "operator location stale" in check.detail["line"], check.detail
    await vehicle.params.set("DID_MAVPORT", -1)  # the transmitter's port unset on the autopilot
    try:
        await no_go("no port", OPERATOR, "the autopilot passes Remote ID to no transmitter (DID_MAVPORT -1")
    finally:
        await vehicle.params.set("DID_MAVPORT", 5)


@pytest.mark.parametrize("rule", [RemoteIdLossRule.RETURN, RemoteIdLossRule.LAND])
async def test_the_transmitter_going_silent_en_route_is_journaled_and_the_profiles_rule_applies(
    uk_copter: SitlInstance, tmp_path: Path, rule: RemoteIdLossRule
) -> None:
    """Test that a transmitter that stops reporting in flight is journaled with what went wrong and the rule,
    the delivery aborts with the parcel, and the aircraft does what the profile's rule says: returns home by
    RTL, or lands where it is; the autopilot said it lost the transmitter too."""
    vehicle, tx = uk_copter.vehicle, uk_copter.transmitter
    profile = PROFILE.model_copy(update={"remote_id_lost": rule})
    plan = plan_delivery(short_order(f"RID-LOST-{rule.value}"), SITE, profile)

    async def silence_on_the_way() -> None:
        await vehicle.telemetry.wait_until(
            lambda s: s.armed and s.position is not None and distance_m(s.position, SITE.home()) > 100,
            timeout_s=300,
            what="100 m on the way",
        )
        tx.go_silent()

    async with vehicle.remote_id.broadcasting(OPERATOR):
        silencer = asyncio.create_task(silence_on_the_way())
        try:
            outcome, events = await fly(uk_copter, plan, tmp_path / "lost.sqlite")
        finally:
            await cancel_and_wait(silencer)
            tx.recover()
    assert not outcome.delivered
    lost = next(e for e in events if e.name == "remote_id_lost")
    assert lost.detail["rule"] == rule.value
    assert "silent" in lost.detail["problems"][0], lost.detail
    aborting = next(e for e in events if e.name == "ABORTING")
    assert "Remote ID lost in flight" in aborting.detail["reason"]
    assert state_names(events)[-1] == "LANDED"
    assert any("ODID: lost transmitter" in t.text for t in vehicle.telemetry.status_log)
    if rule is RemoteIdLossRule.RETURN:
        assert_home_and_disarmed(uk_copter)
    else:
        assert any(e.kind == "command" and e.detail.get("mode") == "LAND" for e in events)
        assert vehicle.state.position is not None
        assert distance_m(vehicle.state.position, SITE.home()) > 80, "landed where it was, not at home"
        assert not vehicle.state.armed


@pytest.mark.mqtt
async def test_the_daemon_sends_remote_id_and_reports_its_loss_over_mqtt(
    uk_copter: SitlInstance, tmp_path: Path
) -> None:
    """Test `flightctl run` with the operator's Remote ID in its config on an aircraft that enforces it: its
    telemetry says Remote ID is healthy, an order arms and flies, and when the transmitter goes silent en route
    the ground sees it in telemetry and in the ABORTING event, and the aircraft comes home by the profile's rule."""
    from tests.sitl.test_daemon import open_rig

    vehicle, tx = uk_copter.vehicle, uk_copter.transmitter
    async with open_rig(uk_copter, tmp_path, remote_id=True) as rig:
        ground = rig.ground

        def samples(healthy: bool, after: int = 0) -> list[dict[str, Any]]:
            reports = [s.data.get("remote_id") or {} for s in ground.telemetry.received[after:]]
            return [r for r in reports if r.get("healthy") is healthy]

        def remote_id_seen(healthy: bool, after: int = 0) -> bool:
            return bool(samples(healthy, after))

        await vehicle.telemetry.wait_until(lambda _s: remote_id_seen(True), timeout_s=30, what="healthy over MQTT")
        assert samples(True)[0]["operator_id"] == "GBR87astrdge12k8"
        first = short_order("RID-MQTT-1")
        answer = await ground.answer(await ground.send_order(first))
        assert answer.type == "order_accepted", rig.daemon.log_tail()
        await ground.state(first.order_id, "ENROUTE", timeout_s=120)
        await vehicle.telemetry.wait_until(lambda s: (s.relative_alt_m or 0) > 10, timeout_s=120, what="climbing out")
        tx.go_silent()
        silenced_at = len(ground.telemetry.received)
        try:
            aborting = await ground.state(first.order_id, "ABORTING", timeout_s=120)
            assert "Remote ID lost in flight" in aborting.data["detail"]["reason"], ground.story(first.order_id)
            assert aborting.data["detail"]["with_parcel"] is True
            await vehicle.telemetry.wait_until(
                lambda _s: remote_id_seen(False, silenced_at), timeout_s=30, what="the loss over MQTT"
            )
            lost = samples(False, silenced_at)[0]
            assert any("silent" in p for p in lost["problems"]), lost
            await ground.state(first.order_id, "LANDED", timeout_s=600)
        finally:
            tx.recover()
        assert "observation:remote_id_lost" in await rig.journal_events(first.order_id)
        await vehicle.telemetry.wait_until(lambda s: not s.armed, timeout_s=60, what="disarmed")
    assert_home_and_disarmed(uk_copter)


async def test_deliver_sends_the_operators_remote_id_given_with_remote_id(
    uk_copter: SitlInstance, tmp_path: Path
) -> None:
    """Test `flightctl deliver` against an aircraft that enforces Remote ID: without --remote-id it is a NO-GO
    that says what to give; with the onboard config's [remote_id] the delivery flies."""
    order_file = tmp_path / "order.yaml"
    order_file.write_text(yaml.safe_dump(short_order("RID-CLI").model_dump(mode="json")))

    async def deliver(*extra: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flightctl", "deliver", str(order_file), "--connect", uk_copter.serial1_url,
            "--journal", str(tmp_path / f"journal{len(extra)}.sqlite"), "--depot-wind", "0", "--json", *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 600)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, err = await deliver()
    assert code == 2, err[-2000:]
    record = json.loads(out.strip().splitlines()[-1])
    assert any("remote id" in line and "--remote-id" in line for line in record["nogo"]), record["nogo"]
    assert not uk_copter.vehicle.state.armed
    code, out, err = await deliver("--remote-id", str(configs_dir() / "onboard" / "sitl.toml"))
    assert code == 0, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1])["outcome"] == "delivered"
    assert_home_and_disarmed(uk_copter)
