"""Mission upload speed, side by side on one ArduCopter SITL: flightctl vs MAVSDK-Python's mission_raw vs a
minimal plain-pymavlink request/reply loop. Each contender uploads the same 100- and 500-item missions, in
alternating rounds, over the same TCP port (SITL's SERIAL1); only the upload itself is timed.

flightctl runs twice: as it ships (on ArduPilot it writes the @MISSION file over MAVFTP, six items per round
trip, and confirms the count) and with the mission protocol alone (one item per round trip, like the others).

    python bench/mission_upload.py [--rounds 7] [--speedup 1] [--loss 0.1,0.3]

With ``--loss``, each contender also uploads 100 and 500 items through ``sitl.relay.LossyRelay`` (UDP to the
client, whole datagrams dropped at that rate each way, as a radio loses them), each upload with a fresh relay
and a 120 s limit, and every upload is then read back by flightctl through another fresh relay at the same
loss and compared item by item with what ArduPilot stores: an upload counts as done only when it verified.
The table gives the rounds done and the median time of each, and flightctl's download times.
``--rounds 0 --loss 0.1,0.3 --lossy-rounds 10`` runs the lossy rounds alone.

With MAVSDK installed, ``--process-rounds`` (default 5) also times whole processes, start to exit, as a user
runs them: ``flightctl mission upload`` of 500 items, with its readback and verification, against a
MAVSDK-Python script that only uploads them.

Needs ArduPilot SITL (see README) and, for the MAVSDK column, ``pip install mavsdk``. Prints medians and
ratios to the fastest; no assertion anywhere: this measures, it does not test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

os.environ.setdefault("MAVLINK20", "1")  # before pymavlink's mavutil is imported: MAVLink 2 for the plain loop

from rich.console import Console
from rich.table import Table

from flightctl.geo import AltFrame, offset
from flightctl.missions.formats import save_plan
from flightctl.missions.model import MissionItem, MissionPlan, MissionType
from flightctl.missions.verify import compare_plans, expected_on_vehicle
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


def _pymavlink_upload_blocking(url: str, items: list[MissionItem], limit_s: float) -> float:
    """A thread is not cancelled by the caller's timeout, so the loop keeps its own: an upload left running past
    the limit would still be talking to the vehicle when the next contender starts."""
    from pymavlink import mavutil

    deadline = time.monotonic() + limit_s

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
            if time.monotonic() > deadline:
                raise TimeoutError(f"plain pymavlink: not done within {limit_s:g} s")
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
    return await asyncio.to_thread(_pymavlink_upload_blocking, url, items, OTHERS_LIMIT_S)


LOSSY_SIZES = (100, 500)
LOSSY_LIMIT_S = 120.0  # flightctl's, per upload and per readback (the bounds are far inside it)
# The other contenders' uploads: --limit shortens it, so ten rounds of theirs (most running out of time at 30 %
# loss) fit in well under an hour; what they did within it is still measured, and a cut-off shows as such.
OTHERS_LIMIT_S = LOSSY_LIMIT_S
ABANDONED_UPLOAD_S = 9.0


@dataclasses.dataclass
class LossyRound:
    upload_s: float | None = None  # None: failed or out of time
    download_s: float | None = None  # flightctl's readback of what was uploaded, verified item by item
    failure: str = ""


async def readback(url: str, items: list[MissionItem]) -> float:
    """Read the mission back with flightctl through ``url`` and compare it with what ArduPilot stores for
    ``items``: the verification every lossy round gets, whoever uploaded. Returns the download's time."""
    async with Vehicle.connect(url, options=LinkOptions(system_id=1), rates_hz=None) as vehicle:
        plan = MissionPlan().with_items(MissionType.MISSION, items)
        expected = expected_on_vehicle(plan, vehicle.firmware)
        started = time.perf_counter()
        downloaded = await vehicle.mission.download(MissionType.MISSION)
        seconds = time.perf_counter() - started
    held = MissionPlan().with_items(MissionType.MISSION, downloaded)
    mismatches = compare_plans(expected, held, [MissionType.MISSION])
    if mismatches:
        raise RuntimeError(f"readback differs: {mismatches[0]}")
    return seconds


async def lossy_round(
    sim: SitlInstance, upload: Uploader, items: list[MissionItem], loss: float, seed: int, limit_s: float
) -> LossyRound:
    """One upload, then flightctl's verified readback, each through a fresh lossy relay to SITL's SERIAL2 and
    each within the limit."""
    result = LossyRound()
    host, port = sim.serial2_url.removeprefix("tcp:").rsplit(":", 1)
    try:
        async with LossyRelay(host, int(port), loss=loss, seed=seed) as relay:
            async with asyncio.timeout(limit_s):
                result.upload_s = await upload(relay.url, items)
        async with LossyRelay(host, int(port), loss=loss, seed=seed + 1000) as relay:
            async with asyncio.timeout(LOSSY_LIMIT_S):
                result.download_s = await readback(relay.url, items)
    except Exception as exc:  # a failed round is a result here: counted, not raised
        result.failure = f"{type(exc).__name__}: {str(exc)[:120]}"
        console.print(f"  failed: {result.failure}", markup=False)
        # An upload cut off mid-transfer leaves ArduPilot receiving from that client, and it denies every other
        # client until 8 s pass with nothing from it (MissionItemProtocol.h upload_timeout_ms, cancel_upload):
        # without this wait the next contender's upload would be DENIED for the last one's failure.
        await asyncio.sleep(ABANDONED_UPLOAD_S)
    return result


def _done(runs: list[float | None]) -> str:
    done = [seconds for seconds in runs if seconds is not None]
    return f"{len(done)}/{len(runs)}, " + (f"{statistics.median(done):.1f} s" if done else "-")


def lossy_table(
    losses: list[float], results: dict[tuple[str, float, int], list[LossyRound]], names: list[str]
) -> Table:
    table = Table(
        title="Through a relay losing whole datagrams each way: uploads done and their median, then flightctl's "
        f"download of what each uploaded, verified (limit {LOSSY_LIMIT_S:g} s each for flightctl, "
        f"{OTHERS_LIMIT_S:g} s for the others' uploads)"
    )
    table.add_column("loss", justify="right")
    table.add_column("items", justify="right")
    for name in names:
        table.add_column(f"{name} upload", justify="right")
    table.add_column(f"flightctl download + verify ({names[0]} upload)", justify="right")
    for loss in losses:
        for size in LOSSY_SIZES:
            row = [f"{loss:.0%}", str(size)]
            for name in names:
                rounds = results[(name, loss, size)]
                row.append(_done([r.upload_s if r.download_s is not None else None for r in rounds]))
            row.append(_done([r.download_s for r in results[(names[0], loss, size)]]))
            table.add_row(*row)
    return table


PROCESS_ITEMS = 500
_MAVSDK_SCRIPT = """
import asyncio, json, sys
from mavsdk.asyncio.mavsdk import Configuration, Mavsdk
from mavsdk.asyncio.plugins.mission_raw import MissionRawAsync
from mavsdk.component_type import ComponentType
from mavsdk.plugins.mission_raw import MissionItem

async def main(url, path):
    raw = [MissionItem(*fields) for fields in json.load(open(path))]
    async with Mavsdk(Configuration.create_with_component_type(ComponentType.GROUND_STATION)) as mavsdk:
        await mavsdk.add_any_connection(url)
        system = await mavsdk.first_autopilot(timeout_s=20.0)
        await MissionRawAsync(system).upload_mission(raw)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def timed_process(*argv: str) -> float:
    """A whole process, start to exit, as a user runs it; a failure is raised with what it printed. Python may
    cache its bytecode, as it does on a user's machine: with PYTHONDONTWRITEBYTECODE set (some shells and CI
    images set it) an editable install's modules are compiled from source on every start, which costs flightctl
    about 0.4 s here and the MAVSDK script, installed as a wheel with its bytecode, nothing."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=environment
    )
    out, _ = await process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {process.returncode}: {out.decode(errors='replace')[-400:]}")
    return seconds


async def process_rounds(sim: SitlInstance, rounds: int, folder: Path) -> Table:
    """``flightctl mission upload`` (with its readback and verification) against a MAVSDK-Python script that
    uploads the same 500 items and nothing else, each as a whole process on SITL's SERIAL1."""
    items = mission(PROCESS_ITEMS)
    plan_file = folder / "bench.waypoints"
    save_plan(MissionPlan().with_items(MissionType.MISSION, items), plan_file)
    raw_file = folder / "bench-mavsdk.json"
    raw_file.write_text(
        json.dumps(
            [
                [seq, i.frame, i.command, int(seq == 0), int(i.autocontinue), *i.params, i.x, i.y, i.z, 0]
                for seq, i in enumerate(items)
            ]
        )
    )
    scheme, host, port = sim.serial1_url.split(":")
    flightctl = [sys.executable, "-m", "flightctl", "mission", "upload", str(plan_file), "-c", sim.serial1_url]
    mavsdk = [sys.executable, "-c", _MAVSDK_SCRIPT, f"{'tcpout' if scheme == 'tcp' else 'udpout'}://{host}:{port}"]
    times: dict[str, list[float]] = {"flightctl upload + verify": [], "MAVSDK script, upload alone": []}
    for argv in (flightctl, [*mavsdk, str(raw_file)]):  # a first run of each, untimed: it caches the bytecode
        await timed_process(*argv)
        await asyncio.sleep(0.5)
    for round_number in range(rounds):
        order = [("flightctl upload + verify", flightctl), ("MAVSDK script, upload alone", [*mavsdk, str(raw_file)])]
        for name, argv in order if round_number % 2 == 0 else reversed(order):
            times[name].append(await timed_process(*argv))
            await asyncio.sleep(0.5)  # let SITL's TCP port settle between clients
    table = Table(title=f"{PROCESS_ITEMS} items, whole processes start to exit ({rounds} rounds, medians)")
    table.add_column("process")
    table.add_column("median s", justify="right")
    table.add_column("ratio to MAVSDK", justify="right")
    mavsdk_s = statistics.median(times["MAVSDK script, upload alone"])
    for name, runs in times.items():
        table.add_row(name, f"{statistics.median(runs):.2f}", f"{statistics.median(runs) / mavsdk_s:.2f}")
    return table


async def main(
    rounds: int,
    speedup: float,
    instance: int,
    losses: list[float],
    lossy_rounds: int,
    process_rounds_wanted: int,
    only: set[str],
) -> None:
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
    if only:
        contenders = {name: upload for name, upload in contenders.items() if name in only}
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
        lossy: dict[tuple[str, float, int], list[LossyRound]] = {
            (name, loss, size): [] for name in contenders for loss in losses for size in LOSSY_SIZES
        }
        for round_number in range(lossy_rounds if losses else 0):
            for loss in losses:
                for size in LOSSY_SIZES:
                    for name, upload in contenders.items():
                        what = f"lossy round {round_number + 1}: {name}, {size} items at {loss:.0%}"
                        console.print(what, markup=False)
                        limit_s = LOSSY_LIMIT_S if name.startswith("flightctl") else OTHERS_LIMIT_S
                        result = await lossy_round(sim, upload, mission(size), loss, round_number, limit_s)
                        if result.upload_s is not None and result.download_s is not None:
                            console.print(f"  up {result.upload_s:.2f} s, down {result.download_s:.2f} s")
                        lossy[(name, loss, size)].append(result)
            console.print(lossy_table(losses, lossy, list(contenders)))  # so far: a long run shows as it goes
        processes: Table | None = None
        if process_rounds_wanted and "MAVSDK mission_raw" in contenders:
            with tempfile.TemporaryDirectory() as folder:
                processes = await process_rounds(sim, process_rounds_wanted, Path(folder))
    if rounds:
        console.print(clean_table(results, list(contenders), sizes, speedup, rounds))
    if processes is not None:
        console.print(processes)
    if losses:
        console.print(lossy_table(losses, lossy, list(contenders)))


def clean_table(
    results: dict[tuple[str, int], list[float]], names: list[str], sizes: tuple[int, ...], speedup: float, rounds: int
) -> Table:
    contenders = names
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
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--instance", type=int, default=9)
    parser.add_argument("--loss", default="", help="comma-separated datagram loss rates, e.g. 0.1,0.3")
    parser.add_argument("--lossy-rounds", type=int, help="rounds through the lossy relay (default: --rounds)")
    parser.add_argument("--only", default="", help="comma-separated contender names (default: all)")
    parser.add_argument(
        "--process-rounds", type=int, default=5, help="whole-process rounds against a MAVSDK script (0: none)"
    )
    parser.add_argument(
        "--limit", type=float, default=OTHERS_LIMIT_S, help="seconds allowed the other contenders' lossy uploads"
    )
    arguments = parser.parse_args()
    OTHERS_LIMIT_S = arguments.limit
    losses = [float(part) for part in arguments.loss.split(",") if part.strip()]
    with contextlib.suppress(KeyboardInterrupt):
        lossy_rounds = arguments.rounds if arguments.lossy_rounds is None else arguments.lossy_rounds
        a = arguments
        only = {name.strip() for name in a.only.split(",") if name.strip()}
        asyncio.run(main(a.rounds, a.speedup, a.instance, losses, lossy_rounds, a.process_rounds, only))
