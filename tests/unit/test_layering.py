"""The dependency rules of shared/ARCHITECTURE.md that keep flight logic safe, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "flightctl" / "delivery").glob("*.py")), ids=lambda p: p.name)
def test_flight_logic_never_imports_the_mqtt_side(path: Path) -> None:
    """Test that nothing in delivery/ (the sequencer, the decisions, the journal) imports flightctl.status or an
    MQTT library: a dead, slow or hostile broker cannot reach the flight logic."""
    forbidden = {name for name in imports_of(path) if name.startswith(("flightctl.status", "aiomqtt", "paho"))}
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"


def test_the_delivery_worker_knows_nothing_of_mqtt() -> None:
    """Test that the daemon's delivery side answers through the journal only, never through a broker client."""
    names = imports_of(ROOT / "flightctl" / "status" / "worker.py")
    assert not {
        n for n in names if n.startswith(("aiomqtt", "paho", "flightctl.status.broker", "flightctl.status.mqtt"))
    }


@pytest.mark.parametrize("path", sorted((ROOT / "flightctl").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_onboard_code_never_imports_the_harness(path: Path) -> None:
    """Test that the aircraft's code never imports sitl/ (only the CLI's `sim` commands may, lazily)."""
    if path.parent.name == "cli":
        return
    assert not {n for n in imports_of(path) if n == "sitl" or n.startswith("sitl.")}
