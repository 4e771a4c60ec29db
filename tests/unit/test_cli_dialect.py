"""One CLI dialect: every command's --help, walked, and the shared options held to one spelling and one meaning."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from flightctl.cli import app

# Commands that run until stopped (a service, a session) report no result of their own: no --json.
RUN_UNTIL_STOPPED = {"run", "relay", "sim up"}
# The one option for each shared concept, and a word its help must hold wherever it appears (so the same name
# never means two things, as --timeout once did).
SHARED = {
    "--connect": "tcp:",
    "--broker": "mqtt",
    "--signing-key": "key",
    "--journal": "journal",
    "--depot-wind": "depot's measured mean wind",
    "--airstrip-wind": "airstrip's measured surface wind",
    "--aloft-wind": "forecast wind aloft",
    "--timeout": "link",
    "--answer-timeout": "answer",
    "--json": "JSON",
    "--remote-id": "Remote ID settings",
}
# Every option that names one of these concepts, whatever the command.
ALLOWED = {
    "wind": {"--depot-wind", "--sim-wind", "--airstrip-wind", "--aloft-wind"},
    "timeout": {"--timeout", "--answer-timeout", "--link-lost-timeout"},
    "key": {"--signing-key"},
    "journal": {"--journal"},
    "broker": {"--broker"},
    "connect": {"--connect"},
}


def commands() -> Iterator[tuple[str, Any]]:
    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command

    yield from walk(typer.main.get_command(app), [])


COMMANDS = dict(commands())


def options(command: Any) -> dict[str, str]:
    return {
        name: param.help or ""
        for param in command.params
        if getattr(param, "param_type_name", "") == "option"
        for name in param.opts
        if name.startswith("--")
    }


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_shared_options_are_spelled_one_way_and_mean_one_thing(name: str) -> None:
    for option, help_text in options(COMMANDS[name]).items():
        for concept, allowed in ALLOWED.items():
            if concept in option:
                assert option in allowed, f"{name}: {option} (this concept is spelled {sorted(allowed)})"
        if option in SHARED:
            assert SHARED[option].lower() in help_text.lower(), f"{name}: {option} says {help_text!r}"


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - RUN_UNTIL_STOPPED))
def test_every_command_that_reports_a_result_takes_json(name: str) -> None:
    assert "--json" in options(COMMANDS[name]), f"{name} has no --json"


def test_the_walk_found_every_command() -> None:
    """Test the walk itself: a check over no commands would pass for nothing."""
    assert {"deliver", "status", "telemetry", "mission upload", "signing install", "broker add-drone"} <= set(COMMANDS)
    assert len(COMMANDS) >= 22


def json_of(args: list[str]) -> dict[str, Any]:
    """The one JSON object a command prints on stdout with --json (anything else there is a broken pipe line)."""
    import json

    result = CliRunner().invoke(app, [*args, "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    [line] = result.stdout.strip().splitlines()
    record: dict[str, Any] = json.loads(line)
    return record


def test_json_results_are_one_object_a_machine_can_read(tmp_path: Path) -> None:
    """Test --json on commands that need no vehicle: a mission file, a new signing key and a broker account each
    report one JSON object, and nothing else, on stdout."""
    from tests.unit.test_cli import _write_plan

    plan = tmp_path / "route.yaml"
    _write_plan(plan)
    shown = json_of(["mission", "show", str(plan)])
    assert shown["mission_items"] >= 3
    assert len(shown["content_hash"]) == 64
    key = tmp_path / "key"
    assert json_of(["signing", "new-key", str(key)]) == {"signing_key": str(key)}
    assert len(key.read_text().strip()) == 64
    account = json_of(["broker", "add-drone", "orkney-07", "--dir", str(tmp_path / "accounts")])
    assert (account["account"], account["kind"]) == ("orkney-07", "drone")
    assert len(account["password"]) >= 16
