"""The command line's behaviour on bad input: one clear line, exit code 1, nothing sent."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from flightctl.cli import app

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
