"""A plain (non-editable) install of flightctl carries its own configs and works from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """flightctl built and installed as a wheel would be (``pip install .``, not ``-e``) into a folder of its own;
    its dependencies come from this venv."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return target


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "200"}
    code = "import sys, flightctl; sys.argv[0] = 'flightctl'; print(flightctl.__file__, file=sys.stderr); "
    code += "from flightctl.entry import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_installed_package_holds_the_shipped_configs(installed: Path) -> None:
    configs = installed / "flightctl" / "configs"
    for name in (
        "sites/kirkwall.yaml",
        "profiles/sitl-quad.yaml",
        "orders/kirkwall-1500m-place.yaml",
        "params/copter-delivery.parm",
        "telemetry.toml",
        "mosquitto/flightctl.conf",
        "tracking/en-GB.toml",
    ):
        assert (configs / name).is_file(), name
    for name in ("track.js", "track.css"):  # the tracking page's own script and style sheet
        assert (installed / "flightctl" / "ground" / "static" / name).is_file(), name


def test_deliver_from_a_plain_install_elsewhere_fails_on_the_connection_not_on_a_missing_file(
    installed: Path, tmp_path: Path
) -> None:
    """Test the issue's check: run from a directory outside the checkout, a delivery finds its order, site,
    profile and parameters in the installed package and fails only because nothing listens on port 1."""
    result = run_installed(
        installed, tmp_path, "deliver", "kirkwall-1500m-place", "--connect", "tcp:127.0.0.1:1", "--timeout", "2"
    )
    assert str(installed) in result.stderr.splitlines()[0], "the installed copy ran, not the checkout"
    assert result.returncode != 0
    assert "127.0.0.1:1" in result.stderr + result.stdout
    assert "file not found" not in result.stderr + result.stdout
