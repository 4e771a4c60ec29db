"""Remote ID without a vehicle: the operator ID's check, what counts as unhealthy, the go/no-go line, the
simulated transmitter's report, and the in-flight rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flightctl.config import configs_dir, named_config, read_yaml_model
from flightctl.daemon.settings import load_daemon_config, load_remote_id
from flightctl.delivery.actions import Abort, AbortHow, Note
from flightctl.delivery.decide import Limits, Observed, Persistence, remote_id_in_flight
from flightctl.delivery.events import Observation
from flightctl.delivery.history import History
from flightctl.delivery.order import RemoteIdLossRule, VehicleProfile
from flightctl.delivery.preflight import remote_id_check
from flightctl.dialect import mavlink
from flightctl.errors import ConfigError
from flightctl.vehicle.remote_id import RemoteIdStatus
from flightctl.vehicle.remote_id_settings import RemoteIdSettings, luhn_mod36, public_operator_id
from flightctl.vehicle.telemetry import VehicleState
from sitl.remote_id_tx import SimulatedTransmitter

GOOD = mavlink.MAV_ODID_ARM_STATUS_GOOD_TO_ARM
FAIL = mavlink.MAV_ODID_ARM_STATUS_PRE_ARM_FAIL_GENERIC


def _settings(**changes: object) -> RemoteIdSettings:
    base: dict[str, object] = {
        "uas_id": "FLCTC000000000001",
        "ua_type": "helicopter-or-multirotor",
        "operator_id": "GBR87astrdge12k8-xyz",
        "operator_location": {"lat_deg": 58.958, "lon_deg": -2.9, "alt_m": 60},
    }
    return RemoteIdSettings.model_validate(base | changes)


def test_easas_published_example_checks_and_only_its_public_part_is_kept() -> None:
    """Test that EASA's example number (FIN87astrdge12k8-xyz) passes the Luhn mod 36 check over the random and
    secret characters, and that the secret is dropped."""
    assert luhn_mod36("87astrdge12kxyz") == "8"
    assert public_operator_id("FIN87astrdge12k8-xyz", country="FIN") == "FIN87astrdge12k8"
    assert _settings().operator_id == "GBR87astrdge12k8"


@pytest.mark.parametrize(
    ("number", "says"),
    [
        ("GBR87astrdge12k9-xyz", "check character does not match"),  # one character mistyped
        ("GBR87astrdge12k8-xyw", "check character does not match"),  # the secret mistyped
        ("GBR87astrdge12k8", "3 secret characters"),  # the public part alone cannot be checked
        ("GBR-OP-BAZ4DH6GJ88T", "as printed on the CAA's registration"),
        ("FIN87astrdge12k8-xyz", "from FIN"),
        ("gbr87astrdge12k8-xyz", "3 capital letters"),
    ],
)
def test_a_malformed_operator_id_is_refused_with_what_is_wrong_and_never_the_secret(number: str, says: str) -> None:
    """Test that each kind of mistake in an operator ID is a config error naming it, without echoing the number."""
    with pytest.raises(ValidationError) as caught:
        _settings(operator_id=number)
    message = str(caught.value.errors()[0]["msg"])
    assert says in message
    assert number not in message


def test_a_daemon_config_with_a_mistyped_operator_id_stops_at_start_up(tmp_path: Path) -> None:
    """Test that the daemon's config loader refuses a mistyped operator ID with the field and the reason."""
    shipped = (configs_dir() / "onboard" / "sitl.toml").read_text()
    bad = tmp_path / "onboard.toml"
    bad.write_text(shipped.replace("GBR87astrdge12k8-xyz", "GBR87astrdge12k7-xyz"))
    with pytest.raises(ConfigError) as caught:
        load_daemon_config(bad)
    assert "remote_id.operator_id" in str(caught.value)
    assert "check character does not match" in str(caught.value)
    assert load_daemon_config(configs_dir() / "onboard" / "sitl.toml").remote_id is not None


def test_a_file_without_a_remote_id_section_is_refused_by_name(tmp_path: Path) -> None:
    """Test that --remote-id with a file that has no [remote_id] says so, and that the shipped SITL config loads."""
    empty = tmp_path / "empty.toml"
    empty.write_text('drone_id = "x"\n')
    with pytest.raises(ConfigError, match=r"no \[remote_id\] section"):
        load_remote_id(empty)
    assert load_remote_id(configs_dir() / "onboard" / "sitl.toml").operator_id == "GBR87astrdge12k8"


def _status(**changes: object) -> RemoteIdStatus:
    base: dict[str, object] = {
        "now_ms": 100_000,
        "settings": _settings(),
        "arm_status": GOOD,
        "arm_status_ms": 99_500,
        "operator_location_sent_ms": 99_800,
    }
    return RemoteIdStatus(**(base | changes))  # type: ignore[arg-type]


def test_everything_present_is_healthy_and_the_check_says_what_was_seen() -> None:
    """Test the GO line: transmitter state, operator ID, UAS ID and the operator location's age."""
    check = remote_id_check(_status(), None)
    assert check.ok
    assert "GOOD_TO_ARM" in check.detail
    assert "GBR87astrdge12k8" in check.detail
    assert "0.2 s ago" in check.detail


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"arm_status": None, "arm_status_ms": None}, "no Remote ID transmitter"),
        ({"arm_status_ms": 90_000}, "transmitter silent for 10.0 s"),
        ({"arm_status": FAIL, "arm_error": "LOC SYS"}, "transmitter reports a failure: LOC SYS"),
        ({"settings": _settings(operator_location=None)}, "no operator location configured"),
        ({"operator_location_sent_ms": 95_000}, "operator location stale: last sent 5.0 s ago"),
        ({"settings": _settings(operator_id=None)}, "no operator ID configured"),
        ({"settings": None}, "no Remote ID settings to send"),
    ],
)
def test_each_missing_piece_is_a_no_go_that_names_it(changes: dict[str, object], named: str) -> None:
    """Test that every way Remote ID can be unhealthy fails the check, naming it and quoting the autopilot."""
    check = remote_id_check(_status(**changes), "PreArm: OpenDroneID: ARM_STATUS not available")
    assert not check.ok
    assert named in check.detail
    assert "autopilot: PreArm: OpenDroneID: ARM_STATUS not available" in check.detail


def test_an_autopilot_that_passes_remote_id_to_no_transmitter_is_a_no_go() -> None:
    """Test that DID_MAVPORT -1 with no DroneCAN driver fails the check even when all else is healthy."""
    problem = "the autopilot passes Remote ID to no transmitter (DID_MAVPORT -1, DID_CANDRIVER 0)"
    check = remote_id_check(_status(), None, problem)
    assert not check.ok
    assert check.detail == problem


def test_the_simulated_transmitter_reports_what_arducremoteid_would() -> None:
    """Test the module's checks: nothing heard is every reason; everything fresh is GOOD_TO_ARM; a stale
    operator timestamp is SYS; an injected failure is reported with its reason."""
    tx = SimulatedTransmitter("udpin:127.0.0.1:1")
    assert tx.arm_status() == (FAIL, "LOC ID SELF_ID OP_ID SYS OP_LOC")
    mav = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)

    def tick(system_timestamp: int) -> None:
        for message in (
            mavlink.MAVLink_heartbeat_message(2, 3, 0, 0, 0, 3),
            mavlink.MAVLink_open_drone_id_location_message(1, 236, [0] * 20, 2, 0, 0, 0, 589580000, -29000000,
                                                           60, 60, 0, 20, 0, 0, 0, 0, 0, 0),
            mavlink.MAVLink_open_drone_id_system_update_message(1, 236, 589580000, -29000000, 60, system_timestamp),
        ):  # fmt: skip
            message.pack(mav)
            message._header.srcComponent = 1
            tx._take(message)

    for message in (
        mavlink.MAVLink_open_drone_id_basic_id_message(1, 236, [0] * 20, 1, 2, list(b"FLCTC000000000001".ljust(20, b"\0"))),
        mavlink.MAVLink_open_drone_id_self_id_message(1, 236, [0] * 20, 0, b"delivery"),
        mavlink.MAVLink_open_drone_id_operator_id_message(1, 236, [0] * 20, 0, b"GBR87astrdge12k8"),
    ):  # fmt: skip
        message.pack(mav)
        tx._take(message)
    for second in range(3):
        tick(1000 + second)
    assert tx.arm_status() == (GOOD, "")
    for _ in range(4):
        tick(1002)  # the operator location no longer changes
    assert tx.arm_status() == (FAIL, "SYS")
    tx.fail("BLE module fault")
    assert tx.arm_status() == (FAIL, "BLE module fault")


def _profile(rule: RemoteIdLossRule) -> VehicleProfile:
    profile = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)
    return profile.model_copy(update={"remote_id_lost": rule})


def _seen(ms: int, problems: tuple[str, ...] | None) -> Observed:
    return Observed(VehicleState(time_boot_ms=ms, armed=True, mode="AUTO"), remote_id_problems=problems)


def test_remote_id_lost_in_flight_is_journaled_once_then_the_profiles_rule_applies() -> None:
    """Test that a loss lasting persist_s is noted with the problems and the rule's reason, the return rule
    aborts by RTL, a continue rule only notes, and a recovery is noted."""
    limits, history = Limits(), History()
    silent = ("Remote ID transmitter silent for 4.0 s (limit 3 s)",)
    for rule, expect_abort in ((RemoteIdLossRule.RETURN, True), (RemoteIdLossRule.CONTINUE, False)):
        persistence = Persistence()
        profile = _profile(rule)
        assert remote_id_in_flight(profile, history, _seen(1_000, silent), persistence, limits) == []
        actions = remote_id_in_flight(profile, history, _seen(4_500, silent), persistence, limits)
        assert isinstance(actions[0], Note)
        assert actions[0].observation is Observation.REMOTE_ID_LOST
        assert actions[0].detail["problems"] == list(silent)
        assert actions[0].detail["rule"] == rule.value
        aborts = [a for a in actions if isinstance(a, Abort)]
        assert bool(aborts) is expect_abort
        if aborts:
            assert aborts[0].how is AbortHow.RTL
            assert "Remote ID lost in flight" in aborts[0].reason
    land = remote_id_in_flight(_profile(RemoteIdLossRule.LAND), History(), _seen(1_000, silent), Persistence(), limits)
    assert land == []
    persistence = Persistence()
    remote_id_in_flight(_profile(RemoteIdLossRule.LAND), History(), _seen(1_000, silent), persistence, limits)
    land = remote_id_in_flight(_profile(RemoteIdLossRule.LAND), History(), _seen(4_500, silent), persistence, limits)
    assert [a.how for a in land if isinstance(a, Abort)] == [AbortHow.LAND]
    plane = read_yaml_model(named_config("profiles", "sitl-plane"), VehicleProfile)
    plane = plane.model_copy(update={"remote_id_lost": RemoteIdLossRule.LAND})
    persistence = Persistence()
    remote_id_in_flight(plane, History(), _seen(1_000, silent), persistence, limits)
    wing = remote_id_in_flight(plane, History(), _seen(4_500, silent), persistence, limits)
    assert [a.how for a in wing if isinstance(a, Abort)] == [AbortHow.RTL], "a wing cannot land where it is"
    lost = History()
    lost.remote_id_lost = True
    persistence = Persistence()
    profile = _profile(RemoteIdLossRule.RETURN)
    assert remote_id_in_flight(profile, lost, _seen(9_000, silent), persistence, limits) == []
    recovered = remote_id_in_flight(profile, lost, _seen(9_500, ()), persistence, limits)
    assert recovered == [Note(Observation.REMOTE_ID_RECOVERED)]
    assert remote_id_in_flight(profile, History(), _seen(9_500, None), persistence, limits) == []


def test_the_telemetry_view_says_whether_remote_id_is_healthy_and_what_is_wrong() -> None:
    """Test the `flightctl telemetry` row for Remote ID: ok with the transmitter, the problems when not, '-'
    for an aircraft without it (or a sample from an older daemon)."""
    from flightctl.cli.telemetry_view import _remote_id

    assert _remote_id({"remote_id": _status().report()}) == "ok (GOOD_TO_ARM, operator GBR87astrdge12k8)"
    silent = _status(arm_status_ms=90_000).report()
    assert _remote_id({"remote_id": silent}) == "NOT healthy: Remote ID transmitter silent for 10.0 s (limit 3 s)"
    assert _remote_id({"remote_id": None}) == "-"
    assert _remote_id({}) == "-"
