"""The telemetry log: frames as received, in MAVProxy's layout, read back by pymavlink's own reader."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.link.tlog import TIMESTAMP, TlogWriter
from tests.support.tlogs import read_tlog


def received(count: int) -> list[MAVLinkMessage]:
    """Messages as the link's codec hands them over: decoded from the bytes a vehicle sent."""
    vehicle = mavlink.MAVLink(None, srcSystem=1, srcComponent=1)
    vehicle.robust_parsing = True
    reader = mavlink.MAVLink(None, srcSystem=255, srcComponent=0)
    messages = []
    for n in range(count):
        if n % 3 == 0:
            frame = mavlink.MAVLink_heartbeat_message(2, 3, 0, 0, 4, 3).pack(vehicle)
        elif n % 3 == 1:
            frame = mavlink.MAVLink_sys_status_message(0, 0, 0, 500, 12_400, 1_000, 80, 0, 0, 0, 0, 0, 0).pack(vehicle)
        else:
            frame = mavlink.MAVLink_statustext_message(6, f"text {n}".encode()).pack(vehicle)
        decoded = reader.parse_buffer(bytes(frame))
        assert decoded is not None
        messages.extend(decoded)
    return messages


async def test_every_frame_reads_back_with_increasing_timestamps(tmp_path: Path) -> None:
    """Test that what the link received is what pymavlink reads from the file, in order, each with the time it
    came, never going back."""
    path = tmp_path / "KWL-1.tlog"
    messages = received(300)
    async with TlogWriter(path) as tlog:
        for n, message in enumerate(messages):
            tlog.record(message)
            if n % 50 == 0:
                await asyncio.sleep(0)  # the writer gets turns while frames still come
    found = read_tlog(path)
    assert [name for name, _ in found] == [m.get_type() for m in messages]
    times = [when for _, when in found]
    assert times == sorted(times)
    assert tlog.stats.frames == 300
    assert tlog.stats.dropped == 0


async def test_a_log_cut_short_reads_back_to_its_last_whole_frame(tmp_path: Path) -> None:
    """Test a tlog whose last frame was cut in half (SIGKILL in the middle of a write): every frame before it
    reads back, and the reader stops without an error."""
    path = tmp_path / "cut.tlog"
    messages = received(30)
    async with TlogWriter(path) as tlog:
        for message in messages:
            tlog.record(message)
    whole = path.read_bytes()
    last = TIMESTAMP.size + len(messages[-1].get_msgbuf())
    path.write_bytes(whole[: len(whole) - last // 2])
    assert [name for name, _ in read_tlog(path)] == [m.get_type() for m in messages[:-1]]


async def test_a_full_log_rotates_and_keeps_only_so_many(tmp_path: Path) -> None:
    """Test the cap: past max_bytes the log moves to .1 (the older to .2 ...), only ``keep`` rotated files stay,
    and each starts at a whole frame (each reads back on its own)."""
    path = tmp_path / "long.tlog"
    async with TlogWriter(path, max_bytes=2048, keep=2) as tlog:
        for message in received(400):
            tlog.record(message)
    assert tlog.stats.rotations > 2
    assert_rotated(tmp_path, ["long.tlog", "long.tlog.1", "long.tlog.2"], max_bytes=2048)


def assert_rotated(folder: Path, names: list[str], *, max_bytes: int) -> None:
    assert sorted(p.name for p in folder.iterdir()) == names
    for name in names:
        assert (folder / name).stat().st_size <= max_bytes
        assert read_tlog(folder / name), name


async def test_a_writer_that_cannot_keep_up_drops_and_counts_never_blocks(tmp_path: Path) -> None:
    """Test that the reader's call never waits: past the queue's size frames are dropped and counted, and what
    was queued is still written."""
    path = tmp_path / "busy.tlog"
    messages = received(100)
    async with TlogWriter(path, queue_size=10) as tlog:
        for message in messages:  # no await between them: the writer gets no turn
            tlog.record(message)
        dropped = tlog.stats.dropped
    assert dropped == 90
    assert len(read_tlog(path)) == 10


def test_a_cap_too_small_to_hold_a_frame_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1 KiB"):
        TlogWriter(tmp_path / "x.tlog", max_bytes=100)


async def test_a_log_that_cannot_be_opened_costs_the_log_never_the_flight(tmp_path: Path) -> None:
    """Test that when the log's folder cannot be made (here a file stands in its place), the block still runs,
    without a log, and says so."""
    from flightctl.link.connection import MavConnection
    from flightctl.link.tlog import recording
    from flightctl.link.transport import transport_for_url

    (tmp_path / "not-a-folder").write_text("x")
    connection = MavConnection(transport_for_url("udpout:127.0.0.1:9"))
    ran = False
    async with recording(connection, tmp_path / "not-a-folder" / "KWL-1.tlog") as tlog:
        ran = True
    assert ran
    assert tlog is None
