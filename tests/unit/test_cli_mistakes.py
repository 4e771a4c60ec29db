"""Mistakes an operator makes on the command line, each through the real command: exit 1 before anything is sent
or written, one line saying what is wrong, no traceback, no secret echoed, nothing changed on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def flightctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flightctl", *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


BROKER = ["--broker", "mqtts://127.0.0.1:9", "--drone", "orkney-07"]
DISPATCH = ["dispatch", "kirkwall-1500m-place", "--customer", "C-1", *BROKER]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["order", "send", "kirkwall-1500m-place", "--broker", "mqtt://127.0.0.1:9", "--drone", "orkney-07",
          "--ca-file", "ca.pem"], "a CA file was given for a connection without TLS"),
        (["order", "send", "kirkwall-1500m-place", *BROKER, "--depot-wind", "5@"], "nothing after '@'"),
        (["order", "send", "big.yaml", *BROKER], "over the limit of 16384"),
        ([*DISPATCH, "--registry", "postgresq://flightctl:hunter2@db/flightctl"], "postgresq:// is not a registry"),
        ([*DISPATCH, "--registry", "mysql://flightctl:hunter2@db/flightctl"], "mysql:// is not a registry"),
        ([*DISPATCH, "--registry", "postgresql://flightctl:hunter2@db/flightctl"], "the URL carries a password"),
        (["sim", "fleet", "--demand", "demand.yaml"], "no order 'kirkwall-9km'"),
        (["sim", "fleet", "--aircraft", "4", "--first-instance", "48"], "SITL -I stops at 50"),
        (["sim", "fleet", "--aircraft", "2", "--vtol", "3"], "--vtol 3 of --aircraft 2: no more VTOLs than aircraft"),
    ],
    ids=["ca-without-tls", "wind-empty-time", "order-too-big", "registry-typo", "registry-mysql", "registry-password",
         "fleet-demand-unknown-order", "fleet-instances", "fleet-vtol-over-aircraft"],
)  # fmt: skip
def test_a_mistake_is_one_line_and_changes_nothing(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    (tmp_path / "big.yaml").write_text("order_id: KWL-BIG\n" + "# padding\n" * 2_000)
    (tmp_path / "demand.yaml").write_text(
        "orders_per_hour: 10\ndestinations: [{order: kirkwall-9km, weight: 1}]\nparcel: {min_kg: 1, mode_kg: 1, max_kg: 2}\n"
    )
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = flightctl(*args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert says in lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "nothing was written"


def test_a_saved_password_file_is_the_owners_alone_even_when_it_was_there(tmp_path: Path) -> None:
    saved = tmp_path / "orkney-07.password"
    saved.write_text("old\n")
    os.chmod(saved, 0o644)
    result = flightctl(
        "broker", "add-drone", "orkney-07", "--dir", str(tmp_path / "accounts"), "--save-password", str(saved),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert saved.stat().st_mode & 0o777 == 0o600
    assert saved.read_text().strip() != "old"
