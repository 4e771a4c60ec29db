"""Mission upload speed, side by side on one ArduCopter SITL: flightctl vs MAVSDK-Python's mission_raw vs a
minimal plain-pymavlink request/reply loop. Each contender uploads the same 100- and 500-item missions, in
alternating rounds, over the same TCP port (SITL's SERIAL1); only the upload itself is timed.

flightctl runs twice: as it ships (on ArduPilot it writes the @MISSION file over MAVFTP, six items per round
trip, and confirms the count) and with the mission protocol alone (one item per round trip, like the others).

    python bench/mission_upload.py [--rounds 7] [--speedup 1] [--loss 0.1,0.3]

With ``--loss``, each contender also uploads 100 items through ``sitl.relay.LossyRelay`` (UDP to the client,
whole datagrams dropped at that rate each way, as a radio loses them), each upload with a fresh relay and a
120 s limit: the table then gives the completion rate and the median time of the uploads that completed.

Needs ArduPilot SITL (see README) and, for the MAVSDK column, ``pip install mavsdk``. Prints medians and
ratios to the fastest; no assertion anywhere: this measures, it does not test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import statistics
import time
from collections.abc import Awaitable, Callable

os.environ.setdefault("MAVLINK20", "1")  # before pymavlink's mavutil is imported: MAVLink 2 for the plain loop

from rich.console import Console
from rich.table import Table

from flightctl.geo import AltFrame, offset
from flightctl.missions.model import MissionItem, MissionType
from flightctl.vehicle.vehicle import LinkOptions, Vehicle
from sitl.instance import SitlInstance
from sitl.locations import resolve_home
from sitl.relay import LossyRelay

Uploader = Callable[[str, list[MissionItem]], Awaitable[float]]
console = Console(width=150)  # the table is wide; keep it whole in logs and pipes


def mission(count: int) -> list[MissionItem]:
    home = resolve_home("kirkwall").location()
    items = [MissionItem.home(home), MissionItem.takeoff(30)]
    for n in range(count - 2):
        point = offset(home, bearing_deg=(n * 11) % 360, distance_m=100 + n).with_alt(30 + n % 40, AltFrame.RELATIVE)
        items.append(MissionItem.waypoint(point))
    return items


async def flightctl_upload(url: str, items: list[MissionItem], *, use_ftp: bool = True) -> float:
    async with Vehicle.connect(url, options=LinkOptions(system_id=1), rates_hz=None) as vehicle:
        if use_ftp and not vehicle.mission.mission_files:
            raise RuntimeError("the vehicle did not offer MAVFTP: this column would not measure what it says")
        vehicle.mission.policy = dataclasses.replace(vehicle.mission.policy, use_ftp=use_ftp)
        started = time.perf_counter()
        await vehicle.mission.upload(items, MissionType.MISSION)
        return time.perf_counter() - started


async def flightctl_mission_protocol_upload(url: str, items: list[MissionItem]) -> float:
    return await flightctl_upload(url, items, use_ftp=False)


async def mavsdk_upload(url: str, items: list[MissionItem]) -> float:
    from mavsdk.asyncio.mavsdk import Configuration, Mavsdk
    from mavsdk.asyncio.plugins.mission_raw import MissionRawAsync
    from mavsdk.component_type import ComponentType
    from mavsdk.plugins.mission_raw import MissionItem as RawItem

    raw = [  # MAVSDK insists that exactly one item is marked current
        RawItem(seq, i.frame, i.command, int(seq == 0), int(i.autocontinue), *i.params, i.x, i.y, i.z, 0)
        for seq, i in enumerate(items)
    ]
    config = Configuration.create_with_component_type(ComponentType.GROUND_STATION)
    async with Mavsdk(config) as mavsdk:
        scheme, host, port = url.split(":")
        await mavsdk.add_any_connection(f"{'tcpout' if scheme == 'tcp' else 'udpout'}://{host}:{port}")
        system = await mavsdk.first_autopilot(timeout_s=20.0)
        if system is None:
            raise RuntimeError("MAVSDK found no autopilot")
        plugin = MissionRawAsync(system)
        started = time.perf_counter()
        await plugin.upload_mission(raw)
        return time.perf_counter() - started


def _pymavlink_upload_blocking(url: str, items: list[MissionItem]) -> float:
    from pymavlink import mavutil

    link = mavutil.mavlink_connection(url, source_system=1, source_component=191)
    try:
        link.mav.heartbeat_send(
            mavutil.mavlink.MAV_TYPE_ONBOARD_CONTROLLER, mavutil.mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0
        )
        if link.wait_heartbeat(timeout=20) is None:
            raise RuntimeError("plain pymavlink: no heartbeat")
        started = time.perf_counter()
        link.mav.mission_count_send(link.target_system, link.target_component, len(items), 0)
        while True:
            wanted = ["MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK"]
            message = link.recv_match(type=wanted, blocking=True, timeout=5)
            if message is None:
                raise RuntimeError("plain pymavlink: vehicle went silent")
            if message.get_type() == "MISSION_ACK":
                if message.type != 0:
                    raise RuntimeError(f"plain pymavlink: NACK {message.type}")
                return time.perf_counter() - started
            i = items[message.seq]
            link.mav.mission_item_int_send(
                link.target_system, link.target_component, message.seq, i.frame, i.command, 0,
                int(i.autocontinue), i.param1, i.param2, i.param3, i.param4, i.x, i.y, i.z, 0,
            )  # fmt: skip
    finally:
        link.close()


async def pymavlink_upload(url: str, items: list[MissionItem]) -> float:
    return await asyncio.to_thread(_pymavlink_upload_blocking, url, items)


LOSSY_ITEMS = 100
LOSSY_LIMIT_S = 120.0


async def lossy_upload(
    sim: SitlInstance, upload: Uploader, items: list[MissionItem], loss: float, seed: int
) -> float | None:
    """One upload through a fresh lossy relay to SITL's SERIAL2; None when it failed or ran out of time."""
    host, port = sim.serial2_url.removeprefix("tcp:").rsplit(":", 1)
    async with LossyRelay(host, int(port), loss=loss, seed=seed) as relay:
        try:
            async with asyncio.timeout(LOSSY_LIMIT_S):
                return await upload(relay.url, items)
        except Exception as exc:  # a failed upload is a result here: counted, not raised
            console.print(f"  failed: {type(exc).__name__}: {str(exc)[:120]}", markup=False)
            return None


def lossy_table(losses: list[float], results: dict[tuple[str, float], list[float | None]], names: list[str]) -> Table:
    table = Table(
        title=f"{LOSSY_ITEMS}-item upload through a relay losing whole datagrams each way (limit {LOSSY_LIMIT_S:g} s)"
    )
    table.add_column("loss", justify="right")
    for name in names:
        table.add_column(f"{name} done", justify="right")
        table.add_column("median s", justify="right")
    for loss in losses:
        row = [f"{loss:.0%}"]
        for name in names:
            runs = results[(name, loss)]
            done = [seconds for seconds in runs if seconds is not None]
            row += [f"{len(done)}/{len(runs)}", f"{statistics.median(done):.1f}" if done else "-"]
        table.add_row(*row)
    return table


async def main(rounds: int, speedup: float, instance: int, losses: list[float]) -> None:
    contenders: dict[str, Uploader] = {
        "flightctl": flightctl_upload,
        "flightctl mission protocol": flightctl_mission_protocol_upload,
        "plain pymavlink": pymavlink_upload,
    }
    try:
        import mavsdk  # noqa: F401

        contenders["MAVSDK mission_raw"] = mavsdk_upload
    except ImportError:
        console.print("[yellow]mavsdk not installed (pip install mavsdk): its column is left out[/]")
    sizes = (100, 500)
    results: dict[tuple[str, int], list[float]] = {(name, size): [] for name in contenders for size in sizes}
    async with SitlInstance(home=resolve_home("kirkwall"), instance=instance, speedup=speedup) as sim:
        url = sim.serial1_url
        for round_number in range(rounds):
            order = list(contenders.items())
            if round_number % 2:
                order.reverse()  # alternate who goes first, so warm-up and drift fall on everyone
            for size in sizes:
                items = mission(size)
                for name, upload in order:
                    seconds = await upload(url, items)
                    results[(name, size)].append(seconds)
                    await asyncio.sleep(0.5)  # let SITL's TCP port settle between clients
            console.print(f"round {round_number + 1}/{rounds} done")
        lossy: dict[tuple[str, float], list[float | None]] = {
            (name, loss): [] for name in contenders for loss in losses
        }
        for round_number in range(rounds if losses else 0):
            for loss in losses:
                for name, upload in contenders.items():
                    console.print(f"lossy round {round_number + 1}: {name} at {loss:.0%}", markup=False)
                    seconds = await lossy_upload(sim, upload, mission(LOSSY_ITEMS), loss, seed=round_number)
                    lossy[(name, loss)].append(seconds)
    table = Table(title=f"Mission upload to ArduCopter SITL over TCP (speedup {speedup:g}, {rounds} rounds, medians)")
    table.add_column("items", justify="right")
    for name in contenders:
        table.add_column(f"{name} s", justify="right")
        table.add_column("x fastest", justify="right")
    for size in sizes:
        medians = {name: statistics.median(results[(name, size)]) for name in contenders}
        fastest = min(medians.values())
        row = [str(size)]
        for name in contenders:
            row += [f"{medians[name]:.3f}", f"{medians[name] / fastest:.2f}"]
        table.add_row(*row)
    console.print(table)
    if losses:
        console.print(lossy_table(losses, lossy, list(contenders)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--instance", type=int, default=9)
    parser.add_argument("--loss", default="", help="comma-separated datagram loss rates, e.g. 0.1,0.3")
    arguments = parser.parse_args()
    losses = [float(part) for part in arguments.loss.split(",") if part.strip()]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(arguments.rounds, arguments.speedup, arguments.instance, losses))
