"""The status relay and the tracking page on a real mosquitto (shipped config), a real registry and a real HTTP
server: drone events become each customer's statuses, once and in order; and the page is attacked."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import string
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from flightctl.errors import ConfigError
from flightctl.ground.broker_accounts import AccountKind
from flightctl.ground.ops import ops_app
from flightctl.ground.registry import Registry, token_hash
from flightctl.ground.relay import StatusRelay
from flightctl.ground.serving import serving
from flightctl.ground.tracking import FailedLookups, tracking_app
from flightctl.mqtt.broker import MqttClient
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from sitl.mosquitto import free_port
from sitl.nginx import CachingProxy, TrackingProxy
from tests.ground.conftest import Fleet, require_program
from tests.support.conditions import eventually

pytestmark = pytest.mark.mqtt
OPS = ("ops", "ops-" + secrets.token_hex(8))


@dataclass
class Drone:
    """A drone's events as the daemon publishes them (sequenced envelopes on its own events topic)."""

    client: MqttClient
    drone_id: str
    seq: int = 0
    sent: list[bytes] = field(default_factory=list)

    async def emit(self, type_: MessageType, order_id: str, data: dict[str, Any], *, seq: int | None = None) -> None:
        if seq is None:
            self.seq += 1
            seq = self.seq
        payload = Envelope(
            drone=self.drone_id, seq=seq, time=datetime.now(UTC), time_source=TimeSource.GPS, type=type_,
            order_id=order_id, data=data,
        ).to_json()  # fmt: skip
        self.sent.append(payload)
        await self.client.publish_confirmed(Topics(self.drone_id).events, payload, timeout_s=10)

    async def state(self, order_id: str, state: str, **detail: Any) -> None:
        await self.emit(MessageType.STATE, order_id, {"state": state, "detail": detail})

    async def deliver(self, order_id: str) -> None:
        """The events of one whole delivery, as a drone sends them."""
        await self.state(order_id, "PREFLIGHT")
        await self.emit(MessageType.ORDER_ACCEPTED, order_id, {"request_id": f"r-{order_id}"})
        for state in ("UPLOADING", "ARMING"):
            await self.state(order_id, state)
        await self.state(order_id, "ENROUTE", outbound_time_s=120)
        await self.state(order_id, "ON_STATION")
        await self.state(order_id, "RELEASING")
        await self.state(order_id, "RELEASED", lat_deg=58.9566641, lon_deg=-2.9527357, error_m=0.4)
        await self.state(order_id, "RETURNING")
        await self.state(order_id, "LANDED", released=True)


@dataclass
class Ground:
    fleet: Fleet
    registry: Registry
    relay: StatusRelay
    base_url: str

    @contextlib.asynccontextmanager
    async def drone(self, drone_id: str) -> AsyncIterator[Drone]:
        async with self.fleet.client(drone_id) as client:
            yield Drone(client, drone_id)


@pytest.fixture
async def ground(fleet: Fleet, tmp_path: Path) -> AsyncIterator[Ground]:
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        relay = StatusRelay(registry, [fleet.endpoint("relay-1")], name="1")
        app = tracking_app(
            registry,
            # A window longer than any test runs: what the limit lets through must not depend on how fast this
            # machine serves 10,000 guesses (a loaded CI once took over the 60 s window and let 20 more in).
            failed_lookups=FailedLookups(limit=20, window_s=3600),
            poll_s=0.1,
            trusted_proxies=frozenset({"127.0.0.1"}),
        )
        port = free_port()
        task = asyncio.create_task(relay.run())
        try:
            # Subscribed before any test's drone speaks: a plain subscription made after a publish never sees it.
            await eventually(lambda: relay.stats.connections > 0, timeout_s=30)
            async with serving(app, "127.0.0.1", port):
                yield Ground(fleet, registry, relay, f"http://127.0.0.1:{port}")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def http(base_url: str, client_ip: str = "203.0.113.7", **kwargs: Any) -> httpx.AsyncClient:
    """A browser at ``client_ip`` (as our trusted proxy says), so each test's client has its own failure count."""
    return httpx.AsyncClient(base_url=base_url, headers={"X-Forwarded-For": client_ip}, timeout=30, **kwargs)


async def test_a_delivery_becomes_the_customers_statuses_once_and_in_order(ground: Ground) -> None:
    """Test that one delivery's events, with re-sends, become ACCEPTED, DEPARTED (with an arrival estimate),
    ARRIVING and DELIVERED once each, in order, on that customer's page, with no coordinates on it."""
    token = await ground.registry.register("KWL-T1", "customer-1", "drone-a")
    async with ground.drone("drone-a") as drone:
        await drone.deliver("KWL-T1")
        for payload in drone.sent[3:6]:  # re-sends after a lost PUBACK: same numbers, same messages
            await drone.client.publish_confirmed(Topics("drone-a").events, payload, timeout_s=10)
    await eventually(lambda: ground.relay.stats.taken + ground.relay.stats.duplicates == 13, timeout_s=15)
    assert (ground.relay.stats.taken, ground.relay.stats.duplicates) == (10, 3)
    statuses = await ground.registry.statuses("KWL-T1")
    assert [s.status.value for s in statuses] == ["ACCEPTED", "DEPARTED", "ARRIVING", "DELIVERED"]
    assert statuses[1].eta_utc is not None
    async with http(ground.base_url) as client:
        page = await client.get(f"/t/{token}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store, private"
    assert page.headers["referrer-policy"] == "no-referrer"
    body = page.text
    assert "KWL-T1" in body
    assert "DELIVERED" in body
    assert "58.95" not in body
    assert "-2.95" not in body
    assert "customer-1" not in body


async def test_each_order_reads_in_its_own_sites_time_zone(ground: Ground) -> None:
    """Test that the page shows an order's times in the time zone dispatch registered for its site, and an order
    registered without one in the relay's (Europe/London): one event at the same instant reads as each site's
    clock says."""
    elsewhere = await ground.registry.register("KWL-Z1", "customer-1", "drone-a", timezone="America/St_Johns")
    london = await ground.registry.register("KWL-Z2", "customer-2", "drone-a")
    async with ground.drone("drone-a") as drone:
        await drone.emit(MessageType.ORDER_ACCEPTED, "KWL-Z1", {"request_id": "r-z1"})
        await drone.emit(MessageType.ORDER_ACCEPTED, "KWL-Z2", {"request_id": "r-z2"})
    await eventually(lambda: ground.relay.stats.taken == 2, timeout_s=15)
    (accepted,) = await ground.registry.statuses("KWL-Z1")
    at = datetime.fromisoformat(accepted.at_utc)
    async with http(ground.base_url) as client:
        pages = [(await client.get(f"/t/{token}")).text for token in (elsewhere, london)]
    newfoundland, britain = at.astimezone(ZoneInfo("America/St_Johns")), at.astimezone(ZoneInfo("Europe/London"))
    assert newfoundland.strftime("%H:%M") != britain.strftime("%H:%M")
    assert f"{newfoundland:%a} {newfoundland.day} {newfoundland:%b}, {newfoundland:%H:%M}" in pages[0]
    assert f"{britain:%a} {britain.day} {britain:%b}, {britain:%H:%M}" in pages[1]
    with pytest.raises(ConfigError, match="not one this machine knows"):
        await ground.registry.register("KWL-Z3", "customer-3", "drone-a", timezone="Orkney/Kirkwall")


async def test_a_flight_record_through_the_broker_is_chained_once_and_a_bad_one_is_dead_lettered(
    ground: Ground,
) -> None:
    """Test the relay's part of the logbook: a drone's flight record, sent twice (a lost PUBACK), becomes one
    logbook row in that aircraft's chain, with the operator's fields empty when the relay has none configured;
    a record that is not what the contract says (a duration as text) is a dead letter, and no row; a field the
    contract does not name (a customer's name) never reaches the logbook."""
    record = {
        "takeoff_utc": "2026-12-01T10:00:12Z", "landing_utc": "2026-12-01T10:12:42Z", "duration_s": 750.0,
        "takeoff_lat_deg": 58.9582, "takeoff_lon_deg": -2.9609, "outcome": "LANDED", "delivered": True,
        "preflight": "GO: gps, battery", "occurrences": [],
    }  # fmt: skip
    async with ground.drone("drone-a") as drone:
        await drone.emit(MessageType.FLIGHT_RECORD, "KWL-F1", record)
        await drone.client.publish_confirmed(Topics("drone-a").events, drone.sent[-1], timeout_s=10)
        await drone.emit(MessageType.FLIGHT_RECORD, "KWL-F2", {**record, "duration_s": "750"})
        await drone.emit(MessageType.FLIGHT_RECORD, "KWL-F3", {**record, "customer_name": "Ann Tulloch"})
    await eventually(lambda: ground.relay.stats.taken + ground.relay.stats.dead_letters >= 3, timeout_s=15)
    row, third = await ground.registry.logbook("drone-a")
    assert (row.n, row.order_id, third.n, third.order_id) == (1, "KWL-F1", 2, "KWL-F3")
    assert "Ann" not in third.record
    assert "customer" not in third.record
    fields = row.fields()
    assert fields["duration_s"] == 750.0
    assert (fields["operator_id"], fields["remote_pilot"], fields["registration"]) == (None, None, None)
    assert ground.relay.stats.duplicates == 1
    assert ground.relay.stats.dead_letters == 1


async def test_the_live_stream_carries_only_this_orders_statuses(ground: Ground) -> None:
    """Test the server-sent events of one order: its statuses arrive as they are made, and the other order's,
    sent between them by the same drone, never do."""
    mine = await ground.registry.register("KWL-MINE", "customer-1", "drone-a")
    await ground.registry.register("KWL-OTHER", "customer-2", "drone-a")
    received: list[str] = []
    async with (
        http(ground.base_url) as client,
        ground.drone("drone-a") as drone,
        client.stream("GET", f"/t/{mine}/events") as stream,
    ):
        assert stream.headers["cache-control"] == "no-store, private"
        await drone.emit(MessageType.ORDER_ACCEPTED, "KWL-MINE", {"request_id": "a"})
        await drone.emit(MessageType.ORDER_ACCEPTED, "KWL-OTHER", {"request_id": "b"})
        await drone.state("KWL-OTHER", "ENROUTE", outbound_time_s=60)
        await drone.state("KWL-MINE", "ENROUTE", outbound_time_s=60)
        await drone.state("KWL-MINE", "ABORTING", reason="wind 14 m/s", with_parcel=True)
        async with asyncio.timeout(20):
            async for line in stream.aiter_lines():
                received.append(line)
                if "PROBLEM" in line:
                    break
    data = "\n".join(line for line in received if line.startswith("data:"))
    assert data.count('"status"') == 3
    assert "KWL-OTHER" not in data
    assert "wind" not in data, "the drone's reason stays with the operator"
    assert "bringing your parcel back" in data


async def test_a_hundred_customers_and_two_thousand_concurrent_requests_never_cross(ground: Ground) -> None:
    """Test 100 customers with 100 orders on two drones, and 2000 concurrent page and event-stream requests
    mixing all tokens: every response holds its own order and no other order id or customer id."""
    tokens: dict[str, tuple[str, str]] = {}
    for n in range(100):
        order_id, customer = f"KWL-C{n:03d}", f"cust-{uuid.uuid4().hex[:8]}"
        tokens[await ground.registry.register(order_id, customer, "drone-a" if n % 2 else "drone-b")] = (
            order_id,
            customer,
        )
    async with ground.drone("drone-a") as drone_a, ground.drone("drone-b") as drone_b:
        for token, (order_id, _customer) in tokens.items():
            drone = drone_a if int(order_id[-3:]) % 2 else drone_b
            await drone.emit(MessageType.ORDER_ACCEPTED, order_id, {"request_id": token_hash(token)[:8]})
            await drone.state(order_id, "ENROUTE", outbound_time_s=100)
            await drone.state(order_id, "RELEASED")
    await eventually(lambda: ground.relay.stats.taken == 300, timeout_s=30)
    every_order = {order_id for order_id, _c in tokens.values()}
    every_customer = {c for _o, c in tokens.values()}
    requests = [(token, kind) for kind in ("page", "events") for token in tokens for _ in range(10)]
    random.Random(4).shuffle(requests)
    # All 2000 start at once; 200 connections carry them (httpx's pool degrades badly with thousands waiting on
    # it, which would measure the test's client, not the page).
    in_flight = asyncio.Semaphore(200)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with http(ground.base_url, limits=limits) as client:
        addresses = {token: f"10.0.{n // 250}.{n % 250 + 1}" for n, token in enumerate(tokens)}

        async def fetch(token: str, kind: str) -> tuple[str, int, str]:
            path = f"/t/{token}" if kind == "page" else f"/t/{token}/events"
            async with in_flight:  # each customer from their own address, as the proxy in front reports it
                response = await client.get(path, headers={"X-Forwarded-For": addresses[token]})
            return token, response.status_code, response.text

        results = await asyncio.gather(*(fetch(token, kind) for token, kind in requests))
    assert len(results) == 2000
    for token, status, body in results:
        own_order, own_customer = tokens[token]
        assert status == 200
        assert own_order in body
        assert not {o for o in every_order - {own_order} if o in body}, "another order's id in a response"
        assert not {c for c in every_customer if c in body}, "a customer id in a response"
        assert own_customer not in body


async def test_guessed_and_mangled_tokens_never_open_a_page_and_the_limit_bites(ground: Ground) -> None:
    """Test other orders' tokens truncated, off by one character, URL-encoded and with path tricks, and 10,000
    random guesses: never a page, the same 404 for each as for an unknown token, and 429 once a client has
    failed too often."""
    token = await ground.registry.register("KWL-G1", "customer-g", "drone-a")
    unknown = secrets.token_urlsafe(24)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    # Percent-encoding a token's own characters gives the same URL (the server decodes it): that is the token,
    # not a guess. These are guesses: encoded twice, or encodings of tokens that are not this one.
    double_encoded = "".join(f"%25{ord(c):02X}" for c in token)
    other_encoded = "".join(f"%{ord(c):02X}" for c in flipped)
    mangled = [
        token[:-1], token[:16], token + "x", flipped, token.upper(), token.lower(), " " + token, token + " ",
        double_encoded, other_encoded, f"{token}%2F..%2F..%2Fops", f"..%2F{token}", f"{token}%00", "%00",
        "a" * 5000, unknown, token_hash(token), urllib.parse.quote(f"../{token}", safe=""),
    ]  # fmt: skip
    async with http(ground.base_url, client_ip="198.51.100.1") as client:
        reference = await client.get(f"/t/{unknown}")
        assert reference.status_code == 404
        for n, guess in enumerate(mangled):
            async with http(ground.base_url, client_ip=f"198.51.100.{10 + n}") as fresh:
                response = await fresh.get(f"/t/{guess}")
            assert response.status_code == 404, guess
            assert response.text == reference.text
            assert response.headers["cache-control"] == "no-store, private"
        for path in ("/", "/t/", "/t", "/ops", "/t/x/events/../../ops", "/registry.sqlite", "/t/{token}"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert "KWL-G1" not in response.text

    alphabet = string.ascii_letters + string.digits + "-_"
    rng = random.Random(10_000)
    guesses = ["".join(rng.choice(alphabet) for _ in range(32)) for _ in range(10_000)]
    statuses: dict[int, int] = {}
    async with http(ground.base_url, client_ip="192.0.2.99", limits=httpx.Limits(max_connections=50)) as attacker:
        semaphore = asyncio.Semaphore(50)

        async def guess(text: str) -> int:
            async with semaphore:
                return (await attacker.get(f"/t/{text}")).status_code

        for status in await asyncio.gather(*(guess(g) for g in guesses)):
            statuses[status] = statuses.get(status, 0) + 1
    assert 200 not in statuses
    assert statuses.get(404, 0) <= 20, "the limit lets 20 failures through per window"
    assert statuses.get(429, 0) >= 9_980
    async with http(ground.base_url, client_ip="192.0.2.99") as attacker:
        assert (await attacker.get(f"/t/{token}")).status_code == 429, "even a right token, from a blocked client"
    async with http(ground.base_url, client_ip="192.0.2.100") as customer:
        assert (await customer.get(f"/t/{token}")).status_code == 200, "other clients are not blocked"


async def test_the_operator_view_is_apart_and_limits_failed_logins(ground: Ground) -> None:
    """Test the operators' view on a listener of its own: its credentials, orders counted by status, each
    aircraft's newest state as the relay read it, dead letters shown, no /ops on the customers' listener, and a
    password guesser stopped (429) after the limit of failed logins, even when it then guesses right."""
    await ground.registry.register("KWL-OPS", "customer-o", "drone-b")
    await ground.registry.register("KWL-OPS2", "customer-p", "drone-b")
    async with ground.drone("drone-b") as drone:
        await drone.deliver("KWL-OPS2")
        await drone.state("KWL-OPS3", "PREFLIGHT")  # its next order's first step: the aircraft's newest state
    await eventually(lambda: ground.relay.stats.taken == 11, timeout_s=15)
    port = free_port()
    app = ops_app(ground.registry, credentials=OPS, failed_logins=FailedLookups(limit=5),
                  extra=lambda: {"x": 1, "aircraft": ground.relay.aircraft.view()})  # fmt: skip
    async with serving(app, "127.0.0.1", port), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.get("/ops", auth=OPS)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store, private"
        body = response.json()
        assert any(o["order_id"] == "KWL-OPS" for o in body["orders"])
        assert body["order_counts"] == {"DELIVERED": 1, "REGISTERED": 1}
        assert [(a["drone_id"], a["state"], a["order_id"], a["seq"]) for a in body["aircraft"]] == [
            ("drone-b", "PREFLIGHT", "KWL-OPS3", 11)
        ]
        assert body["recent_dead_letters"] == []
        assert body["x"] == 1
        assert (await client.get("/t/anything")).status_code == 404
        codes = [(await client.get("/ops", auth=("ops", f"guess-{n}"))).status_code for n in range(8)]
        assert codes == [401] * 5 + [429] * 3
        assert (await client.get("/ops", auth=OPS)).status_code == 429
    async with http(ground.base_url) as customer_side:
        assert (await customer_side.get("/ops", auth=OPS)).status_code == 404


async def test_two_relays_each_read_every_event_and_the_registry_keeps_each_once(
    ground: Ground, tmp_path: Path
) -> None:
    """Test two relays on one registry, each with its plain subscription (the default): each reads all 200 events,
    and together they take each once, the other's copy counted as a duplicate."""
    connections = ground.relay.stats.connections
    await ground.fleet.add("relay-3", AccountKind.RELAY)  # restarts the broker, as applying an account does
    second = StatusRelay(ground.registry, [ground.fleet.endpoint("relay-3")], name="3")
    task = asyncio.create_task(second.run())
    try:
        await eventually(lambda: ground.relay.stats.connections > connections, timeout_s=30)
        await eventually(lambda: second.stats.connections > 0, timeout_s=30)
        async with ground.drone("drone-b") as drone:
            for n in range(200):
                await drone.emit(MessageType.COMMAND_RESULT, "KWL-X", {"request_id": f"c{n}", "ok": True})
                if n == 20:
                    await eventually(lambda: second.stats.taken > 0 or ground.relay.stats.taken > 20, timeout_s=10)
        await eventually(lambda: ground.relay.stats.taken + second.stats.taken == 200, timeout_s=30)
        await eventually(lambda: ground.relay.stats.duplicates + second.stats.duplicates >= 200, timeout_s=30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await ground.registry.missing_events("drone-b") == []


async def test_through_a_caching_reverse_proxy_pages_never_cross(ground: Ground, tmp_path: Path) -> None:
    """Test the tracking page behind nginx with proxy_cache on (valid for 10 minutes for any 200 or 404): twenty
    customers' pages fetched in turn, three rounds, and unknown tokens: every response holds only its own order,
    and none ever comes from the cache."""
    require_program("/usr/sbin/nginx", "nginx-light")
    tokens = {}
    async with ground.drone("drone-b") as drone:
        for n in range(20):
            order_id = f"KWL-N{n:02d}"
            tokens[await ground.registry.register(order_id, f"cust-n{n}", "drone-b")] = order_id
            await drone.emit(MessageType.ORDER_ACCEPTED, order_id, {"request_id": f"n{n}"})
    await eventually(lambda: ground.relay.stats.taken == 20, timeout_s=15)
    upstream_port = int(ground.base_url.rsplit(":", 1)[1])
    cache_statuses: dict[str, int] = {}
    async with (
        CachingProxy(tmp_path / "nginx", upstream_port) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        order = list(tokens.items()) * 3
        random.Random(3).shuffle(order)
        for token, order_id in order:
            response = await client.get(f"/t/{token}")
            assert response.status_code == 200
            assert order_id in response.text
            assert not [o for o in tokens.values() if o != order_id and o in response.text]
            status = response.headers.get("x-cache-status", "none")
            cache_statuses[status] = cache_statuses.get(status, 0) + 1
        for _ in range(2):
            response = await client.get(f"/t/{secrets.token_urlsafe(24)}")
            assert response.status_code == 404
            assert "KWL-N" not in response.text
    assert "HIT" not in cache_statuses, cache_statuses
    assert set(cache_statuses) <= {"MISS", "BYPASS", "EXPIRED", "none"}, cache_statuses


async def test_the_shipped_nginx_site_keeps_tokens_out_of_its_log_and_shows_only_customer_paths(
    ground: Ground, tmp_path: Path
) -> None:
    """Test configs/nginx/tracking.conf in a real nginx: a customer's page, its event stream and the script go
    through; /ops, other paths and every spelling of a way out of /t/ get nginx's own 404; and no token, right or
    guessed, reaches the access log, which still records each request."""
    require_program("/usr/sbin/nginx", "nginx-light")
    token = await ground.registry.register("KWL-NGX", "customer-x", "drone-b")
    async with ground.drone("drone-b") as drone:
        await drone.deliver("KWL-NGX")
    await eventually(lambda: ground.relay.stats.taken == 10, timeout_s=15)
    guess = secrets.token_urlsafe(24)
    async with (
        TrackingProxy(tmp_path / "nginx", int(ground.base_url.rsplit(":", 1)[1])) as proxy,
        httpx.AsyncClient(base_url=proxy.url, timeout=30) as client,
    ):
        page = await client.get(f"/t/{token}?utm={token}")
        assert page.status_code == 200
        assert "KWL-NGX" in page.text
        async with client.stream("GET", f"/t/{token}/events") as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    break
        assert (await client.get("/track.js")).status_code == 200
        assert (await client.get(f"/t/{guess}")).status_code == 404
        for path in ("/ops", "/t/../ops", "/t/%2e%2e/ops", f"/t/{token}/../../ops", "/", "/registry.sqlite"):
            response = await client.get(path, auth=OPS)
            assert response.status_code == 404, path
            assert "KWL-NGX" not in response.text, path
            assert "server" not in response.headers or "nginx/" not in response.headers["server"]
    log = proxy.access_log.read_text()
    assert token not in log
    assert guess not in log
    assert log.count('"GET /t/<token>"') == 2
    assert '"GET /t/<token>/events"' in log
    assert '"GET /ops"' in log


async def test_the_fleets_page_follower_sees_each_status_once_through_a_tracking_server_restart(
    ground: Ground,
) -> None:
    """Test `sim fleet`'s customer (sitl.fleet_pages) on a real tracking server: it follows an order's event
    stream, keeps following when the server stops and starts again mid-delivery, takes each status once by the
    (aircraft, seq) of its event, whatever a reopened stream replays, and stops at the final status."""
    from sitl.fleet_pages import PageFollower

    token = await ground.registry.register("KWL-PF1", "customer-pf", "drone-a")
    app = tracking_app(ground.registry, poll_s=0.1)
    port = free_port()
    follower = PageFollower(f"http://127.0.0.1:{port}")
    try:
        async with ground.drone("drone-a") as drone:
            async with serving(app, "127.0.0.1", port):
                follower.follow("KWL-PF1", "drone-a", token)
                sent_at = time.monotonic()
                await drone.emit(MessageType.ORDER_ACCEPTED, "KWL-PF1", {"request_id": "r-pf1"})
                await eventually(lambda: len(follower.shown) == 1, timeout_s=15)
            for state in ("PREFLIGHT", "ENROUTE", "ON_STATION"):  # while no page is served
                await drone.state("KWL-PF1", state, outbound_time_s=60)
            await eventually(lambda: ground.relay.stats.taken == 4, timeout_s=15)
            async with serving(app, "127.0.0.1", port):
                await eventually(lambda: len(follower.shown) == 3, timeout_s=30)
                for state in ("RELEASING", "RELEASED", "RETURNING", "LANDED"):
                    await drone.state("KWL-PF1", state, released=True)
                await eventually(lambda: follower.orders["KWL-PF1"].final, timeout_s=30)
    finally:
        await follower.close()
    followed = follower.orders["KWL-PF1"]
    held = await ground.registry.statuses("KWL-PF1")
    assert [status for status, _at in followed.shown] == [s.status.value for s in held]
    assert set(follower.shown) == {("drone-a", s.seq) for s in held}
    assert followed.reconnects >= 1, "the stream was opened again after the server stopped"
    assert follower.following == 0, "it stopped at the final status"
    times = [at for _status, at in followed.shown]
    assert times == sorted(times)
    assert times[0] > sent_at, "shown after it was sent"


async def test_the_fleets_page_follower_stops_following_an_order_whose_page_went(ground: Ground) -> None:
    """Test that an order the fleet never sent (its registration undone) stops being followed at once: its page's
    404s, every few hundred milliseconds, would count as failed guesses from the one address all pages share."""
    from sitl.fleet_pages import PageFollower

    token = await ground.registry.register("KWL-PF2", "customer-pf", "drone-a")
    await ground.registry.forget("KWL-PF2")
    follower = PageFollower(ground.base_url)
    try:
        follower.follow("KWL-PF2", "drone-a", token)
        await eventually(lambda: follower.orders["KWL-PF2"].reconnects >= 1, timeout_s=15)  # a 404, retried
        follower.unfollow("KWL-PF2")
        await eventually(lambda: follower.following == 0, timeout_s=5)
        assert "KWL-PF2" not in follower.orders
    finally:
        await follower.close()
