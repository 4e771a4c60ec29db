"""The command line's behaviour on bad input: one clear line, exit code 1, nothing sent."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from rich.logging import RichHandler
from typer.testing import CliRunner

from flightctl.cli import app, log_handler

runner = CliRunner()


def test_unknown_url_scheme_is_a_clear_error() -> None:
    """Test that a malformed --connect URL gives one error line naming the accepted forms."""
    result = runner.invoke(app, ["status", "--connect", "bluetooth:xx"])
    assert result.exit_code == 1
    assert "unknown scheme 'bluetooth'" in result.output
    assert "udpin:HOST:PORT" in result.output


def test_tcp_with_nobody_listening_fails_within_the_timeout() -> None:
    """Test that a TCP URL nobody listens on ends with an error saying so, not a hang."""
    result = runner.invoke(app, ["status", "--connect", "tcp:127.0.0.1:9", "--timeout", "1"])
    assert result.exit_code == 1
    assert "could not connect" in result.output


def test_udp_with_no_vehicle_times_out_naming_the_wait() -> None:
    """Test that a UDP port where no vehicle speaks ends with a heartbeat timeout error."""
    result = runner.invoke(app, ["status", "--connect", "udpin:127.0.0.1:14999", "--timeout", "0.5"])
    assert result.exit_code == 1
    assert "no autopilot heartbeat within 0.5 s" in result.output


def test_sim_up_with_unknown_home_names_the_known_ones() -> None:
    """Test that `sim up --home` with a name that is not in configs/locations.toml lists the known names."""
    result = runner.invoke(app, ["sim", "up", "--home", "atlantis"])
    assert result.exit_code == 1
    assert "unknown home 'atlantis'" in result.output
    assert "kirkwall" in result.output


def test_console_script_is_installed() -> None:
    """Test that the `flightctl` entry point runs and lists its commands."""
    result = subprocess.run(
        [sys.executable, "-m", "flightctl", "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "status" in result.stdout
    assert "sim" in result.stdout


def _write_plan(path: Path) -> None:
    from flightctl.geo import AltFrame, Location, offset
    from flightctl.missions.formats import save_plan
    from flightctl.missions.model import MissionItem, MissionPlan

    home = Location(58.9582, -2.9609, 20.0, AltFrame.ABSOLUTE)
    first = offset(home, bearing_deg=90, distance_m=300).with_alt(30, AltFrame.RELATIVE)
    second = offset(first, bearing_deg=0, distance_m=400)
    save_plan(
        MissionPlan(
            [MissionItem.home(home), MissionItem.takeoff(30), MissionItem.waypoint(first), MissionItem.waypoint(second)]
        ),
        path,
    )


def test_mission_show_prints_legs_and_hash(tmp_path: Path) -> None:
    """Test that `mission show` lists the items with leg lengths (300 m then 400 m) and the content hash."""
    path = tmp_path / "route.yaml"
    _write_plan(path)
    result = runner.invoke(app, ["mission", "show", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "NAV_WAYPOINT" in result.output
    assert " 300 " in result.output
    assert " 400 " in result.output
    assert " 700 " in result.output, "running total"
    assert "content hash:" in result.output


def test_mission_upload_of_a_bad_file_sends_nothing(tmp_path: Path) -> None:
    """Test that a malformed file stops `mission upload` before it connects, with file, place and reason."""
    path = tmp_path / "broken.waypoints"
    path.write_text("QGC WPL 110\n0\t1\t0\t16\t0\n")
    result = runner.invoke(
        app, ["mission", "upload", str(path), "--connect", "tcp:127.0.0.1:9"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1
    assert "line 2: expected 12 columns, found 5" in result.output
    assert "could not connect" not in result.output


def test_mission_download_refuses_a_format_that_would_lose_data() -> None:
    """Test that downloading everything into a .waypoints file is refused before connecting."""
    result = runner.invoke(app, ["mission", "download", "--connect", "tcp:127.0.0.1:9", "--out", "all.waypoints"])
    assert result.exit_code == 1
    assert "holds only the mission" in result.output


def test_deliver_with_a_bad_order_stops_before_connecting(tmp_path: Path) -> None:
    """Test that `deliver` with an order that fails validation reports it and never connects."""
    path = tmp_path / "order.yaml"
    path.write_text("order_id: X1\ndrop: {lat: 58.95, lon: -2.93}\nmethod: winch\nparcel_kg: 1\n")
    result = runner.invoke(app, ["deliver", str(path), "--connect", "tcp:127.0.0.1:9"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "drop_zone: Field required" in result.output
    assert "could not connect" not in result.output


def test_deliver_to_an_unplannable_drop_stops_before_connecting(tmp_path: Path) -> None:
    """Test that an order whose drop point is in a no-fly zone is refused at planning, before connecting."""
    path = tmp_path / "order.yaml"
    path.write_text(
        "order_id: X2\ndrop: {lat: 58.9632, lon: -2.9667}\ndrop_zone: {radius_m: 5}\nmethod: payload_place\nparcel_kg: 1\n"
    )
    result = runner.invoke(app, ["deliver", str(path), "--connect", "tcp:127.0.0.1:9"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "order.yaml: the drop point is inside the no-fly zone 'school grounds'" in result.output


@pytest.mark.parametrize("value", ["nan", "-5", "0", "inf"])
@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["deliver", "kirkwall-1500m-place"],
        ["mission", "download", "--out", "x.yaml"],
        ["mission", "clear"],
        ["signing", "remove"],
    ],
)
def test_every_connecting_command_validates_its_timeout(command: list[str], value: str) -> None:
    """Test that a timeout that is not a positive number of seconds is refused before anything is tried."""
    result = runner.invoke(app, [*command, "--connect", "tcp:127.0.0.1:9", f"--timeout={value}"])
    assert result.exit_code == 2
    words = " ".join(result.output.replace("│", " ").split())
    assert "is not a number of seconds between 0 and 3600" in words


def test_the_timeout_is_honoured_for_the_link_itself() -> None:
    """Test that a TCP link that cannot open gives up after --timeout, and says the time it was given."""
    result = runner.invoke(app, ["mission", "clear", "--connect", "tcp:127.0.0.1:9", "--timeout", "1.5"])
    assert result.exit_code == 1
    assert "could not connect within 1.5 s" in result.output


def test_sim_up_with_a_home_off_the_earth_is_one_line() -> None:
    """Test that `sim up --home 91,0,0` says what is wrong in one line, with no validation dump or URL."""
    result = runner.invoke(app, ["sim", "up", "--home", "91,0,0"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert result.output.strip() == "error: home '91,0,0': lat_deg: Input should be less than or equal to 90"


def _as_a_terminal_would_start_it() -> None:
    """SIGINT delivered and handled: a background shell or a test runner's thread may ignore or block it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


# A person's Ctrl-C, after the interpreter itself started: in the imports, the event loop's making, the connect.
@pytest.mark.parametrize("delay_s", [0.3, 0.4, 0.5, 0.8, 1.5])
def test_ctrl_c_while_starting_is_a_quiet_stop(delay_s: float) -> None:
    """Test that Ctrl-C at any moment of start-up (the import, the connect) ends with 'stopped' and exit
    code 130, never a traceback."""
    import signal
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "flightctl", "status", "--connect", "udpin:127.0.0.1:14998", "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_a_terminal_would_start_it,
    )
    try:
        time.sleep(delay_s)  # the moment of the keypress, not a wait for a result
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().endswith("stopped")


SERVICE = """
import asyncio, sys
from flightctl.cli.common import run_service

async def stubborn() -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # what a library that swallows its cancellation does

async def main() -> None:
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(asyncio.sleep(3600), name="well-behaved")
        if sys.argv[1] == "stubborn":
            tasks.create_task(stubborn(), name="telemetry")
        await asyncio.sleep(0)
        print("serving", flush=True)

run_service(main, stop_grace_s=1.0)
"""


@pytest.mark.parametrize(("kind", "code"), [("clean", 0), ("stubborn", 1)])
def test_a_service_stops_on_sigterm_even_when_a_task_ignores_it(kind: str, code: int) -> None:
    """SIGTERM stops a service cleanly; one whose task swallows the cancellation is named, with its stack, and
    the process still exits (1) soon after the grace period, instead of hanging until systemd kills it."""
    import signal

    process = subprocess.Popen(
        [sys.executable, "-c", SERVICE, kind], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "serving"
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=20)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == code, err
    if kind == "clean":
        assert err.strip() == "stopped"
    else:
        assert "still running 1 s after the stop" in err
        assert "telemetry" in err
        assert "in stubborn" in err  # its stack says where it is stuck
        assert "well-behaved" not in err.split("exiting")[0]


def test_logs_off_a_terminal_are_one_plain_line_per_record() -> None:
    """Test that where stderr is no terminal (systemd's journal, a daemon's log file) a record is one line with
    its time, level and logger, however long: not Rich's table, wrapped to a terminal's width."""
    handler = log_handler()
    assert not isinstance(handler, RichHandler)
    message = "the event loop was held for 38 ms, in: " + " <- ".join(
        f"flightctl/m{n}.py:{n} in f{n}" for n in range(9)
    )
    record = logging.LogRecord("flightctl.loop_stalls", logging.WARNING, __file__, 1, message, None, None)
    (line,) = handler.format(record).splitlines()
    assert line.endswith(f" WARNING flightctl.loop_stalls: {message}"), line
