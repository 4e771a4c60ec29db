"""The command line starts quickly: what a bare start-up imports, checked by name, never by a stopwatch.

Every command pays for what ``flightctl`` imports before it runs, and pymavlink's dialect, shapely, numpy,
pyproj, starlette, paho and the rest took about 0.6 s of a 0.8 s ``--help``. Each command imports them when
it runs instead.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Imported by a bare start-up, they cost tenths of a second between them (measured with python -X importtime).
HEAVY = (
    "pymavlink",
    "shapely",
    "numpy",
    "pyproj",
    "geographiclib",
    "networkx",
    "starlette",
    "uvicorn",
    "asyncpg",
    "paho",
    "sqlite3",
    "yaml",
    "flightctl.vehicle",
    "flightctl.link",
    "flightctl.delivery",
    "flightctl.missions",
    "flightctl.mqtt",
    "flightctl.ground",
    "flightctl.daemon",
    "matplotlib",
    "flightctl.report",
)

PROBE = """
import sys
sys.argv = ["flightctl", *sys.argv[1:]]
try:
    from flightctl.entry import main
    main()
except SystemExit as done:
    print("exit", done.code)
print("\\n".join(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Usage" in result.stdout, result.stdout + result.stderr
    return set(result.stderr.split())


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("status", "--help"),
        ("deliver", "--help"),
        ("mission", "upload", "--help"),
        ("relay", "--help"),
        ("run", "--help"),
        ("telemetry", "--help"),
    ],
    ids=" ".join,
)
def test_help_imports_nothing_heavy(args: tuple[str, ...]) -> None:
    """Test that asking a command for its help loads none of the heavy libraries or flightctl's vehicle, delivery,
    mission, MQTT or ground packages: they come with the command's work, not with its start."""
    modules = imported_by(*args)
    heavy = sorted(name for name in modules if name.startswith(HEAVY))
    assert heavy == [], f"flightctl {' '.join(args)} imported {heavy[:10]}"
    assert "flightctl.cli" in modules, "the probe ran the real command line"


def test_every_command_has_its_imports_made_while_ctrl_c_is_held() -> None:
    """Test that each top-level command or group names what it imports when it runs (``entry.NEEDS``), so those
    imports happen while SIGINT is held: a Ctrl-C during one of them is then a quiet stop, never a traceback or
    a keypress lost in a library's bare ``except:``. A new command without an entry fails here."""
    import typer.main

    from flightctl.cli import app
    from flightctl.entry import NEEDS, _needed

    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert commands == set(NEEDS)
    for modules in NEEDS.values():
        for module in modules:
            __import__(module)  # each one exists
    assert _needed(["status", "--connect", "udpin:0.0.0.0:14550"]) == NEEDS["status"]
    assert _needed(["-v", "mission", "upload", "x.plan"]) == NEEDS["mission"]
    assert _needed(["status", "--help"]) == ()


def test_a_ctrl_c_typer_would_swallow_still_says_stopped() -> None:
    """Test a Ctrl-C that lands after start-up but before a command's own handling (typer turns it into a silent
    exit 130): the entry point says "stopped" as for every other Ctrl-C. Deterministic: the command raises the
    KeyboardInterrupt itself, as the signal would."""
    code = (
        "import sys, typer, flightctl.cli\n"
        "app = typer.Typer()\n"
        "@app.command()\n"
        "def interrupted() -> None:\n"
        "    raise KeyboardInterrupt\n"
        "flightctl.cli.app = app\n"
        "sys.argv = ['flightctl']\n"
        "from flightctl.entry import main\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 130
    assert done.stderr.strip() == "stopped"


# What `flightctl mission upload plan.waypoints` needs is the link, the dialect and the WPL reader. These came
# with it before (0.35 s of its start): numpy through pymavlink's mavutil (the mode tables) and mavftp (the error
# names), shapely through the .plan format, PyYAML and our pydantic models through the YAML format, the
# telemetry config and Remote ID's settings. (Typer itself now imports pydantic to read a command's options.)
NOT_FOR_A_WPL_UPLOAD = (
    "numpy",
    "shapely",
    "yaml",
    "pymavlink.mavutil",
    "pymavlink.mavftp",
    "flightctl.config",
    "flightctl.vehicle.remote_id_settings",
    "flightctl.missions.formats.yaml_plan",
    "flightctl.missions.formats.qgc",
)


def test_a_waypoints_upload_imports_only_what_it_uses(tmp_path: Path) -> None:
    """Test that uploading a .waypoints file, as far as linking to the vehicle (a closed port here, so the
    command fails there), imports the vehicle, the dialect and the WPL reader, and none of the libraries only other
    formats, flight modes or Remote ID need: a whole-process upload's time is mostly its imports otherwise."""
    plan = tmp_path / "plan.waypoints"
    plan.write_text("QGC WPL 110\n0\t1\t0\t16\t0\t0\t0\t0\t58.98\t-2.96\t10\t1\n")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    argv = ["mission", "upload", str(plan), "--connect", f"tcp:127.0.0.1:{port}", "--timeout", "1"]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60, check=False
    )
    modules = set(result.stderr.split())
    assert "exit 1" in result.stdout, result.stdout + result.stderr[-2000:]  # refused at the link, as arranged
    for needed in ("flightctl.vehicle.vehicle", "flightctl.missions.formats.wpl", "flightctl.dialect"):
        assert needed in modules, f"the probe did not get as far as {needed}"
    unused = sorted(
        name for name in modules if any(name == x or name.startswith(f"{x}.") for x in NOT_FOR_A_WPL_UPLOAD)
    )
    assert unused == [], f"a .waypoints upload imported {unused[:10]}"
