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


def modules_in(package: str) -> list[Path]:
    return sorted((ROOT / "flightctl" / package).glob("*.py"))


def flightctl_imports(path: Path, *packages: str) -> set[str]:
    """The imports of ``path`` that fall in any of ``packages`` (``flightctl.x``, or a library's top name)."""
    return {
        name for name in imports_of(path) for package in packages if name == package or name.startswith(f"{package}.")
    }


@pytest.mark.parametrize("path", modules_in("delivery"), ids=lambda p: p.name)
def test_flight_logic_never_imports_the_mqtt_side(path: Path) -> None:
    """Test that nothing in delivery/ (the sequencer, the decisions, the journal) imports the MQTT contract, the
    daemon or an MQTT library: a dead, slow or hostile broker cannot reach the flight logic."""
    forbidden = flightctl_imports(path, "flightctl.mqtt", "flightctl.daemon", "paho")
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", modules_in("mqtt"), ids=lambda p: p.name)
def test_the_mqtt_contract_belongs_to_neither_side(path: Path) -> None:
    """Test that mqtt/ (the contract and the client both sides use) imports neither the daemon nor the ground."""
    forbidden = flightctl_imports(path, "flightctl.daemon", "flightctl.ground", "flightctl.cli")
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", modules_in("ground"), ids=lambda p: p.name)
def test_the_ground_never_imports_the_onboard_daemon(path: Path) -> None:
    """Test that ground/ talks to aircraft only through the MQTT contract, never the daemon's own code."""
    forbidden = flightctl_imports(path, "flightctl.daemon", "flightctl.cli")
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"


@pytest.mark.parametrize(
    "path", [p for p in sorted((ROOT / "flightctl").rglob("*.py")) if p.parent.name not in ("ground", "cli")],
    ids=lambda p: str(p.relative_to(ROOT)),
)  # fmt: skip
def test_onboard_code_never_imports_the_ground(path: Path) -> None:
    forbidden = flightctl_imports(path, "flightctl.ground")
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"


def test_the_delivery_worker_knows_nothing_of_mqtt() -> None:
    """Test that the daemon's delivery side answers through the journal only, never through a broker client."""
    names = flightctl_imports(
        ROOT / "flightctl" / "daemon" / "worker.py",
        "paho",
        "flightctl.mqtt.broker",
        "flightctl.mqtt.client",
        "flightctl.daemon.mqtt_link",
    )
    assert not names


@pytest.mark.parametrize("path", sorted((ROOT / "flightctl").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_onboard_code_never_imports_the_harness(path: Path) -> None:
    """Test that the aircraft's code never imports sitl/ (only the CLI's `sim` commands may, lazily)."""
    if path.parent.name == "cli":
        return
    assert not {n for n in imports_of(path) if n == "sitl" or n.startswith("sitl.")}


def test_flightctl_uses_no_private_member_of_the_mqtt_library() -> None:
    """Test the issue's check: no private member of paho's client or message (a leading underscore) is touched in
    flightctl, other than names our own classes define for themselves. A private member can change in any
    release; the publish path rests on paho's public callbacks and calls only."""
    import re

    import paho.mqtt.client as paho

    theirs = {name for kind in (paho.Client, paho.MQTTMessage) for name in dir(kind) if re.match(r"^_[a-z]", name)}
    theirs |= {name for name in vars(paho.Client(paho.CallbackAPIVersion.VERSION2)) if re.match(r"^_[a-z]", name)}
    sources = {path: path.read_text() for path in sorted((ROOT / "flightctl").rglob("*.py"))}
    ours = {name for text in sources.values() for name in re.findall(r"self\.(_[a-z]\w*)\s*[:=,)]", text)}
    ours |= {name for text in sources.values() for name in re.findall(r"def (_[a-z]\w*)\(", text)}
    private = theirs - ours
    assert {"_sock", "_client_id", "_out_packet"} <= private, "the check must know paho's private names"
    for path, text in sources.items():
        used = {name for name in re.findall(r"\.(_[a-z]\w*)\b", text) if name in private}
        assert not used, f"{path.relative_to(ROOT)} touches paho's private {sorted(used)}"
