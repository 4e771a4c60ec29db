"""`flightctl sim up` in one shell, `flightctl status` in another: the engineer's first five minutes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tests.sitl.conftest import INSTANCE_BASE, require_sitl

pytestmark = pytest.mark.sitl

FLIGHTCTL = [sys.executable, "-m", "flightctl"]


def _interruptible() -> None:
    # A test run started in the background (``cmd &``) ignores SIGINT, and children inherit that: give
    # `sim up` the Ctrl-C an engineer's terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def test_sim_up_then_status_shows_a_ready_vehicle() -> None:
    """Test that `sim up` prints a URL on which `status --json` shows a connected vehicle ready to arm,
    and that Ctrl-C (SIGINT) stops it cleanly."""
    require_sitl("copter")
    instance = INSTANCE_BASE + 2
    sim = await asyncio.create_subprocess_exec(
        *FLIGHTCTL, "sim", "up", "--speedup", "5", "--first-instance", str(instance),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=_interruptible,
    )  # fmt: skip
    assert sim.stdout is not None
    output: list[str] = []
    try:
        url = None
        async with asyncio.timeout(180):
            while url is None:
                line = (await sim.stdout.readline()).decode()
                assert line, f"sim up ended early:\n{''.join(output)}"
                output.append(line)
                if "connect:" in line:
                    url = line.split("connect:")[1].split()[0]
        assert url == f"tcp:127.0.0.1:{5762 + 10 * instance}"
        status = await asyncio.create_subprocess_exec(
            *FLIGHTCTL, "status", "--connect", url, "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(status.communicate(), 60)
        assert status.returncode == 0, stderr.decode()
        record = json.loads(stdout)
        assert record["link"]["state"] == "connected"
        assert record["vehicle"]["type"] == "QUADROTOR"
        assert record["ready_to_arm"] is True
        assert record["armed"] is False
        assert record["gps_satellites"] >= 6
        assert record["ekf_ok"] is True
    finally:
        if sim.returncode is None:
            sim.send_signal(signal.SIGINT)
        await asyncio.wait_for(sim.wait(), 30)
    assert sim.returncode == 130
    stopped = await asyncio.create_subprocess_exec("pgrep", "-f", f"arducopter.*-I {instance} ")
    assert await stopped.wait() == 1, "no SITL process of this instance is left running"


async def test_mission_upload_and_download_through_the_cli(sitl_copter: object, tmp_path: object) -> None:
    """Test `flightctl mission upload` (verified) then `mission download --out x.yaml`: the file read back
    holds the same route (as ArduPilot stores it), and `mission clear` empties it."""
    from pathlib import Path

    from flightctl.missions.ardupilot import Firmware
    from flightctl.missions.formats import load_plan
    from flightctl.missions.model import MissionType
    from flightctl.missions.verify import compare_plans, expected_on_vehicle
    from sitl.instance import SitlInstance
    from tests.unit.test_cli import _write_plan

    assert isinstance(sitl_copter, SitlInstance)
    assert isinstance(tmp_path, Path)
    source, target = tmp_path / "route.yaml", tmp_path / "held.yaml"
    _write_plan(source)
    url = sitl_copter.serial2_url

    async def flightctl(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *FLIGHTCTL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, output.decode()
        return output.decode()

    assert "verified on the vehicle" in await flightctl("mission", "upload", str(source), "--connect", url)
    assert "wrote" in await flightctl(
        "mission", "download", "--connect", url, "--out", str(target), "--type", "mission"
    )
    expected = expected_on_vehicle(load_plan(source), Firmware.COPTER)
    assert compare_plans(expected, load_plan(target), [MissionType.MISSION]) == []

    # A destination that passes every check but refuses the write (procfs refuses even root): the download is
    # not lost, it is kept elsewhere and the error says where.
    process = await asyncio.create_subprocess_exec(
        *FLIGHTCTL, "mission", "download", "--connect", url, "--out", "/proc/flightctl-held.yaml",
        "--type", "mission", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    output = (await asyncio.wait_for(process.communicate(), 120))[0].decode()
    assert process.returncode == 1, output
    kept = re.search(r"the download was kept in (\S+\.yaml)", " ".join(output.split()))
    assert kept is not None, output
    assert compare_plans(expected, load_plan(Path(kept.group(1))), [MissionType.MISSION]) == []
    assert "cleared mission" in await flightctl("mission", "clear", "--connect", url)


def report_at(path: str) -> str:
    """The report's page, read (from a test: its path was printed by the command)."""
    return Path(path).read_text()


async def test_sim_deliver_refuses_an_impossible_order(tmp_path: Path) -> None:
    """Test the README's main job on an order beyond the battery: SITL starts at the depot, the go/no-go
    refuses with the energy numbers, exit code 2, SITL stopped; the run's journal and its report (saying it
    never took off) are kept in a folder of their own under flightctl-sim/, after SITL's is gone."""
    require_sitl("copter")
    instance = INSTANCE_BASE + 6
    process = await asyncio.create_subprocess_exec(
        *FLIGHTCTL, "sim", "deliver", "kirkwall-4500m-heavy", "--speedup", "5", "--instance", str(instance), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 2, stderr.decode()
    record = json.loads(stdout.decode().strip().splitlines()[-1])
    assert record["outcome"] == "no-go"
    assert record["final_state"] == "FAILED"
    assert "NO-GO energy" in record["nogo"][0]
    assert Path(record["report"]).parent.parent == tmp_path / "flightctl-sim", record
    assert "it never took off" in report_at(record["report"]), "a NO-GO has its report too"
    stopped = await asyncio.create_subprocess_exec("pgrep", "-f", f"arducopter.*-I {instance} ")
    assert await stopped.wait() == 1


async def test_sim_deliver_flies_with_remote_id_enforced(tmp_path: Path) -> None:
    """Test the README's main job as a UK aircraft flies it: SITL enforces Remote ID (DID_OPTIONS), the harness
    is the companion sending the operator's part, the go/no-go's Remote ID check passes, and the parcel is
    delivered."""
    from flightctl.delivery.journal import Journal

    require_sitl("copter")
    journal = tmp_path / "journal.sqlite"
    process = await asyncio.create_subprocess_exec(
        *FLIGHTCTL, "sim", "deliver", "kirkwall-1500m-place", "--speedup", "10", "--instance", str(INSTANCE_BASE + 6),
        "--journal", str(journal), "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 600)
    assert process.returncode == 0, stderr.decode()[-3000:]
    record = json.loads(stdout.decode().strip().splitlines()[-1])
    assert record["outcome"] == "delivered"
    assert Path(record["report"]) == journal.parent / "KWL-0001-report.html", "sim deliver prints the report's path"
    assert "delivered (LANDED)" in report_at(record["report"])
    async with await Journal.open(journal, reader=True) as opened:
        checks = [e for e in await opened.events("KWL-0001") if e.kind == "check" and e.name == "remote id"]
    assert len(checks) == 1, "the aircraft enforces Remote ID, so the go/no-go checks it"
    assert checks[0].detail["ok"], checks[0].detail
    assert "operator GBR87astrdge12k8" in checks[0].detail["line"]
