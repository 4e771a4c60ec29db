"""Release interlocks and the journal (durability, and what a restart reads from it)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from flightctl.config import named_config, read_yaml_model
from flightctl.delivery.interlocks import release_interlocks
from flightctl.delivery.journal import Journal, JournalError
from flightctl.delivery.order import DeliveryOrder, VehicleProfile
from flightctl.delivery.sequencer import DeliveryState, _History
from flightctl.geo import AltFrame, offset
from flightctl.vehicle.telemetry import VehicleState

ORDER = read_yaml_model(named_config("orders", "kirkwall-1500m-place"), DeliveryOrder)
PROFILE = read_yaml_model(named_config("profiles", "sitl-quad"), VehicleProfile)


def hovering(distance_m: float = 0.5, speed: float = 0.2, alt: float = 20.0) -> VehicleState:
    position = offset(ORDER.drop_location(), bearing_deg=45, distance_m=distance_m).with_alt(40, AltFrame.ABSOLUTE)
    return VehicleState(armed=True, mode="AUTO", position=position, groundspeed_m_s=speed, relative_alt_m=alt)


def test_interlocks_pass_in_a_steady_hover_over_the_drop() -> None:
    """Test that a steady hover inside the zone at the expected altitude allows the release."""
    result = release_interlocks(ORDER, PROFILE, hovering(), expected_alt_m=20)
    assert result.ok, result.describe()


@pytest.mark.parametrize(
    ("state", "failure"),
    [
        (hovering(distance_m=7.0), "outside the drop zone (7.0 m from the drop point)"),
        (hovering(speed=2.5), "ground speed 2.50 m/s > 1 m/s"),
        (hovering(alt=25.0), "altitude 25.0 m, expected 20 +- 2 m"),
        (VehicleState(armed=True, mode="AUTO", groundspeed_m_s=0.1, relative_alt_m=20), "no position"),
        (
            VehicleState(armed=True, mode="RTL", position=hovering().position, groundspeed_m_s=0.1, relative_alt_m=20),
            "mode RTL",
        ),
    ],
)
def test_each_interlock_blocks_the_release(state: VehicleState, failure: str) -> None:
    """Test that each violated condition alone blocks the release and is named."""
    result = release_interlocks(ORDER, PROFILE, state, expected_alt_m=20)
    assert not result.ok
    assert failure in result.describe()


async def test_journal_survives_reopening_and_is_in_wal_mode(tmp_path: Path) -> None:
    """Test that events are on disk once record() returns (read by a second connection), in order, WAL mode."""
    path = tmp_path / "journal.sqlite"
    journal = await Journal.open(path)
    await journal.record("KWL-1", kind="state", state="PREFLIGHT", name="PREFLIGHT")
    await journal.record("KWL-1", kind="command", state="ARMING", name="arm", detail={"why": "go"}, vehicle_ms=1234)
    await journal.record("KWL-2", kind="state", state="PREFLIGHT", name="PREFLIGHT")
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert other.execute("SELECT name FROM events WHERE order_id = 'KWL-1' ORDER BY id").fetchall() == [
        ("PREFLIGHT",),
        ("arm",),
    ]
    other.close()
    await journal.close()
    async with await Journal.open(path) as again:
        events = await again.events("KWL-1")
    assert [(e.kind, e.name, e.vehicle_ms, e.detail) for e in events] == [
        ("state", "PREFLIGHT", None, {}),
        ("command", "arm", 1234, {"why": "go"}),
    ]


async def test_journal_writes_do_not_block_the_event_loop(tmp_path: Path) -> None:
    """Test that while the journal writes (fsync on every commit) other tasks keep running."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    async with await Journal.open(tmp_path / "j.sqlite") as journal:
        for n in range(20):
            await journal.record("KWL-1", kind="observation", state="ENROUTE", name=f"tick {n}")
    task.cancel()
    assert ticks > 20


async def test_unwritable_journal_is_an_error_not_a_silent_loss(tmp_path: Path) -> None:
    """Test that a journal that cannot be opened raises JournalError naming it (no flight without a journal)."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(JournalError, match=r"journal .*file/journal\.sqlite"):
        await Journal.open(blocker / "journal.sqlite")


async def test_history_tells_what_must_not_happen_twice(tmp_path: Path) -> None:
    """Test that the journal read back after a crash says: the release was authorised (never again), which
    mission hash is ours, and the last state."""
    async with await Journal.open(tmp_path / "j.sqlite") as journal:
        for kind, state, name, detail in [
            ("state", "PREFLIGHT", "PREFLIGHT", {}),
            ("observation", "UPLOADING", "uploaded", {"mission_hash": "abc"}),
            ("state", "ENROUTE", "ENROUTE", {}),
            ("state", "ON_STATION", "ON_STATION", {}),
            ("command", "ON_STATION", "release_authorised", {"set_current": 6}),
        ]:
            await journal.record("KWL-1", kind=kind, state=state, name=name, detail=detail)
        history = _History.of(await journal.events("KWL-1"))
    assert history.state is DeliveryState.ON_STATION
    assert history.mission_hash == "abc"
    assert history.release_started
    assert not history.released


def _sequencer_for_abort_rules(changed_elsewhere: bool = False) -> object:
    from types import SimpleNamespace

    from flightctl.delivery.order import Site
    from flightctl.delivery.planner import plan_delivery
    from flightctl.delivery.sequencer import DeliverySequencer

    site = read_yaml_model(named_config("sites", "kirkwall"), Site)
    plan = plan_delivery(ORDER, site, PROFILE)
    vehicle = SimpleNamespace(mission=SimpleNamespace(changed_elsewhere=lambda: changed_elsewhere))
    return DeliverySequencer(vehicle, plan, journal=None)  # type: ignore[arg-type]


def _flying(ms: int, **changes: object) -> VehicleState:
    state = hovering()
    state.mode, state.time_boot_ms, state.battery_voltage_v, state.battery_consumed_wh, state.wind_speed_m_s = (
        "AUTO",
        ms,
        12.5,
        20.0,
        2.0,
    )
    for name, value in changes.items():
        setattr(state, name, value)
    return state


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"battery_voltage_v": 10.2}, "battery 10.20 V below the abort voltage 10.8 V"),
        ({"battery_consumed_wh": 150.0}, "Wh needed to get home plus the reserve"),
        ({"wind_speed_m_s": 14.0}, "wind 14.0 m/s above the limit 10 m/s"),
    ],
)
def test_abort_needs_the_condition_to_persist(changes: dict[str, object], reason: str) -> None:
    """Test that a low battery, an empty tank or high wind aborts once it has lasted 3 s of vehicle time, not
    on its first sample (one gust or sag is not a trend)."""
    sequencer = _sequencer_for_abort_rules()
    assert sequencer._abort_reason(_flying(10_000)) is None  # type: ignore[attr-defined]
    assert sequencer._abort_reason(_flying(11_000, **changes)) is None  # type: ignore[attr-defined]
    assert sequencer._abort_reason(_flying(12_000, **changes)) is None  # type: ignore[attr-defined]
    found = sequencer._abort_reason(_flying(14_100, **changes))  # type: ignore[attr-defined]
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    ("changes", "changed_elsewhere", "reason"),
    [
        ({"fence_breached": True}, False, "geofence breached"),
        ({"mode": "LAND"}, False, "the autopilot switched to LAND (failsafe or another station)"),
        ({}, True, "the mission was changed by another station"),
    ],
)
def test_immediate_aborts(changes: dict[str, object], changed_elsewhere: bool, reason: str) -> None:
    """Test that a fence breach, an autopilot mode change and a mission changed elsewhere abort at once."""
    sequencer = _sequencer_for_abort_rules(changed_elsewhere)
    assert sequencer._abort_reason(_flying(10_000, **changes)) == reason  # type: ignore[attr-defined]
