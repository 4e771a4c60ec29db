"""Mistaken configs for the services, each through the real command (`flightctl run`, `flightctl relay`): exit 1
before anything starts (no broker, autopilot or database is dialled: none is there), one line naming the key and
what is wrong, no traceback, no secret echoed, no file changed. And 10,000 mutated relay configs: each loads or is
refused with ConfigError, never anything else."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from flightctl.errors import ConfigError
from flightctl.ground.relay_settings import RelayConfig, load_relay_config
from sitl.daemon import write_daemon_config
from tests.unit.test_fuzz_inputs import CASES, inputs

NOT_PEM = "this is not a certificate\n"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused_in_one_line(args: list[str], says: str, *, unchanged: Path) -> None:
    """`flightctl ARGS` exits 1 with one line saying ``says``, no secret, and every file under ``unchanged`` as it was
    (no registry, journal or lock made)."""
    before = snapshot(unchanged)
    result = subprocess.run(
        [sys.executable, "-m", "flightctl", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert says in lines[0]
    assert "hunter2" not in result.stderr
    assert snapshot(unchanged) == before


def run_config(folder: Path, **changes: str) -> Path:
    config = write_daemon_config(
        folder, drone_id="orkney-07", autopilot_url="tcp:127.0.0.1:9", broker_url="mqtts://127.0.0.1:9",
        username="orkney-07", password="hunter2", ca_file=folder / "ca.pem",
    )  # fmt: skip
    text = config.read_text()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    return config


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({'url = "tcp:127.0.0.1:9"': 'url = "tcpp:127.0.0.1:9"'}, "autopilot.url: 'tcpp:127.0.0.1:9': unknown scheme"),
        ({'url = "mqtts://127.0.0.1:9"': 'url = "mqtts://[::1:8883"'}, "Invalid IPv6 URL"),
        ({'url = "mqtts://127.0.0.1:9"': 'url = "mqtt://127.0.0.1:9"'}, "without TLS"),
        ({"ca.pem": "not-pem.pem"}, "not PEM certificates"),
        ({'journal = "journal.sqlite"': 'journal = "a-file/journal.sqlite"'}, "a-file is a file, not a folder"),
        ({'password_file = "mqtt-password"': 'password_file = "nowhere"'}, "broker.password_file"),
    ],
    ids=["autopilot-scheme", "broker-ipv6-typo", "ca-without-tls", "ca-not-pem", "journal-under-a-file", "no-password"],
)  # fmt: skip
def test_a_mistaken_daemon_config_is_one_line_before_anything_starts(
    tmp_path: Path, changes: dict[str, str], says: str
) -> None:
    folder = tmp_path / "daemon"
    folder.mkdir()
    trustme.CA().cert_pem.write_to_path(str(folder / "ca.pem"))
    (folder / "not-pem.pem").write_text(NOT_PEM)
    (folder / "a-file").write_text("a file, not a folder\n")
    config = run_config(folder, **changes)
    refused_in_one_line(["run", "--config", str(config)], says, unchanged=folder)


def test_a_mistyped_remote_id_operator_id_stops_the_daemon_at_start_up(tmp_path: Path) -> None:
    """Test that `flightctl run` with a Remote ID operator ID whose check character does not match exits at
    once with one line naming the field and the mistake, and without repeating the number (its secret part)."""
    folder = tmp_path / "daemon"
    folder.mkdir()
    trustme.CA().cert_pem.write_to_path(str(folder / "ca.pem"))
    config = run_config(folder)
    config.write_text(
        config.read_text() + '\n[remote_id]\nuas_id = "FLCTC000000000001"\nua_type = "aeroplane"\n'
        'operator_id = "GBR87astrdge12k8-xyw"\n'
    )
    refused_in_one_line(
        ["run", "--config", str(config)], "remote_id.operator_id: Value error, the operator registration number's "
        "check character does not match", unchanged=folder,
    )  # fmt: skip
    assert "xyw" not in subprocess.run(
        [sys.executable, "-m", "flightctl", "run", "--config", str(config)], capture_output=True, text=True,
        timeout=60, check=False,
    ).stderr  # fmt: skip


def relay_config(folder: Path, **overrides: str) -> Path:
    (folder / "mqtt-password").write_text("hunter2\n")
    (folder / "ops-password").write_text("ops-secret\n")
    (folder / "ca.pem").write_text(NOT_PEM)
    values = {
        "registry": f'"{folder / "registry.sqlite"}"',
        "share_group": '"relay"',
        "url": '"mqtts://127.0.0.1:9"',
        "ca_file": f'"{folder / "ca-good.pem"}"',
        "ops_port": "8081",
        "http_port": "8080",
    } | overrides
    path = folder / "relay.toml"
    path.write_text(
        f'name = "relay-1"\nregistry = {values["registry"]}\nshare_group = {values["share_group"]}\n\n'
        f'[broker]\nurl = {values["url"]}\nusername = "relay-1"\npassword_file = "{folder / "mqtt-password"}"\n'
        f"ca_file = {values['ca_file']}\n\n[http]\nport = {values['http_port']}\n\n"
        f'[ops]\nusername = "ops"\npassword_file = "{folder / "ops-password"}"\nport = {values["ops_port"]}\n'
    )
    return path


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"registry": '"postgresq://flightctl:hunter2@db/flightctl"'}, "postgresq:// is not a registry"),
        ({"registry": '"postgresql://flightctl:hunter2@db/flightctl"'}, "the URL carries a password"),
        ({"share_group": '"re#lay"'}, "share_group"),
        ({"ops_port": "8080"}, "a listener of its own"),
        ({"url": '"mqtts://[::1:8883"'}, "Invalid IPv6 URL"),
        ({"url": '"mqtts://127.0.0.1:9"\npeer_urls = ["ftp://127.0.0.1:10"]'}, "broker.peer_urls"),
        ({"ca_file": "CA"}, "not PEM certificates"),
        ({"http_port": "TAKEN"}, "Address already in use"),
    ],
    ids=[
        "registry-typo", "registry-password", "share-group-wildcard", "ops-on-customer-port", "ipv6-typo",
        "peer-not-a-broker", "ca-not-pem", "port-in-use",
    ],
)  # fmt: skip
def test_a_mistaken_relay_config_is_one_line_before_anything_starts(
    tmp_path: Path, overrides: dict[str, str], says: str
) -> None:
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca-good.pem"))
    taken = socket.create_server(("127.0.0.1", 0))
    named = {"CA": f'"{tmp_path / "ca.pem"}"', "TAKEN": str(taken.getsockname()[1])}
    config = relay_config(tmp_path, **{k: named.get(v, v) for k, v in overrides.items()})
    with taken:
        refused_in_one_line(["relay", "--config", str(config)], says, unchanged=tmp_path)


def test_ten_thousand_mutated_relay_configs_load_or_are_refused_with_a_config_error(tmp_path: Path) -> None:
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca-good.pem"))
    seed = relay_config(tmp_path).read_bytes()
    target = tmp_path / "mutated.toml"
    loaded = refused = 0
    for case in inputs([seed], random.Random(25)):
        target.write_bytes(case)
        try:
            assert isinstance(load_relay_config(target), RelayConfig)
            loaded += 1
        except ConfigError:
            refused += 1
        except Exception as exc:  # pragma: no cover - the failure this test exists to find
            raise AssertionError(f"{type(exc).__name__}: {exc} for {case!r}") from exc
    assert loaded + refused == CASES
    assert loaded > 0, "some mutations keep a valid config (the loader is not refusing everything)"


def test_relative_paths_in_a_relay_config_are_relative_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Test that the relay's secret files and a SQLite registry named relatively are found beside the config, not in
    the directory the relay was started from."""
    folder = tmp_path / "etc"
    folder.mkdir()
    trustme.CA().cert_pem.write_to_path(str(folder / "ca-good.pem"))
    path = relay_config(folder, registry='"registry.sqlite"', ca_file='"ca-good.pem"')
    path.write_text(path.read_text().replace(f'"{folder}/', '"'))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_relay_config(path)
    assert config.registry == str(folder / "registry.sqlite")
    assert config.broker.password_file == folder / "mqtt-password"
    assert config.broker.ca_file == folder / "ca-good.pem"
    assert config.ops is not None
    assert config.ops.password_file == folder / "ops-password"
    assert config.endpoints()[0].password == "hunter2"
    pair = path.read_text().replace(
        'url = "mqtts://127.0.0.1:9"', 'url = "mqtts://127.0.0.1:9"\npeer_urls = ["mqtts://127.0.0.1:10"]'
    )
    path.write_text(pair)
    assert [e.port for e in load_relay_config(path).endpoints()] == [9, 10], "the relay reads both brokers of a pair"
