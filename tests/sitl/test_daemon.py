"""`flightctl run` on real SITL and a real mosquitto (TLS, passwords): orders over MQTT are flown, every event
arrives once and in order through broker outages and daemon crashes, and bad orders change nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from flightctl.delivery.journal import Journal
from flightctl.delivery.order import DeliveryMethod, DeliveryOrder
from flightctl.geo import distance_m
from flightctl.ground.logbook import LogbookGround
from flightctl.ground.registry import Registry
from flightctl.ground.relay import StatusRelay
from flightctl.missions.model import MissionPlan, MissionType
from flightctl.mqtt.contract import MessageType
from sitl.daemon import DaemonProcess
from sitl.instance import SitlInstance
from sitl.mosquitto import Mosquitto
from sitl.postgres import PostgresServer
from sitl.relay import LossyRelay
from sitl.tcp_proxy import TcpProxy
from tests.ground.conftest import require_program
from tests.mqtt.clients import endpoint
from tests.mqtt.conftest import ACCOUNTS, require_mosquitto
from tests.sitl.daemon_support import (
    DRONE,
    TOPICS,
    Ground,
    cli_broker_args,
    envelope,
    flightctl,
    following,
    ground_station,
    relaying,
    write_config,
)
from tests.sitl.deliveries import SHORT_DROP, assert_home_and_disarmed, order
from tests.sitl.test_delivery_links import DELIVERED_STATES, tcp_endpoint
from tests.support.conditions import eventually_true
from tests.support.tlogs import read_tlog, tlogs_of

pytestmark = [pytest.mark.sitl, pytest.mark.mqtt]


FLOOD = 300


def short_order(order_id: str, method: DeliveryMethod = DeliveryMethod.PAYLOAD_PLACE) -> DeliveryOrder:
    base = order("kirkwall-1500m-place" if method is DeliveryMethod.PAYLOAD_PLACE else "kirkwall-1200m-height")
    return base.model_copy(update={"order_id": order_id, "drop": SHORT_DROP})


@dataclass
class Rig:
    sim: SitlInstance
    broker: Mosquitto
    daemon: DaemonProcess
    ground: Ground
    folder: Path
    network: TcpProxy  # the daemon's way to the broker: a cellular link that can drop

    async def journal_events(self, order_id: str) -> list[str]:
        async with await Journal.open(self.folder / "daemon" / "journal.sqlite", reader=True) as journal:
            return [f"{e.kind}:{e.name}" for e in await journal.events(order_id)]


@contextlib.asynccontextmanager
async def open_rig(
    sim: SitlInstance,
    folder: Path,
    *,
    autopilot_url: str | None = None,
    link_lost_timeout_s: float = 60,
    remote_id: bool = False,
    profile: str = "sitl-quad",
    legs: Sequence[Path] = (),
) -> AsyncIterator[Rig]:
    """SITL, a mosquitto with TLS and passwords, the daemon reaching it through a proxy, a ground station."""
    require_mosquitto()
    async with (
        Mosquitto(folder / "broker", accounts=dict(ACCOUNTS)) as broker,
        TcpProxy("127.0.0.1", broker.port) as network,
    ):
        # The certificate names 127.0.0.1, so TLS through the proxy checks out as it would without it.
        config = write_config(
            folder / "daemon",
            autopilot_url=autopilot_url or sim.serial2_url,
            broker_url=f"mqtts://127.0.0.1:{network.port}",
            ca_file=broker.ca_file,
            link_lost_timeout_s=link_lost_timeout_s,
            remote_id=remote_id,
            profile=profile,
            legs=legs,
        )
        daemon = DaemonProcess(config)
        async with ground_station(broker) as ground:
            await daemon.start()
            try:
                await ground.online_is(True, timeout_s=60)
                await ground.vehicle_reported(timeout_s=60)
                yield Rig(sim, broker, daemon, ground, folder, network)
            finally:
                if daemon.process is not None and daemon.process.returncode is None:
                    code = await daemon.stop()
                    assert code == 0, f"SIGTERM should stop the daemon cleanly, exit {code}\n{daemon.log_tail()}"


@pytest.fixture
async def rig(depot_sitl: SitlInstance, tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_rig(depot_sitl, tmp_path) as opened:
        yield opened


async def mission_hash(sim: SitlInstance) -> str:
    return MissionPlan(await sim.vehicle.mission.download(MissionType.MISSION)).content_hash()


async def test_an_order_over_mqtt_is_flown_and_delivered_through_a_broker_outage(rig: Rig) -> None:
    """Test an order sent over MQTT to `flightctl run`: accepted, flown, delivered, with the broker stopped for
    20 s in flight; every event arrives in sequence, none lost, none duplicated after de-duplication; a second
    order while busy and the same order again are answered, and nothing is flown twice."""
    ground, vehicle = rig.ground, rig.sim.vehicle
    first = short_order("KWL-MQTT-1")
    answer = await ground.answer(await ground.send_order(first))
    assert answer.type == "order_accepted", rig.daemon.log_tail()
    await ground.state(first.order_id, "ENROUTE", timeout_s=120)

    busy = await ground.answer(await ground.send_order(short_order("KWL-MQTT-2")))
    assert busy.type == "order_rejected"
    assert any("busy: flying order KWL-MQTT-1" in r for r in busy.data["reasons"]), busy.data

    await rig.broker.stop()
    stopped_at = asyncio.get_running_loop().time()
    await vehicle.telemetry.wait_until(
        lambda _s: asyncio.get_running_loop().time() - stopped_at >= 20, timeout_s=3000, what="20 s of broker outage"
    )  # 20 s of wall time (the deadline is vehicle time, which runs faster)
    assert vehicle.state.armed, "the flight went on without the broker"
    await rig.broker.start()

    await ground.state(first.order_id, "LANDED", timeout_s=600)
    await vehicle.telemetry.wait_until(lambda s: not s.armed, timeout_s=60, what="disarmed, as the daemon saw")
    assert ground.states(first.order_id) == DELIVERED_STATES
    unique = ground.unique_events()
    seqs = [e.seq for e in unique]
    assert seqs == list(range(1, len(seqs) + 1)), f"a gap or a reordering: {seqs}"
    landed = next(e for e in unique if e.data.get("state") == "LANDED")
    assert landed.data["detail"]["released"] is True
    assert all(e.drone == "drone-a" for e in unique)

    again = await ground.answer(await ground.send_order(first))
    assert again.type == "order_accepted"
    assert again.data["duplicate"] is True
    status = await ground.answer(await ground.command("status"))
    assert status.data["status"]["order_id"] is None, "the same order is never flown twice"
    assert not vehicle.state.armed
    assert (await rig.journal_events(first.order_id)).count("command:arm") == 1
    assert_home_and_disarmed(rig.sim)
    # The flight's record for the operator's logbook, once, after the landing.
    record = await ground.event(
        lambda e: e.type == "flight_record" and e.order_id == first.order_id, "the flight record", timeout_s=60
    )
    assert record.seq is not None
    assert landed.seq is not None
    assert record.seq > landed.seq
    assert (record.data["outcome"], record.data["delivered"]) == ("LANDED", True)
    assert record.data["preflight"].startswith("GO: ")
    assert 0 < record.data["duration_s"] < 3600
    assert [e.type for e in ground.unique_events()].count("flight_record") == 1
    # The flight's telemetry log, beside the daemon's journal, as ground stations read it.
    [flight_log] = tlogs_of(rig.folder / "daemon", first.order_id)
    flown = {name for name, _ in read_tlog(flight_log)}
    assert {"HEARTBEAT", "GLOBAL_POSITION_INT", "MISSION_CURRENT", "STATUSTEXT"} <= flown
    # Start-up's objects were frozen before the work began: no collection walks them under a telemetry sample.
    assert re.search(r"\(\d{4,} start-up objects frozen\)", rig.daemon.log_tail(lines=100_000)), "not frozen"


async def test_rejected_orders_say_why_and_leave_the_vehicle_untouched(rig: Rig) -> None:
    """Test that malformed JSON, a payload over the limit, a document nested a thousand levels deep, unknown
    fields, a drop outside the operating area and a parcel over the payload limit are each answered with the
    reason, that the daemon counts the unreadable ones as dead letters and keeps serving, and that the vehicle is
    not armed and holds the same mission as before."""
    ground, sim = rig.ground, rig.sim
    before = await mission_hash(sim)

    async def raw(payload: bytes) -> list[str]:
        await ground.publish(TOPICS.orders, payload)
        rejected = await ground.event(
            lambda e: e.type == "order_rejected" and e.data.get("request_id") is None and e.seq not in seen,
            "a rejection without a request id",
            timeout_s=30,
        )
        seen.add(rejected.seq)
        return list(rejected.data["reasons"])

    seen: set[int | None] = set()
    assert any("not JSON" in r for r in await raw(b'{"schema": 1, "drone": '))
    assert any("over the limit" in r for r in await raw(b"{" + b" " * 20_000 + b"}"))
    assert any("not UTF-8" in r for r in await raw(b"\xff\xfe{}"))
    # 2 KB nested a thousand levels deep: it stopped the daemon for good (RecursionError), on either topic.
    assert any("nests deeper" in r for r in await raw(b"[" * 1000 + b"]" * 1000))
    await ground.publish(TOPICS.commands, b'{"data":' + b"{" * 1000 + b"}" * 1000 + b"}")

    async def refused(data: dict[str, object], order_id: str | None = None) -> list[str]:
        await ground.publish(TOPICS.orders, envelope(MessageType.ORDER, data, order_id))
        answer = await ground.answer(str(data["request_id"]), timeout_s=30)
        assert answer.type == "order_rejected", answer
        return list(answer.data["reasons"])

    good = short_order("KWL-BAD-1").model_dump(mode="json", exclude_none=True)
    reasons = await refused({"request_id": "unknown-field", "order": {**good, "customer_name": "A. Person"}})
    assert any("customer_name" in r and "Extra inputs" in r for r in reasons), reasons

    far = short_order("KWL-BAD-2").model_copy(update={"drop": SHORT_DROP.model_copy(update={"lat": 59.2})})
    reasons = await refused({"request_id": "outside", "order": far.model_dump(mode="json", exclude_none=True)})
    assert any("outside the operating area" in r for r in reasons), reasons

    heavy = short_order("KWL-BAD-3").model_copy(update={"parcel_kg": 9.0})
    reasons = await refused({"request_id": "heavy", "order": heavy.model_dump(mode="json", exclude_none=True)})
    assert any("over the payload limit" in r for r in reasons), reasons

    # The engineer's commands: `order send` prints every reason and exits 2; `events` saw the answer.
    args = cli_broker_args(rig.broker, rig.folder)
    heavy_file = rig.folder / "heavy.yaml"
    heavy_file.write_text(yaml.safe_dump(heavy.model_dump(mode="json", exclude_none=True)))
    async with following("events", *args, "--count", "1", "--json") as follower:
        code, out, err = await flightctl("order", "send", str(heavy_file), *args, "--depot-wind", "0")
        assert code == 2, err
        assert "rejected" in out, out
        assert "over the payload limit" in out, out
        stdout, _ = await asyncio.wait_for(follower.communicate(), timeout=30)
    followed = json.loads(stdout.decode().splitlines()[0])
    assert followed["type"] == "order_rejected"
    assert followed["drone"] == "drone-a"

    assert not sim.vehicle.state.armed
    assert await mission_hash(sim) == before, "no mission was uploaded for a rejected order"
    for order_id in ("KWL-BAD-1", "KWL-BAD-2", "KWL-BAD-3"):
        assert await rig.journal_events(order_id) == [], "a rejected order is never started"

    # A flood (a dispatch stuck in a retry loop): answered up to the budget (60 a minute after a burst of 60),
    # the rest counted, not journaled, not sent; the daemon answers again once the budget refills.
    flood_from = max(e.seq or 0 for e in ground.unique_events())
    await ground.publish(TOPICS.orders, *[b"not json %d" % n for n in range(FLOOD)])
    status_requests = 0
    while True:
        status_requests += 1
        asked = await ground.command("status")
        try:
            answer = await ground.answer(asked, timeout_s=3)
            break
        except AssertionError:
            assert status_requests < 30, "the daemon never answered again after the flood"
    after = [e for e in ground.unique_events() if e.seq is not None and e.seq > flood_from]
    flood_answers = [e for e in after if e.type == "order_rejected"]
    status_answers = [e for e in after if e.type == "command_result" and e.data.get("command") == "status"]
    unanswered = answer.data["status"]["unanswered_messages"]
    assert len(flood_answers) + unanswered == FLOOD + status_requests - len(status_answers)
    assert len(flood_answers) <= 90, f"{len(flood_answers)} answers to a flood of {FLOOD}: the budget did not bite"
    told = sum(e.data.get("unanswered_before", 0) for e in after)
    assert told == unanswered, "every answer given says how many went unanswered before it"
    # Every payload that was not an order or a command of ours is a dead letter, counted: the three unreadable,
    # the two deep documents, the unknown field, the flood.
    assert answer.data["status"]["dead_letters"] == 3 + 2 + 1 + FLOOD
    assert not sim.vehicle.state.armed


async def test_abort_over_mqtt_brings_the_parcel_home(rig: Rig) -> None:
    """Test `abort` over MQTT mid-flight: answered, the vehicle comes home along the route with the parcel, and
    the events say why."""
    ground, vehicle = rig.ground, rig.sim.vehicle
    the_order = short_order("KWL-ABORT")
    order_file = rig.folder / "abort.yaml"
    order_file.write_text(yaml.safe_dump(the_order.model_dump(mode="json", exclude_none=True)))
    args = cli_broker_args(rig.broker, rig.folder)
    code, out, err = await flightctl("order", "send", str(order_file), *args, "--depot-wind", "0")
    assert code == 0, f"{out}\n{err}\n{rig.daemon.log_tail()}"
    assert "accepted" in out
    drop = the_order.drop_location()
    # `flightctl telemetry` runs beside the flight: a new process's start-up on a loaded machine must not delay
    # the abort past the release (CI-20 saw it reach RELEASING first).
    telemetry = asyncio.create_task(flightctl("telemetry", *args, "--json", "--count", "2", timeout_s=120))
    await vehicle.telemetry.wait_until(
        lambda s: s.armed and s.position is not None and distance_m(s.position, drop) < 250,
        timeout_s=300,
        what="250 m from the drop point",
    )
    result = await ground.answer(await ground.command("abort", "customer cancelled"))
    assert result.type == "command_result"
    assert result.data["ok"] is True, result.data
    code, out, err = await telemetry
    assert code == 0, err
    samples = [json.loads(line) for line in out.splitlines()]
    assert len(samples) == 2
    assert samples[0]["type"] == "telemetry"
    assert samples[0]["data"]["armed"] is True
    assert samples[0]["data"]["order_id"] == "KWL-ABORT"
    assert samples[0]["data"]["delivery_state"] in ("ARMING", "ENROUTE", "ON_STATION", "ABORTING")
    assert samples[0]["time_source"] == "gps"
    aborting = await ground.state(the_order.order_id, "ABORTING", timeout_s=60)
    assert aborting.data["detail"]["reason"] == "operator abort: customer cancelled"
    assert aborting.data["detail"]["with_parcel"] is True
    landed = await ground.state(the_order.order_id, "LANDED", timeout_s=600)
    assert landed.data["detail"]["released"] is False
    await vehicle.telemetry.wait_until(lambda s: not s.armed, timeout_s=60, what="disarmed, as the daemon saw")
    assert_home_and_disarmed(rig.sim)
    setup = vehicle.payload.setup or await vehicle.payload.discover()
    assert vehicle.payload.gripper_at(vehicle.state, setup.grab_pwm), "the parcel is still gripped"
    status = await ground.answer(await ground.command("status"))
    assert status.data["status"]["order_id"] is None
    assert status.data["status"]["broker_connected"] is True


async def test_a_daemon_killed_en_route_resumes_with_one_release_and_its_sequence_carries_on(rig: Rig) -> None:
    """Test that `flightctl run` SIGKILLed en route and started again with the same journal completes the
    delivery with exactly one release, and that its event sequence numbers carry on without reuse."""
    ground, vehicle = rig.ground, rig.sim.vehicle
    the_order = short_order("KWL-KILL", DeliveryMethod.RELEASE_AT_HEIGHT)
    assert (await ground.answer(await ground.send_order(the_order))).type == "order_accepted"
    drop = the_order.drop_location()
    await vehicle.telemetry.wait_until(
        lambda s: s.armed and s.position is not None and distance_m(s.position, drop) < 300,
        timeout_s=300,
        what="300 m from the drop point",
    )
    await rig.daemon.kill()
    await rig.daemon.start()
    await ground.state(the_order.order_id, "LANDED", timeout_s=600)
    await vehicle.telemetry.wait_until(lambda s: not s.armed, timeout_s=60, what="disarmed, as the daemon saw")

    journal = await rig.journal_events(the_order.order_id)
    assert journal.count("command:gripper_release") == 1, journal
    assert "observation:resumed" in journal
    unique = ground.unique_events()
    seqs = [e.seq for e in unique]
    assert seqs == list(range(1, len(seqs) + 1)), f"a gap or a reordering: {seqs}"
    by_seq: dict[int | None, bytes] = {}
    for received in ground.events.received:  # a re-send carries the same number and the same message
        assert by_seq.setdefault(received.seq, received.to_json()) == received.to_json(), "a sequence number reused"
    released = [e for e in unique if e.data.get("state") == "RELEASED"]
    assert len(released) == 1
    landed = next(e for e in unique if e.data.get("state") == "LANDED")
    assert landed.data["detail"]["released"] is True
    assert_home_and_disarmed(rig.sim)


async def test_orders_sent_while_the_drone_is_away_are_answered_and_the_last_will_says_offline(rig: Rig) -> None:
    """Test that an order published while the daemon's network is down reaches it after the reconnect and is
    answered; that a drop shorter than the will delay never shows it offline; that a SIGKILLed daemon is shown
    offline by its last will within the keep-alive plus the will delay; and that one stopped by SIGTERM says
    "stopped" at once, and the will never follows."""
    ground = rig.ground
    rig.network.cut()
    heavy = short_order("KWL-AWAY").model_copy(update={"parcel_kg": 9.0})
    request_id = await ground.send_order(heavy)  # QoS 1 to the drone's persistent session, while it is away
    with pytest.raises(TimeoutError):
        await ground.online_is(False, timeout_s=4)  # the drop lasts 4 s: well inside the 10 s will delay
    rig.network.restore()
    answer = await ground.answer(request_id, timeout_s=60)
    assert answer.type == "order_rejected"
    assert any("over the payload limit" in r for r in answer.data["reasons"])
    assert [online for _t, online in ground.online_history()].count(False) == 0, "never shown offline"

    killed_at = asyncio.get_running_loop().time()
    await rig.daemon.kill()
    offline_at = await ground.online_is(False, timeout_s=60)
    keepalive_s, will_delay_s = 5, 10
    assert offline_at - killed_at <= keepalive_s * 1.5 + will_delay_s + 2
    assert offline_at - killed_at >= will_delay_s - 1, "the will waits for the will delay"
    assert ground.online.received[-1].data["reason"] == "connection lost"
    assert ground.online.received[-1].order_id is None, "the will names no order: it may have changed since"

    # Started again and stopped as systemd stops it: "stopped" at once, not the will's "connection lost" later.
    await rig.daemon.start()
    back_at = await ground.online_is(True, timeout_s=60, after_s=offline_at)
    assert await rig.daemon.stop() == 0
    stopped_at = await ground.online_is(False, timeout_s=will_delay_s, after_s=back_at)
    assert ground.online.received[-1].data["reason"] == "stopped"
    with pytest.raises(TimeoutError):
        await ground.online_is(False, timeout_s=will_delay_s + 3, after_s=stopped_at + 0.001)


async def test_order_after_order_through_a_lossy_radio_and_a_link_cut_for_good(
    depot_sitl: SitlInstance, tmp_path: Path
) -> None:
    """Test the daemon on one autopilot that stays up, through a radio losing a fifth of its datagrams: a first
    order delivered; a second started from the mode the first left; the link then cut for good near the gate:
    the vehicle comes home by itself, the daemon says OUT_OF_CONTACT within its bound, and once the link is back
    it records the landing with the parcel on board. A relay on PostgreSQL keeps both flights in the operator's
    logbook, with the AMC1 fields filled; `flightctl logbook` adds their hours and cycles up, and names a record
    edited behind the relay's back."""
    require_program("/usr/lib/postgresql", "postgresql")
    ground_part = LogbookGround(
        operator_id="GBR-OP-4711", remote_pilot="A. Flett", operation="BVLOS", registrations={DRONE: "G-FCTL1"}
    )
    async with (
        LossyRelay(*tcp_endpoint(depot_sitl.serial2_url), loss=0.2, seed=7) as radio,
        open_rig(depot_sitl, tmp_path, autopilot_url=radio.url, link_lost_timeout_s=20) as rig,
        PostgresServer() as pg,
        await Registry.open(pg.url) as registry,
        relaying(StatusRelay(registry, [endpoint(rig.broker, "ground")], name="relay-1", logbook=ground_part)),
    ):
        ground, vehicle = rig.ground, depot_sitl.vehicle
        first = short_order("KWL-SEQ-1")
        assert (await ground.answer(await ground.send_order(first), timeout_s=300)).type == "order_accepted"
        landed = await ground.state(first.order_id, "LANDED", timeout_s=900)
        assert landed.data["detail"]["released"] is True, f"{ground.story(first.order_id)}\n{rig.daemon.log_tail()}"
        await vehicle.telemetry.wait_until(lambda s: not s.armed, timeout_s=60, what="disarmed after the first")
        assert vehicle.state.mode == "AUTO", "the case under test: the first delivery left the vehicle in AUTO"

        second = short_order("KWL-SEQ-2")
        assert (await ground.answer(await ground.send_order(second), timeout_s=300)).type == "order_accepted"
        drop = second.drop_location()
        await vehicle.telemetry.wait_until(
            lambda s: s.armed and s.position is not None and distance_m(s.position, drop) < 120,
            timeout_s=600,
            what="120 m from the second drop point",
        )
        radio.cut()
        out = await ground.state(second.order_id, "OUT_OF_CONTACT", timeout_s=120)
        assert out.data["detail"]["parcel"] == "on_board"
        await vehicle.telemetry.wait_until(lambda s: not s.armed, timeout_s=900, what="home by its own fallback")
        radio.restore()
        landed = await ground.state(second.order_id, "LANDED", timeout_s=300)
        assert landed.data["detail"]["released"] is False
        assert ground.states(second.order_id)[-3:] == ["ABORTING", "OUT_OF_CONTACT", "LANDED"]
        assert_home_and_disarmed(depot_sitl)

        async def both_in_the_logbook() -> bool:
            return len(await registry.logbook(DRONE)) == 2

        await eventually_true(both_in_the_logbook, timeout_s=120)
        await assert_logbook_of_two(pg.url, [first.order_id, second.order_id])


async def assert_logbook_of_two(registry_url: str, order_ids: list[str]) -> None:
    """The two flights in the logbook with every AMC1 field filled, totals that add up, an intact chain, then a
    record edited by SQL (its guard dropped by the database's owner) named by `flightctl logbook verify`."""
    import asyncpg

    async def logbook(*args: str, exit_code: int = 0) -> str:
        code, out, err = await flightctl("logbook", *args, "--registry", registry_url)
        assert code == exit_code, f"logbook {args}: exit {code}\n{out}\n{err}"
        return out

    listed = json.loads(await logbook("show", DRONE, "--json"))
    assert [entry["order_id"] for entry in listed] == order_ids
    for entry in listed:
        for field in ("takeoff_utc", "landing_utc", "duration_s", "takeoff_lat_deg", "landing_lat_deg", "preflight",
                      "outcome", "operator_id", "remote_pilot", "operation", "registration"):  # fmt: skip
            assert entry[field] not in (None, ""), f"{field} is empty in {entry}"
        assert entry["registration"] == "G-FCTL1"
        assert entry["preflight"].startswith("GO: ")
    assert [entry["delivered"] for entry in listed] == [True, False]
    assert any("OUT_OF_CONTACT" in line for line in listed[1]["occurrences"])
    totals = json.loads(await logbook("list", "--json"))
    assert [(t["drone_id"], t["flights"], t["cycles"]) for t in totals] == [(DRONE, 2, 2)]
    assert totals[0]["hours"] == pytest.approx(sum(e["duration_s"] for e in listed) / 3600, abs=0.001)
    assert "intact" in await logbook("verify")

    connection = await asyncpg.connect(registry_url)
    try:
        await connection.execute("DROP TRIGGER logbook_keep ON logbook")
        await connection.execute("UPDATE logbook SET ground = replace(ground, 'A. Flett', 'B. Flett') WHERE n = 1")
    finally:
        await connection.close()
    broken = await logbook("verify", exit_code=2)
    assert f"{DRONE} record 1 (order {order_ids[0]}): edited" in broken, broken
