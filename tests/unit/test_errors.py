"""Errors grouped by what the caller does next: every error flightctl raises is in one group, and callers catch groups."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import flightctl
from flightctl.delivery.journal import JournalError
from flightctl.delivery.machine import IllegalTransition
from flightctl.errors import (
    ConfigError,
    FlightctlError,
    LinkError,
    MustStop,
    Refused,
    Unavailable,
    VehicleRejected,
    VehicleTimeout,
)
from flightctl.mqtt.broker import BrokerRefused, BrokerUnavailable
from flightctl.vehicle.mission_transfer import MissionRejected, MissionTimeout

ROOT = Path(__file__).resolve().parents[2]
GROUPS = (Unavailable, Refused, ConfigError, MustStop)


def every_error() -> list[type[FlightctlError]]:
    for module in pkgutil.walk_packages(flightctl.__path__, "flightctl."):
        if not module.name.endswith("__main__"):  # running it would run the CLI
            importlib.import_module(module.name)
    found: list[type[FlightctlError]] = []
    pending: list[type[FlightctlError]] = [FlightctlError]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found and sub.__module__.startswith("flightctl."):  # not the harness's own
                found.append(sub)
                pending.append(sub)
    return found


ERRORS = every_error()


@pytest.mark.parametrize("error", [e for e in ERRORS if e not in GROUPS], ids=lambda e: e.__name__)
def test_every_error_is_in_exactly_one_group_or_is_the_base_of_a_family(error: type[FlightctlError]) -> None:
    """Test that a caller can tell what to do next from the error's group. A family's base (MissionError, whose
    NACK is Refused and whose silence is Unavailable) is in none, and each of its kinds is in one."""
    groups = [group.__name__ for group in GROUPS if issubclass(error, group)]
    if groups:
        assert len(groups) == 1, f"{error.__name__} is in {groups}"
    else:
        kinds = [sub for sub in ERRORS if issubclass(sub, error) and sub is not error]
        assert kinds, f"{error.__name__} is in no group and has no kinds that are"
        assert all(any(issubclass(kind, group) for group in GROUPS) for kind in kinds)


@pytest.mark.parametrize(
    ("error", "group"),
    [
        (LinkError, Unavailable),
        (VehicleTimeout, Unavailable),
        (MissionTimeout, Unavailable),
        (BrokerUnavailable, Unavailable),
        (VehicleRejected, Refused),
        (MissionRejected, Refused),
        (BrokerRefused, Refused),
        (JournalError, MustStop),
        (IllegalTransition, MustStop),
    ],
)
def test_related_errors_share_the_group_a_caller_handles(error: type[FlightctlError], group: type) -> None:
    """Test the cases the issue named: a mission NACK is a refusal like a command's, and a broker outage is a
    thing to wait out like a lost link."""
    assert issubclass(error, group)


def test_code_that_must_stop_never_swallows_a_must_stop() -> None:
    """Test that every ``except FlightctlError`` in the flight logic and the daemon is preceded, in the same try,
    by ``except MustStop: raise`` (or catches only a group): a failed journal or an illegal transition is never
    turned into a note and tried again."""
    checked = 0
    for folder in ("delivery", "daemon"):
        for path in (ROOT / "flightctl" / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Try):
                    continue
                names = [ast.unparse(handler.type) if handler.type else "" for handler in node.handlers]
                if "FlightctlError" not in names:
                    continue
                checked += 1
                before = names[: names.index("FlightctlError")]
                body = ast.unparse(node.body)
                may_stop = "record" in body or "journal" in body or "enter" in body or "sequencer" in body
                if may_stop:
                    assert "MustStop" in before, f"{path.name}:{node.lineno} catches FlightctlError before MustStop"
    assert checked >= 5
