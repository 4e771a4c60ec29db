"""The daemon's config: every error names the file and the key; relative paths are relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from flightctl.daemon.settings import load_daemon_config
from flightctl.errors import ConfigError
from flightctl.mqtt.endpoint import BrokerEndpoint

GOOD = """
drone_id = "orkney-07"
site = "kirkwall"
profile = "sitl-quad"
journal = "state/journal.sqlite"

[autopilot]
url = "serial:/dev/ttyAMA0:921600"

[broker]
url = "mqtts://broker.example.net"
username = "orkney-07"
password_file = "secret"
"""


def write(tmp_path: Path, text: str, name: str = "daemon.toml") -> Path:
    (tmp_path / "secret").write_text("s3cret\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_configs_load(tmp_path: Path) -> None:
    """Test that the example configs in configs/onboard/ are valid (the aircraft one up to its secret files)."""
    config = load_daemon_config(Path("configs/onboard/sitl.toml"))
    assert config.drone_id == "sitl-1"
    with pytest.raises(ConfigError, match=r"ca_file|password_file"):
        load_daemon_config(Path("configs/onboard/aircraft.toml"))


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_daemon_config(write(tmp_path, GOOD))
    assert config.journal == tmp_path / "state" / "journal.sqlite"
    endpoint = config.broker_endpoints()[0]
    assert (endpoint.host, endpoint.port, endpoint.tls, endpoint.password) == (
        "broker.example.net",
        8883,
        True,
        "s3cret",
    )
    assert "s3cret" not in repr(endpoint)
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('url = "mqtts://broker.example.net"', 'url = "http://broker.example.net"'), "broker.url"),
        (('drone_id = "orkney-07"', 'drone_id = "orkney/#"'), "drone_id"),
        (("[broker]", "[broker]\nwill_delay_s = 99999999"), "will_delay_s"),
        (("[autopilot]", "[telemetry]\nrate_hz = 20\n[autopilot]"), "telemetry.rate_hz"),
        (("[autopilot]", "[telemetry]\nrate_hz = nan\n[autopilot]"), "telemetry.rate_hz"),
        (("[broker]", "[broker]\npasword = 'typo'"), "broker.pasword"),
        (('password_file = "secret"', 'password_file = "missing"'), "broker.password_file"),
        (('password_file = "secret"', 'password_file = "secret"\npassword = "x"'), "password or password_file"),
    ],
)
def test_a_wrong_config_names_the_key(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError, match=message) as raised:
        load_daemon_config(path)
    assert str(path) in str(raised.value)


def test_a_daemon_config_is_toml_and_nothing_else(tmp_path: Path) -> None:
    """Test that the daemon reads TOML only (one format per kind of file: services are TOML), and says so."""
    yaml_text = "drone_id: d1\nsite: kirkwall\nprofile: sitl-quad\njournal: j.sqlite\n"
    for name in ("d.yaml", "d.ini"):
        with pytest.raises(ConfigError, match=r"a daemon config is a \.toml file"):
            load_daemon_config(write(tmp_path, yaml_text, name))
    with pytest.raises(ConfigError, match=r"not valid|Expected|Invalid"):
        load_daemon_config(write(tmp_path, "drone_id = ", "bad.toml"))


def test_a_site_and_profile_given_as_files_are_found_next_to_the_config(tmp_path: Path) -> None:
    """Test that ``site = "sites/mine.yaml"`` in a config means the file beside the config, wherever the daemon was
    started; a shipped name stays a name."""
    config = load_daemon_config(write(tmp_path, GOOD.replace('"sitl-quad"', '"profiles/mine.yaml"')))
    assert config.site == "kirkwall"
    assert Path(config.profile) == tmp_path / "profiles" / "mine.yaml"


@pytest.mark.parametrize("url", ["mqtt://", "tcp://host", "mqtt://host:99999", "mqtt://host/path", "mqtts://host?x=1"])
def test_broker_urls_that_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="broker URL"):
        BrokerEndpoint.from_url(url)


def test_credentials_in_the_url() -> None:
    endpoint = BrokerEndpoint.from_url("mqtt://ops:p%40ss@127.0.0.1:1884")
    assert (endpoint.username, endpoint.password, endpoint.port, endpoint.tls) == ("ops", "p@ss", 1884, False)


def test_a_pair_of_brokers_is_tried_in_order_with_the_same_account(tmp_path: Path) -> None:
    """Test ``broker.peer_urls``: the broker first, then each peer, one account for all; a peer that is not a
    broker URL stops the config naming the key."""
    pair = GOOD.replace(
        'url = "mqtts://broker.example.net"',
        'url = "mqtts://broker.example.net"\npeer_urls = ["mqtts://broker-2.example.net:8884"]',
    )
    endpoints = load_daemon_config(write(tmp_path, pair)).broker_endpoints()
    assert [(e.host, e.port) for e in endpoints] == [("broker.example.net", 8883), ("broker-2.example.net", 8884)]
    assert {(e.username, e.password) for e in endpoints} == {("orkney-07", "s3cret")}
    bad = pair.replace("mqtts://broker-2.example.net:8884", "http://broker-2.example.net")
    with pytest.raises(ConfigError, match=r"broker\.peer_urls"):
        load_daemon_config(write(tmp_path, bad))
