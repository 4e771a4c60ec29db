"""Mission file formats: exact round trips, real QGroundControl files, and malformed files."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from flightctl.dialect import mavlink as m
from flightctl.errors import ConfigError
from flightctl.geo import AltFrame, Location, offset
from flightctl.missions.formats import (
    MissionFileError,
    check_destination,
    format_plan,
    load_plan,
    parse_plan,
    save_plan,
)
from flightctl.missions.geofence import FenceCircle, FencePolygon, FenceShapes, fence_items, return_point_item
from flightctl.missions.model import MissionItem, MissionPlan, MissionType
from tests.support.shared_data import shared_testdata

KIRKWALL = Location(58.9582, -2.9609, 20.0, AltFrame.ABSOLUTE)


def awkward_plan() -> MissionPlan:
    """Coordinates at the last 1e-7 digit, negative longitudes, NaN params, DO_ items with x/y, all frames."""

    def at(distance: float, bearing: float, alt: float) -> Location:
        return offset(KIRKWALL, bearing_deg=bearing, distance_m=distance).with_alt(alt, AltFrame.RELATIVE)

    mission = [
        MissionItem.home(KIRKWALL),
        MissionItem.takeoff(30),
        MissionItem(
            m.MAV_CMD_NAV_WAYPOINT, m.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, 0, 0, 0, math.nan, 589600001, -29599999, 40.25
        ),
        MissionItem(m.MAV_CMD_DO_CHANGE_SPEED, m.MAV_FRAME_MISSION, 1, 10.5, -1, 0),
        MissionItem(m.MAV_CMD_DO_DIGICAM_CONTROL, m.MAV_FRAME_MISSION, 1, 0, 0, 0, 1, 7, 0),
        MissionItem.payload_place(at(1500, 100, 0), max_descent_m=10),
        MissionItem(m.MAV_CMD_NAV_WAYPOINT, m.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT, x=-353632619, y=1491652301, z=55.5),
        MissionItem.return_to_launch(),
    ]
    shapes = FenceShapes(
        [
            FencePolygon(
                True, ((589500000, -29700000), (589700000, -29700000), (589700000, -29400000), (589500000, -29400000))
            )
        ],
        [FenceCircle(False, (589600000, -29550000), 40.5)],
        return_point_item(at(10, 0, 25)),
    )
    rally = [MissionItem.rally_point(at(300, bearing, 50)) for bearing in (0, 120, 240)]
    return MissionPlan(mission, fence_items(shapes), rally, name="awkward")


@pytest.mark.parametrize("suffix", [".plan", ".yaml"])
def test_round_trip_is_exact(tmp_path: Path, suffix: str) -> None:
    """Test that writing and reading a plan gives back exactly the same items (1e7 integers, float32 params)."""
    plan = awkward_plan()
    path = tmp_path / f"plan{suffix}"
    save_plan(plan, path)
    again = load_plan(path)
    assert again.mission == plan.mission
    assert again.fence == plan.fence
    assert again.rally == plan.rally
    assert again.content_hash() == plan.content_hash()


def test_wpl_round_trip_is_exact(tmp_path: Path) -> None:
    """Test the WPL 110 round trip, and that a WPL file refuses to silently drop fence and rally."""
    plan = awkward_plan()
    mission_only = MissionPlan(plan.mission)
    path = tmp_path / "mission.waypoints"
    save_plan(mission_only, path)
    assert path.read_text().startswith("QGC WPL 110\n0\t1\t0\t16\t")
    assert load_plan(path).mission == plan.mission
    with pytest.raises(ConfigError, match="fence and rally points would be lost"):
        save_plan(plan, tmp_path / "all.waypoints")
    assert not (tmp_path / "all.waypoints").exists()


def test_real_qgc_plan_from_qgroundcontrol() -> None:
    """Test reading QGC's own ArduPilot SITL test plan: frames 0/2/3/10, null params, DO_ items."""
    plan = load_plan(shared_testdata("qgc", "ArduPilotSITL-ArduCopter.plan"))
    assert len(plan.mission) == 12  # planned home + 11 items
    home, takeoff, change_speed = plan.mission[0], plan.mission[1], plan.mission[3]
    assert (home.x, home.y, home.z) == (-353632610, 1491652300, 584.0)
    assert (takeoff.command, takeoff.frame, takeoff.x, takeoff.z) == (22, 3, -353605661, 30.0)
    assert math.isnan(takeoff.param4)
    assert (change_speed.command, change_speed.frame, change_speed.params) == (178, 2, (1.0, 10.0, -1.0, 0.0))
    assert math.isnan(plan.mission[6].z), "QGC's 'calculated above terrain' altitude is null in the file"
    assert {item.frame for item in plan.mission} == {0, 2, 3, 10}


def test_real_qgc_plan_round_trips() -> None:
    """Test that QGC's simple_square.plan survives plan -> yaml -> plan exactly."""
    plan = load_plan(shared_testdata("qgc", "simple_square.plan"))
    again = parse_plan(format_plan(plan, Path("x.yaml")), Path("x.yaml"))
    assert again.mission == plan.mission


def test_qgc_survey_items_are_expanded(tmp_path: Path) -> None:
    """Test that a transect-style complex item contributes its expanded waypoints, and a landing pattern
    (computed by QGC at upload) is refused with a clear reason."""
    simple = {
        "type": "SimpleItem",
        "command": 16,
        "frame": 3,
        "params": [0, 0, 0, None, 58.96, -2.96, 40],
        "autoContinue": True,
    }
    survey = {
        "type": "ComplexItem",
        "complexItemType": "survey",
        "TransectStyleComplexItem": {"Items": [simple, simple]},
    }
    document = {
        "fileType": "Plan",
        "mission": {"plannedHomePosition": [58.9582, -2.9609, 20], "items": [simple, survey]},
    }
    path = tmp_path / "survey.plan"
    path.write_text(json.dumps(document))
    assert len(load_plan(path).mission) == 4
    document["mission"]["items"] = [{"type": "ComplexItem", "complexItemType": "fwLandingPattern"}]  # type: ignore[index]
    path.write_text(json.dumps(document))
    with pytest.raises(
        MissionFileError, match=r"mission.items\[0\]: complex item 'fwLandingPattern' has no expanded items"
    ):
        load_plan(path)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.waypoints", "QGC WPL 120\n", r"line 1: expected the header 'QGC WPL 110'"),
        (
            "bad.waypoints",
            "QGC WPL 110\n0\t1\t0\t16\t0\t0\t0\t0\t58.9\t-2.9\t20\n",
            r"line 2: expected 12 columns, found 11",
        ),
        (
            "bad.waypoints",
            "QGC WPL 110\n0\t1\t0\t16\t0\t0\t0\t0\t58.9\t-2.9\t20\t1\n0\t0\t3\t16\t0\t0\t0\t0\t58.9\t-2.9\t20\t1\n",
            r"line 3: sequence number 0 after 0: repeated or out of order",
        ),
        (
            "bad.waypoints",
            "QGC WPL 110\n0\t1\t0\t16\t0\t0\t0\t0\tfifty\t-2.9\t20\t1\n",
            r"line 2: 'fifty' is not a number of degrees",
        ),
        ("bad.plan", '{"fileType": "Plan", "mission": {"items": []', r"line 1 column \d+: not valid JSON"),
        ("bad.plan", '{"fileType": "Mission"}', r"not a QGroundControl plan"),
        (
            "bad.plan",
            '{"fileType": "Plan", "mission": {"plannedHomePosition": [1, 2, 3], "items": [{"type": "SimpleItem", "command": 16, "frame": 3, "params": [0, 0]}]}}',
            r"mission.items\[0\].params: expected 7 values, found 2",
        ),
        (
            "bad.yaml",
            "home: {lat: 58.9, lon: -2.9, alt_m: 20}\nmission:\n  - {command: NAV_FLY_TO_MOON}\n",
            r"mission.0.command: Value error, unknown MAV_CMD 'NAV_FLY_TO_MOON'",
        ),
        (
            "bad.yaml",
            "home: {lat: 58.9, lon: -2.9, alt_m: 20}\nmission:\n  - {command: NAV_WAYPOINT, lat: 58.9}\n",
            r"give both lat and lon",
        ),
        ("bad.yaml", "home: {lat: 58.9, lon: -2.9}\n", r"home.alt_m: Field required"),
        ("bad.yaml", "home: [1\n", r"line \d+ column \d+: not valid YAML"),
        (
            "bad.yaml",
            "home: {lat: 58.9, lon: -2.9, alt_m: 1}\nfence:\n  - {polygon: [[58.9, -2.9], [59.0, -2.8], [58.9, -2.8], [59.0, -2.9]]}\n",
            r"fence: fence polygon 0: fence polygon is not a simple polygon \(Self-intersection",
        ),
        ("bad.kml", "<kml/>", r"unknown mission file type '.kml'"),
    ],
)
def test_malformed_files_say_file_place_and_reason(tmp_path: Path, name: str, text: str, message: str) -> None:
    """Test that each malformed file raises MissionFileError naming the file, where, and why."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(MissionFileError, match=message) as caught:
        load_plan(path)
    assert str(path) in str(caught.value)


def test_yaml_is_readable() -> None:
    """Test that our YAML names commands and frames and writes coordinates with 7 decimals."""
    text = format_plan(awkward_plan(), Path("x.yaml"))
    assert "command: NAV_PAYLOAD_PLACE" in text
    assert "frame: GLOBAL_RELATIVE_ALT_INT" in text
    assert "lat: 58.9600001" in text
    assert "lon: -2.9599999" in text
    assert "polygon:" in text
    assert "radius_m: 40.5" in text


WPL_LINE = "{seq}\t0\t3\t16\t0\t0\t0\t0\t58.9\t-2.9\t20\t1\n"


def test_wpl_gaps_are_renumbered_in_file_order_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Test that sequence gaps load in file order, as ArduPilot's own tools do, and the warning names the lines."""
    path = tmp_path / "gaps.waypoints"
    path.write_text("QGC WPL 110\n" + "".join(WPL_LINE.format(seq=seq) for seq in (0, 1, 4, 5, 9)))
    plan = load_plan(path)
    assert len(plan.mission) == 5
    assert "line 4 (4 -> 2), line 5 (5 -> 3), line 6 (9 -> 4)" in caplog.text


def test_wpl_out_of_order_lines_are_refused(tmp_path: Path) -> None:
    """Test that a sequence that goes backwards is refused: the file's order and numbers disagree."""
    path = tmp_path / "backwards.waypoints"
    path.write_text("QGC WPL 110\n" + "".join(WPL_LINE.format(seq=seq) for seq in (0, 2, 1)))
    with pytest.raises(MissionFileError, match="line 4: sequence number 1 after 2"):
        load_plan(path)


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    """Test that a UTF-8 BOM before the header (Windows editors) is accepted."""
    path = tmp_path / "bom.waypoints"
    path.write_bytes(b"\xef\xbb\xbf" + ("QGC WPL 110\n" + WPL_LINE.format(seq=0)).encode())
    assert len(load_plan(path).mission) == 1


def test_more_items_than_any_autopilot_holds_are_refused_early(tmp_path: Path) -> None:
    """Test that a WPL file past MISSION_COUNT's limit is refused at the first item too many, naming the line,
    and a file too large to hold a possible mission is refused before it is read."""
    path = tmp_path / "huge.waypoints"
    path.write_text("QGC WPL 110\n" + "".join(WPL_LINE.format(seq=seq) for seq in range(65_537)))
    with pytest.raises(MissionFileError, match="line 65537: more than 65535 items"):
        load_plan(path)
    enormous = tmp_path / "enormous.waypoints"
    with enormous.open("wb") as file:
        file.truncate(40 * 2**20)  # sparse: no time or disk spent
    with pytest.raises(MissionFileError, match="40 MiB is more than any autopilot's mission could fill"):
        load_plan(enormous)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "QGC WPL 110\n" + WPL_LINE.replace("58.9", "91").format(seq=0),
            "line 2: item 0: latitude 91 is outside -90..90",
        ),
        (
            "QGC WPL 110\n" + WPL_LINE.replace("58.9", "1e300").format(seq=0),
            "'1e300' is not a latitude or longitude (degrees beyond 360)",
        ),
        (
            "QGC WPL 110\n" + WPL_LINE.replace("\t16\t", "\t70000\t").format(seq=0),
            "the command '70000' is outside 0..65535",
        ),
        (
            "QGC WPL 110\n" + WPL_LINE.replace("\t16\t", "\t1e30\t").format(seq=0),
            "the command '1e30' is outside 0..65535",
        ),
        (
            "QGC WPL 110\n" + WPL_LINE.replace("\t16\t0\t", "\t16\t1e39\t").format(seq=0),
            "param1 1e+39 does not fit the float32",
        ),
    ],
)
def test_values_mavlink_cannot_carry_are_refused_naming_the_item(tmp_path: Path, text: str, message: str) -> None:
    """Test that what would crash the upload later (struct, overflow) is refused when the file is read."""
    path = tmp_path / "bad.waypoints"
    path.write_text(text)
    with pytest.raises(MissionFileError, match=re.escape(message)):
        load_plan(path)


def test_deeply_nested_json_is_a_clear_error(tmp_path: Path) -> None:
    """Test that JSON nested past Python's recursion limit is refused as not a plan, not a RecursionError."""
    path = tmp_path / "deep.plan"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MissionFileError, match="nested deeper than any plan is"):
        load_plan(path)


def test_a_plan_param_too_large_for_float32_is_refused(tmp_path: Path) -> None:
    """Test the .plan path of the same rule: 1e39 in a param."""
    source = shared_testdata("qgc", "ArduPilotSITL-ArduCopter.plan").read_text()
    document = json.loads(source)
    document["mission"]["items"][0]["params"][0] = 1e39
    path = tmp_path / "big.plan"
    path.write_text(json.dumps(document))
    with pytest.raises(MissionFileError, match="param1 1e\\+39 does not fit the float32"):
        load_plan(path)


def test_download_destinations_are_checked_before_connecting(tmp_path: Path) -> None:
    """Test that a missing folder or a directory as --out is refused before any link is opened."""
    with pytest.raises(MissionFileError, match=r"the folder .* does not exist"):
        check_destination(tmp_path / "missing" / "x.yaml", list(MissionType))
    with pytest.raises(MissionFileError, match="is a directory"):
        check_destination(tmp_path, list(MissionType))
    check_destination(tmp_path / "ok.yaml", list(MissionType))


def test_a_failed_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    """Test that when the destination cannot take the file the error says why and nothing is left behind."""
    target = tmp_path / "taken.yaml"
    target.mkdir()  # replacing a directory with a file fails
    plan = load_plan(shared_testdata("qgc", "ArduPilotSITL-ArduCopter.plan"))
    with pytest.raises(MissionFileError, match="cannot write"):
        save_plan(plan, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.yaml"]


def test_signing_key_to_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    """Test that new-key into a folder that does not exist says so, and writes nothing."""
    from flightctl.vehicle.signing import write_new_key

    with pytest.raises(ConfigError, match="cannot write the key: No such file or directory"):
        write_new_key(tmp_path / "missing" / "key")
    key = tmp_path / "key"
    write_new_key(key)
    assert key.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("radius", ["0", "-40"])
def test_a_fence_circle_with_a_bad_radius_names_the_radius(tmp_path: Path, radius: str) -> None:
    """Test that a circle's bad radius is reported as the circle's problem, not as a missing polygon."""
    path = tmp_path / "fence.yaml"
    path.write_text(
        f"home: {{lat: 58.9, lon: -2.9, alt_m: 20}}\nfence:\n  - {{circle: [58.9, -2.9], radius_m: {radius}}}\n"
    )
    with pytest.raises(MissionFileError) as caught:
        load_plan(path)
    assert str(caught.value).endswith("fence.0.circle.radius_m: Input should be greater than 0")


def test_unwritable_places_are_clear_errors_even_for_root(tmp_path: Path) -> None:
    """Test writing a key and a plan where nobody may create files (procfs refuses even root, as CI runs)."""
    from flightctl.vehicle.signing import write_new_key

    with pytest.raises(ConfigError, match=r"/proc/flightctl-key: cannot write the key"):
        write_new_key(Path("/proc/flightctl-key"))
    plan = load_plan(shared_testdata("qgc", "ArduPilotSITL-ArduCopter.plan"))
    with pytest.raises(MissionFileError, match=r"/proc/flightctl\.yaml: cannot write"):
        save_plan(plan, Path("/proc/flightctl.yaml"))
