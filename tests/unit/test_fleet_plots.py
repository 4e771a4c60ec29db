"""The fleet report's pictures (sitl.fleet_plots), drawn from a report as fleet-report.json holds it: each is a
PNG that reads back, sized to the fleet, and an empty run (no orders, no page updates) still draws."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.image

from flightctl.ground.fleet_tally import page_latency
from sitl.fleet import AircraftRecord, FaultRecord, FleetReport, ProcessCost
from sitl.fleet_plots import orders_figure, write_plots


def report(aircraft: int, *, orders: bool = True) -> FleetReport:
    drones = [f"sim-{n + 1:02d}" for n in range(aircraft)]
    timeline = [
        {"order_id": "FLT-0001", "drone": drones[0], "outcome": "delivered", "accepted_min": 0.5, "ended_min": 6.0},
        {"order_id": "FLT-0002", "drone": drones[-1], "outcome": "refused", "accepted_min": None, "ended_min": 1.0},
        {"order_id": "FLT-0003", "drone": drones[-1], "outcome": "flying", "accepted_min": 8.0, "ended_min": None},
    ]
    delays = [0.2, 0.4, 0.5, 1.1] if orders else []
    return FleetReport(
        started_utc="2026-12-02T00:00:00+00:00", wall_s=200.0, sim_s=600.0, speedup_asked=5.0, speedup_achieved=4.9,
        counts={"dispatched": 3, "sent": 0, "flying": 1, "delivered": 1, "aborted": 0, "refused": 1, "unsent": 0},
        unserved=0, orders=[],
        aircraft=[AircraftRecord(d, 10, 10, [], [], 1, [], 4.9) for d in drones],
        costs=[ProcessCost(d, kind, 0.2, 100.0) for d in drones for kind in ("sitl", "daemon")],
        faults=[FaultRecord(3.0, "broker_failover", None, None, broker="a", took_s=4.2, pages_updated=3)],
        folder="/nowhere", brokers=2, latency=page_latency(delays), latencies_s=delays,
        timeline=timeline if orders else [],
    )  # fmt: skip


def test_the_three_pictures_are_written_and_read_back_as_images(tmp_path: Path) -> None:
    written = write_plots(report(4), tmp_path / "plots")
    assert [p.name for p in written] == ["orders.png", "latency.png", "costs.png"]
    for path in written:
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 100
        assert image.shape[1] > 100
        assert image.std() > 0.01, f"{path.name} is not blank"


def test_the_orders_picture_grows_with_the_fleet_and_an_empty_run_still_draws(tmp_path: Path) -> None:
    small = matplotlib.image.imread(io.BytesIO(orders_figure(report(2))))
    large = matplotlib.image.imread(io.BytesIO(orders_figure(report(8))))
    assert large.shape[0] > small.shape[0] * 1.5, "a row per aircraft"
    assert len(write_plots(report(1, orders=False), tmp_path)) == 3


def test_the_live_view_shows_each_aircraft_with_its_broker_and_is_kept_as_an_svg(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from rich.console import Console

    from flightctl.cli.fleet_view import live_view, report_tables, save_view_svg
    from flightctl.ground.fleet_tally import FleetTally
    from flightctl.mqtt.contract import Envelope, MessageType, TimeSource
    from sitl.fleet import FleetProgress

    tally = FleetTally(["sim-01", "sim-02"])
    tally.sent("FLT-0001", "sim-01", "kirkwall-1200m-height")
    when = datetime(2026, 12, 2, tzinfo=UTC)
    for message in (
        Envelope(drone="sim-01", seq=1, time=when, time_source=TimeSource.GPS, type=MessageType.ORDER_ACCEPTED,
                 order_id="FLT-0001", data={"request_id": "r"}),
        Envelope(drone="sim-01", seq=2, time=when, time_source=TimeSource.GPS, type=MessageType.STATE,
                 order_id="FLT-0001", data={"state": "ENROUTE", "detail": {}}),
    ):  # fmt: skip
        tally.take(message, 1.0)
    tally.take(Envelope(drone="sim-02", time=when, time_source=TimeSource.GPS, type=MessageType.TELEMETRY, data={}),
               2.0, via="b")  # fmt: skip
    path = tmp_path / "live-view.svg"
    save_view_svg(live_view(FleetProgress(tally, 300.0, 900.0, 1, phase="flying")), path, title="fleet")
    svg = path.read_text()
    assert svg.startswith("<svg")
    for shown in ("sim-01", "ENROUTE", "FLT-0001", "sim-02", "ready", "5.0 of 15 simulated min", "1 flying"):
        assert shown.replace(" ", "&#160;") in svg, shown
    recorder = Console(record=True, width=250, file=io.StringIO())
    recorder.print(report_tables(report(2)))
    text = recorder.export_text()
    assert "event latency, broker to tracking page: p50 0.45 s, p99 1.08 s, worst 1.10 s over 4 statuses" in text
    assert "broker a" in text
    assert "every aircraft on the other broker after 4.2 s; 3 page updates meanwhile" in text


async def test_the_page_follower_skips_an_update_it_cannot_read_and_takes_the_next() -> None:
    """Test poison on a followed page's stream (deep nesting, NaN, huge numbers, wrong types): each is skipped,
    nothing is recorded for it, and the next good update counts."""
    from sitl.fleet_pages import FollowedOrder, PageFollower

    follower = PageFollower("http://127.0.0.1:9")
    order = FollowedOrder("FLT-0001", "sim-01")
    try:
        for poison in ("[" * 100_000, '{"seq": NaN, "status": "ACCEPTED"}', '{"seq": [1], "status": "X"}',
                       '{"status": "ACCEPTED"}', "not json", '{"seq": 1e999, "status": "ACCEPTED"}'):  # fmt: skip
            follower._take(order, poison)
        assert follower.shown == {}
        follower._take(order, '{"seq": 12345678901234567890, "status": "ACCEPTED", "final": false}')
        follower._take(order, '{"seq": 4, "status": "DELIVERED", "final": true}')
        assert list(follower.shown) == [("sim-01", 12345678901234567890), ("sim-01", 4)]
        assert order.final
    finally:
        await follower.close()
