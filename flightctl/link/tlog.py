"""A telemetry log (``.tlog``) of what came over the link, in the layout MAVProxy writes: each MAVLink frame,
as received, after the time it arrived as a big-endian unsigned 64-bit count of microseconds since the Unix
epoch. QGroundControl, Mission Planner, MAVExplorer, UAV Log Viewer and pymavlink read it as it is.

- **It never blocks the link.** The reader hands each frame to a bounded queue and goes on; a full queue
  drops the frame and counts it (``dropped``). A task writes what is queued, in batches, from a thread.
- **It never fills the disk.** Past ``max_bytes`` the file is rotated: ``x.tlog`` becomes ``x.tlog.1``, the
  older ones move up, and ``keep`` rotated files stay. Each file starts at a whole frame.
- **A log cut short reads back.** A SIGKILL can leave half a frame at the end; readers stop there, having
  read every whole frame before it. Each batch is flushed to the kernel as it is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from flightctl.dialect import MAVLinkMessage
from flightctl.link.connection import EVERY_MESSAGE, MavConnection
from flightctl.tasks import cancel_and_wait

log = logging.getLogger(__name__)

TIMESTAMP = struct.Struct(">Q")
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # a day of a delivery drone's telemetry is a few tens of megabytes
DEFAULT_KEEP = 3
BATCH = 512  # frames written in one call to the thread
END = b""  # queued by the close: everything before it is written, then the writer stops
CLOSE_TIMEOUT_S = 10.0


@dataclass
class TlogStats:
    frames: int = 0  # written
    dropped: int = 0  # the queue was full: the writer could not keep up
    rotations: int = 0


class TlogWriter:
    """Record frames to ``path``: ``record`` from the link's reader, inside ``async with``."""

    def __init__(
        self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, keep: int = DEFAULT_KEEP, queue_size: int = 10_000
    ) -> None:
        if max_bytes < 1024 or keep < 1:
            raise ValueError("a tlog needs max_bytes of at least 1 KiB and keep of at least 1")
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.stats = TlogStats()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self._file: BinaryIO | None = None
        self._size = 0
        self._task: asyncio.Task[None] | None = None

    def record(self, message: MAVLinkMessage) -> None:
        """Queue one received frame with its arrival time; never blocks, never raises (a full queue drops it)."""
        frame = message.get_msgbuf()
        if not frame:
            return  # never the end mark
        try:
            self._queue.put_nowait(TIMESTAMP.pack(int(time.time() * 1e6)) + bytes(frame))
        except asyncio.QueueFull:
            self.stats.dropped += 1

    async def __aenter__(self) -> Self:
        self._file, self._size = await asyncio.to_thread(self._open)
        self._task = asyncio.create_task(self._write_forever(), name=f"tlog {self.path.name}")
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            # What came before the end is written: the end mark goes in behind it, and the writer stops there.
            # Never a cancel while a write runs in its thread: the file would then be written from two.
            finished = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._queue.put(END)
                    await self._task
                    finished = True
            if not finished:
                log.error("tlog %s: the disk did not take the last frames in %g s", self.path, CLOSE_TIMEOUT_S)
                await cancel_and_wait(self._task)
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
            self._file = None
        if self.stats.dropped:
            log.warning("tlog %s: %d frames dropped (the disk did not keep up)", self.path, self.stats.dropped)

    def _open(self) -> tuple[BinaryIO, int]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("ab")
        return handle, handle.tell()

    def _drain(self) -> list[bytes]:
        frames: list[bytes] = []
        while len(frames) < BATCH:
            try:
                frames.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return frames

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get(), *self._drain()]
            ended = END in batch
            batch = batch[: batch.index(END)] if ended else batch
            failure = None
            try:
                await asyncio.to_thread(self._write, batch)
            except OSError as exc:  # a full or failing disk costs the log, never the flight
                failure = exc
            if failure is not None:
                self.stats.dropped += len(batch)
                log.error("tlog %s: %s; frames dropped", self.path, failure)
            if ended:
                return

    def _write(self, frames: list[bytes]) -> None:
        for frame in frames:
            if self._size + len(frame) > self.max_bytes and self._size > 0:
                self._rotate()
            assert self._file is not None
            self._file.write(frame)
            self._size += len(frame)
            self.stats.frames += 1
        assert self._file is not None
        self._file.flush()

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        oldest = self.path.with_name(f"{self.path.name}.{self.keep}")
        with contextlib.suppress(FileNotFoundError):
            oldest.unlink()
        for n in range(self.keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                self.path.with_name(f"{self.path.name}.{n}").rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        self._file = self.path.open("ab")
        self._size = 0
        self.stats.rotations += 1


def tlog_path(folder: Path, name: str, when: datetime | None = None) -> Path:
    """``<folder>/<name>-<UTC time>.tlog``: a flight's log beside its journal, named after its order."""
    when = when or datetime.now(UTC)
    return folder / f"{name}-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}.tlog"


@contextlib.asynccontextmanager
async def recording(connection: MavConnection, path: Path) -> AsyncIterator[TlogWriter | None]:
    """Everything ``connection`` receives, logged to ``path`` while the block runs. A log that cannot be opened
    (a full or read-only disk) costs the log, never the flight: the block runs without one (None)."""
    tlog = TlogWriter(path)
    failure: OSError | None = None
    try:
        await tlog.__aenter__()
    except OSError as exc:
        failure = exc
    if failure is not None:
        log.error("tlog %s: %s; this flight has no telemetry log", path, failure)
        yield None
        return
    stop = connection.add_listener(EVERY_MESSAGE, tlog.record)
    try:
        yield tlog
    finally:
        stop()
        await tlog.__aexit__(None, None, None)
