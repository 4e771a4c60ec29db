"""Orders no plan can fix are refused at intake, before any vehicle is touched, naming the file and the numbers;
and text from files is never read as terminal markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flightctl.cli import app
from flightctl.config import read_yaml_model
from flightctl.delivery.intake import intake_problems
from flightctl.delivery.order import DeliveryOrder, LatLon, TimeWindow
from flightctl.errors import ConfigError
from tests.unit.test_delivery_planning import PROFILE, SITE, order

runner = CliRunner()
BASE = "order_id: X1\ndrop: {lat: 58.953592, lon: -2.936409}\nmethod: payload_place\n"


def order_text(tmp_path: Path, text: str, name: str = "order.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BASE + "drop_zone: {radius_m: 5}\nparcel_kg: .nan\n", "parcel_kg: Input should be a finite number"),
        (
            BASE + "drop_zone: {radius_m: 0.001}\nparcel_kg: 1\n",
            "drop_zone.radius_m: Input should be greater than or equal to 2",
        ),
        (
            BASE + "drop_zone: {radius_m: 1.0e9}\nparcel_kg: 1\n",
            "drop_zone.radius_m: Input should be less than or equal to 500",
        ),
        (
            BASE
            + "drop_zone: {polygon: [{lat: 58.99, lon: -2.93}, {lat: 58.99, lon: -2.92}, {lat: 58.995, lon: -2.925}]}\n"
            "parcel_kg: 1\n",
            "drop_zone.polygon does not contain the drop point",
        ),
        (
            BASE + "drop_zone: {radius_m: 5}\nparcel_kg: 1\nwindow: {not_before: 2020-01-01 10:00:00}\n",
            "has no time zone",
        ),
        (
            BASE + "drop_zone: {radius_m: 5}\nparcel_kg: 1\n"
            "window: {not_before: '2030-01-01T12:00:00Z', not_after: '2030-01-01T10:00:00Z'}\n",
            "is not before not_after",
        ),
    ],
)
def test_malformed_orders_are_refused_by_the_model(tmp_path: Path, text: str, problem: str) -> None:
    """Test each order the file itself shows to be wrong: the error names the file and the field."""
    path = order_text(tmp_path, text)
    with pytest.raises(ConfigError, match=r"order\.yaml: ") as caught:
        read_yaml_model(path, DeliveryOrder)
    assert problem in str(caught.value)


def test_orders_that_do_not_fit_the_site_or_aircraft_are_refused_at_intake() -> None:
    """Test the checks that need the site, the profile and the clock, each with its numbers."""
    now = datetime.now(UTC)
    at_depot = order("kirkwall-1500m-place").model_copy(update={"drop": LatLon(lat=58.9583, lon=-2.9609)})
    assert intake_problems(at_depot, SITE, PROFILE, now) == ["the drop point is 11 m from the depot (at least 50 m)"]
    far = order("kirkwall-1500m-place").model_copy(update={"drop": LatLon(lat=58.9582, lon=5.3)})
    [problem] = intake_problems(far, SITE, PROFILE, now)
    assert problem.startswith("the drop point is outside the operating area of Kirkwall depot, 47")
    heavy = order("kirkwall-1500m-place").model_copy(update={"parcel_kg": 10.0})
    assert intake_problems(heavy, SITE, PROFILE, now) == ["parcel 10 kg is over the payload limit of 2.5 kg"]
    closed = order("kirkwall-1500m-place").model_copy(update={"window": TimeWindow(not_after=now - timedelta(hours=1))})
    assert intake_problems(closed, SITE, PROFILE, now)[0].startswith("the delivery window closed at ")
    assert intake_problems(order("kirkwall-1500m-place"), SITE, PROFILE, now) == []


def test_deliver_refuses_at_intake_before_connecting(tmp_path: Path) -> None:
    """Test that `deliver` with an over-limit parcel fails before any connection is tried, naming the file."""
    path = order_text(tmp_path, BASE + "drop_zone: {radius_m: 5}\nparcel_kg: 10\n")
    result = runner.invoke(app, ["deliver", str(path), "--connect", "tcp:127.0.0.1:9"], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "order.yaml: parcel 10 kg is over the payload limit of 2.5 kg" in result.output
    assert "could not connect" not in result.output


@pytest.mark.parametrize("name", ["[bold]oops[/bold].yaml", "x[/y].yaml", "a[b].yaml"])
def test_file_names_with_brackets_are_shown_as_written(tmp_path: Path, name: str) -> None:
    """Test that an error naming a file with brackets shows the name as it is, and never crashes on markup."""
    path = order_text(tmp_path, "order_id: [unclosed\n", name)
    result = runner.invoke(app, ["deliver", str(path), "--connect", "tcp:127.0.0.1:9"], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert f"error: {path}: not valid YAML" in result.output
    assert "MarkupError" not in result.output
