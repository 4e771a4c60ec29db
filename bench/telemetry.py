"""Telemetry latency and the daemon's CPU, side by side at each telemetry rate, during real SITL deliveries.

For each rate (default 1 Hz and 10 Hz) one `flightctl run` flies the same short delivery on a fresh ArduCopter
SITL through a real mosquitto (TLS, passwords), while a subscriber on the same machine takes each telemetry
message's latency: from the moment the daemon received the MAVLink message the sample was taken from
(``received_unix_s``, the companion's clock) to the moment the subscriber received it. "GC > 10 ms" counts the
garbage collections the daemon logged as holding its loop for longer (``flightctl/gc_pauses.py``); "loop stalls
logged" counts anything else it logged as holding its loop (``flightctl/loop_stalls.py``: over 100 ms by default,
over ``--watch-loop-ms`` when given, at a cost in CPU and latency), each printed after the table with where the
loop was. The
daemon's CPU is its process's user+system time over the delivery's wall time (psutil), as a share of one
core. Latency sampling goes on after the landing, the daemon still publishing, until each rate has
``--samples`` (default 2000): at 1 Hz that is over half an hour.

    python bench/telemetry.py [--rates 1,10] [--speedup 1] [--samples 2000] [--watch-loop-ms 20]

At --speedup above 1 the autopilot streams faster than real time and the CPU share is inflated by as much:
quote numbers at 1. Needs ArduPilot SITL, mosquitto and ``pip install -e '.[bench]'`` (psutil). Prints a table;
no assertion anywhere: this measures, it does not test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.order import DeliveryOrder, LatLon, Site
from flightctl.mqtt.broker import make_client
from flightctl.mqtt.consumer import read_envelope
from flightctl.mqtt.contract import Envelope, MessageType, TimeSource, Topics
from flightctl.mqtt.endpoint import BrokerEndpoint
from sitl.daemon import DaemonProcess, write_daemon_config
from sitl.instance import SitlInstance
from sitl.locations import Home
from sitl.mosquitto import Mosquitto

DRONE = "bench-1"
ACCOUNTS = {DRONE: "bench-drone-secret", "bench": "bench-ground-secret"}
SHORT_DROP = LatLon(lat=58.956664, lon=-2.952736)  # 500 m from the Kirkwall depot
console = Console(width=150)


@dataclass
class Result:
    rate_hz: float
    messages: int
    latencies_ms: list[float]
    in_flight: int  # the first this many samples were taken before the landing
    cpu_share: float
    wall_s: float
    delivered: bool
    gc_pauses: int  # collections that held the daemon's loop over 10 ms (its log: flightctl/gc_pauses.py)
    stalls: list[str]  # anything else that held its loop over 20 ms, with where (flightctl/loop_stalls.py)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_rate(rate_hz: float, speedup: float, folder: Path, instance: int, samples: int) -> Result:
    site = read_yaml_model(named_config("sites", "kirkwall"), Site)
    order = read_yaml_model(named_config("orders", "kirkwall-1500m-place"), DeliveryOrder)
    order = order.model_copy(update={"order_id": f"BENCH-{int(rate_hz)}HZ", "drop": SHORT_DROP})
    home = Home(lat_deg=site.depot.lat, lon_deg=site.depot.lon, alt_m=site.depot_alt_m, heading_deg=0)
    topics = Topics(DRONE)
    async with (
        SitlInstance(home=home, instance=instance, speedup=speedup) as sim,
        Mosquitto(folder / "broker", accounts=dict(ACCOUNTS)) as broker,
    ):
        config = write_daemon_config(
            folder / "daemon", drone_id=DRONE, autopilot_url=sim.serial2_url, broker_url=broker.url,
            username=DRONE, password=ACCOUNTS[DRONE], ca_file=broker.ca_file, rate_hz=rate_hz,
        )  # fmt: skip
        daemon = DaemonProcess(config)
        ground = BrokerEndpoint.from_url(
            broker.url, username="bench", password=ACCOUNTS["bench"], ca_file=broker.ca_file
        )
        latencies: list[float] = []
        landed = asyncio.Event()
        outcome: dict[str, bool] = {}
        rejected: list[str] = []
        async with make_client(ground, client_id="bench-ground") as client:
            await client.subscribe(topics.telemetry, qos=0)
            await client.subscribe(topics.events, qos=1)
            await client.subscribe(topics.online, qos=1)
            await daemon.start()
            online = asyncio.Event()
            positioned = asyncio.Event()  # the daemon has the vehicle's position: an order can be judged
            enough = asyncio.Event()  # as many latency samples as asked for

            async def receive() -> None:
                async for message in client.messages:
                    arrived = time.time()
                    envelope = read_envelope(message.payload)
                    if envelope.type is MessageType.TELEMETRY:
                        if positioned.is_set():
                            latencies.append((arrived - envelope.data["received_unix_s"]) * 1000)
                            if len(latencies) >= samples:
                                enough.set()
                        elif envelope.data["lat_deg"] is not None and envelope.data["ekf_ok"]:
                            positioned.set()
                    elif envelope.type is MessageType.ORDER_REJECTED:
                        rejected.append("; ".join(envelope.data["reasons"]))
                        landed.set()
                    elif envelope.type is MessageType.ONLINE and envelope.data["online"]:
                        online.set()
                    elif envelope.type is MessageType.STATE and envelope.data["state"] in ("LANDED", "FAILED"):
                        outcome["delivered"] = bool(envelope.data["detail"].get("released"))
                        landed.set()

            receiver = asyncio.create_task(receive())
            try:
                async with asyncio.timeout(120):
                    await online.wait()
                    await positioned.wait()
                process = psutil.Process(daemon.pid)
                cpu_before = process.cpu_times()
                started = time.monotonic()
                data = {
                    "request_id": f"bench-{uuid.uuid4().hex[:8]}",
                    "order": order.model_dump(mode="json", exclude_none=True),
                    "depot_wind": {"speed_m_s": 0.0, "measured_at": datetime.now(UTC).isoformat()},
                }
                envelope = Envelope(
                    drone=DRONE, time=datetime.now(UTC), time_source=TimeSource.SENDER, type=MessageType.ORDER,
                    order_id=order.order_id, data=data,
                )  # fmt: skip
                await client.publish_confirmed(topics.orders, envelope.to_json(), timeout_s=10)
                async with asyncio.timeout(1800 / speedup + 300):
                    await landed.wait()
                wall_s = time.monotonic() - started
                cpu_after = process.cpu_times()
                in_flight = len(latencies)
                # A p99 over a few hundred samples is the third-worst of them: keep sampling, the aircraft on
                # the ground and the daemon still publishing, until the sample means something.
                if len(latencies) < samples:
                    console.print(f"  landed with {len(latencies)} samples; sampling on to {samples} ...")
                async with asyncio.timeout(2 * samples / rate_hz + 60):
                    await enough.wait()
            finally:
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiver
                await daemon.stop()
        logged = daemon.log_tail(lines=10**7)
        gc_pauses = logged.count("held the event loop")
        stalls = [line.split(": ", 1)[-1] for line in logged.splitlines() if "the event loop was held for" in line]
        if rejected:
            raise SystemExit(f"the daemon rejected the bench order: {rejected[0]}")
        cpu_s = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        delivered = outcome.get("delivered", False)
        return Result(
            rate_hz, len(latencies), latencies, in_flight, cpu_s / wall_s, wall_s, delivered, gc_pauses, stalls
        )


def table(results: list[Result], speedup: float) -> Table:
    out = Table(title=f"telemetry: MAVLink receipt -> MQTT subscriber, and the daemon's CPU (SITL speedup {speedup:g})")
    columns = ["rate", "messages", "median ms", "p99 ms", "max ms", "p99 in flight", "daemon CPU", "GC > 10 ms"]
    columns.append("loop stalls logged")
    columns.append("delivery")
    for column in columns:
        out.add_column(column, justify="right")
    for r in results:
        flying = r.latencies_ms[: r.in_flight]
        out.add_row(
            f"{r.rate_hz:g} Hz",
            str(r.messages),
            f"{statistics.median(r.latencies_ms):.2f}" if r.latencies_ms else "-",
            f"{percentile(r.latencies_ms, 0.99):.2f}" if r.latencies_ms else "-",
            f"{max(r.latencies_ms):.2f}" if r.latencies_ms else "-",
            f"{percentile(flying, 0.99):.2f} of {len(flying)}" if flying else "-",
            f"{100 * r.cpu_share:.1f} % over {r.wall_s:.0f} s",
            str(r.gc_pauses),
            str(len(r.stalls)),
            "delivered" if r.delivered else "NOT delivered",
        )
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="1,10", help="telemetry rates to compare, Hz (comma-separated)")
    parser.add_argument("--speedup", type=float, default=1.0, help="SITL speedup (CPU is only real-time at 1)")
    parser.add_argument("--instance", type=int, default=7, help="SITL -I (ports)")
    parser.add_argument("--samples", type=int, default=2000, help="latency samples at least, per rate")
    parser.add_argument(
        "--watch-loop-ms", type=float, help="have the daemon name every loop stall over this (loop_stalls.py)"
    )
    args = parser.parse_args()
    if args.watch_loop_ms is not None:  # finer than the daemon's default watch, which names stalls over 100 ms;
        # a 10 ms beat costs the daemon about 3 % of a core and raises the latencies measured beside it
        os.environ["FLIGHTCTL_LOOP_STALL_MS"] = f"{args.watch_loop_ms:g}"
    results = []
    for rate in (float(r) for r in args.rates.split(",")):
        with tempfile.TemporaryDirectory(prefix="flightctl-bench-") as folder:
            console.print(f"flying at {rate:g} Hz telemetry ...")
            results.append(await one_rate(rate, args.speedup, Path(folder), args.instance, args.samples))
    console.print(table(results, args.speedup))
    for r in results:  # what held the daemon's loop, as it logged it: the slow samples' likeliest cause
        for stall in r.stalls:
            console.print(f"{r.rate_hz:g} Hz: {stall}", soft_wrap=True)


if __name__ == "__main__":
    asyncio.run(main())
