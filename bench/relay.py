"""The status relay and its tracking page, side by side on a SQLite and a PostgreSQL registry.

For each registry, one `flightctl relay` process (as deployed) behind the shipped mosquitto config (TLS,
passwords, per-account rules):

- events per second: the relay's session is made, the relay stopped, a backlog from 10 drones queued for it by
  the broker (``--orders`` each, six events an order: 5,400 by default; ``--orders 900`` is the 54,000 of a
  fleet's outage, long enough for a steady rate), the relay started again; from its first event taken to its
  last (read from its /ops view);
- the page's latency at 500 concurrent viewers: 500 customers' tokens, each viewer loading its page 4 times
  in a row, all 500 at once, from this process; median and p99 of the 2,000 page loads.

    python bench/relay.py [--orders 90]

Needs mosquitto and PostgreSQL's server (Debian: mosquitto, postgresql). Prints a table; no assertion anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.table import Table

from flightctl.config import configs_dir
from flightctl.ground.broker_accounts import AccountKind, BrokerAccounts
from flightctl.ground.registry import Registry
from flightctl.mqtt.broker import make_client
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics, drone_client_id
from flightctl.mqtt.endpoint import BrokerEndpoint
from sitl.mosquitto import Mosquitto
from sitl.postgres import PostgresServer
from sitl.relay_process import RelayProcess

ROOT = Path(__file__).resolve().parents[1]
DRONES, STATES = 10, ("ENROUTE", "ON_STATION", "RELEASING", "RELEASED", "RETURNING", "LANDED")
VIEWERS, LOADS = 500, 4
# The open loop: each of the VIEWERS reloads every REFRESH_S, OPEN_LOOP_ROUNDS times (2,000 loads, about 20 s).
REFRESH_S, OPEN_LOOP_ROUNDS = 5.0, 4
console = Console(width=150)


def events_of(drone: str, orders: int) -> list[bytes]:
    payloads, seq = [], 0
    for n in range(orders):
        for state in STATES:
            seq += 1
            payloads.append(
                Envelope(
                    drone=drone,
                    seq=seq,
                    time=datetime.now(UTC),
                    time_source=TimeSource.GPS,
                    type=MessageType.STATE,
                    order_id=f"{drone}-{n}",
                    data={"state": state, "detail": {"released": True}},
                ).to_json()
            )
    return payloads


async def measure(
    name: str, registry_url: str, broker: Mosquitto, passwords: dict[str, str], folder: Path, orders: int
) -> list[str]:
    tokens = []
    async with await Registry.open(registry_url) as registry:
        for d in range(DRONES):
            for n in range(orders):
                tokens.append(await registry.register(f"drone-{d}-{n}", f"customer-{d}-{n}", f"drone-{d}"))
    relay = RelayProcess(
        folder / name, "relay-1", broker_url=broker.url, ca_file=broker.ca_file, password=passwords["relay-1"],
        registry_url=registry_url, failed_lookups_per_minute=10_000,
    )  # fmt: skip
    await relay.start()  # makes the relay's session and subscription
    await relay.stop()
    total = 0
    for d in range(DRONES):
        drone = f"drone-{d}"
        endpoint = BrokerEndpoint.from_url(
            broker.url, username=drone, password=passwords[drone], ca_file=broker.ca_file
        )
        async with make_client(endpoint, client_id=drone_client_id(drone)) as client:  # the one id its account may use
            for payload in events_of(drone, orders):
                await client.publish_confirmed(Topics(drone).events, payload, timeout_s=30)
                total += 1
    await relay.start()
    first = last = None
    try:
        async with asyncio.timeout(600):
            while True:
                taken = await relay.taken() or 0
                now = time.perf_counter()
                if first is None and taken > 0:
                    first = (now, taken)
                if taken >= total:
                    last = (now, taken)
                    break
                await asyncio.sleep(0.05)
        assert first is not None
        rate = (last[1] - first[1]) / max(last[0] - first[0], 1e-6)

        latencies: list[float] = []
        # aiohttp's client, not httpx: with hundreds of connections httpx's pool costs more than the server does.
        connector = aiohttp.TCPConnector(limit=VIEWERS)
        async with aiohttp.ClientSession(relay.url, connector=connector) as http:

            async def viewer(token: str) -> None:
                for _ in range(LOADS):
                    started = time.perf_counter()
                    async with http.get(f"/t/{token}") as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"page answered {response.status}")
                    latencies.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            await asyncio.gather(*(viewer(t) for t in tokens[:VIEWERS]))
            pages_per_s = len(latencies) / (time.perf_counter() - started)

            # Open loop, as customers load pages: each viewer every REFRESH_S, at a phase of its own, whether or
            # not the server has answered the last one (a slow server is not let off by slower viewers).
            open_loop: list[float] = []

            async def customer(token: str, phase_s: float) -> None:
                await asyncio.sleep(phase_s)
                for _ in range(OPEN_LOOP_ROUNDS):
                    due = time.perf_counter() + REFRESH_S
                    began = time.perf_counter()
                    async with http.get(f"/t/{token}") as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"page answered {response.status}")
                    open_loop.append((time.perf_counter() - began) * 1000)
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))

            phases = [REFRESH_S * n / VIEWERS for n in range(VIEWERS)]
            await asyncio.gather(*(customer(t, phase) for t, phase in zip(tokens[:VIEWERS], phases, strict=True)))
    finally:
        await relay.stop()
    ordered = sorted(latencies)
    opened = sorted(open_loop)
    return [
        name,
        f"{total}",
        f"{rate:,.0f}",
        f"{pages_per_s:,.0f}",
        f"{statistics.median(ordered):.1f}",
        f"{percentile(ordered, 0.99):.1f}",
        f"{statistics.median(opened):.1f}",
        f"{percentile(opened, 0.99):.1f}",
        f"{len(ordered)} + {len(opened)}",
    ]


def percentile(ordered: list[float], share: float) -> float:
    return ordered[round(share * (len(ordered) - 1))]


async def main(orders: int) -> None:
    with tempfile.TemporaryDirectory(prefix="flightctl-relay-bench-") as tmp:
        folder = Path(tmp)
        accounts = BrokerAccounts(folder / "accounts")
        passwords = {"relay-1": await accounts.add("relay-1", AccountKind.RELAY)}
        for d in range(DRONES):
            passwords[f"drone-{d}"] = await accounts.add(f"drone-{d}", AccountKind.DRONE)
        template = configs_dir() / "mosquitto" / "flightctl.conf"
        rows = []
        async with Mosquitto(folder / "broker", template=template, accounts_folder=accounts.folder) as broker:
            rows.append(await measure("SQLite", str(folder / "registry.sqlite"), broker, passwords, folder, orders))
            async with PostgresServer() as pg:
                rows.append(await measure("PostgreSQL", pg.url, broker, passwords, folder, orders))
    table = Table(
        title=f"one `flightctl relay`: events through it; its page at {VIEWERS} viewers at once (closed loop) and "
        f"{VIEWERS} viewers each reloading every {REFRESH_S:g} s (open loop)"
    )
    columns = (
        "registry", "events", "events/s", "pages/s (closed)", "closed median ms", "closed p99 ms",
        "open median ms", "open p99 ms", "page loads",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=90, help="orders per drone in the backlog (six events each)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().orders))
