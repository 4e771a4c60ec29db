"""MAVLink FTP (https://mavlink.io/en/services/ftp.html), the client side of writing a file to the autopilot.

ArduPilot serves its mission, fence and rally lists as files (``@MISSION/mission.dat`` and friends), and one
FTP write carries six mission items where the mission protocol carries one per round trip. What ArduPilot's
server does (libraries/GCS_MAVLink/GCS_FTP.cpp) shapes this client:

- it has one open file for the whole autopilot, across all links: an open that finds it taken is refused;
  an idle session (3 s) is closed when a request for another session arrives, so every transfer here uses a
  fresh session number and a crashed client's session cannot block the next one for long;
- requests are queued five deep and answered in order by a worker thread; a request repeated with the
  sequence number it was answered with gets that answer again, so a lost answer is recovered by repeating;
- a write lands at its offset, so repeating one is harmless: up to five are kept in flight (as pymavlink's
  own MAVFTP client does) and any that goes unanswered is sent again;
- closing a file (TerminateSession) is acknowledged even when ArduPilot then rejects what was written, so
  the caller has to confirm the outcome another way.

Opcodes and error names come from pymavlink's ``mavftp``; the I/O is ours, on the MavConnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pymavlink import mavftp_op as op
from pymavlink.mavftp import FtpError as FtpCode

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.errors import FlightctlError, VehicleTimeout
from flightctl.link.connection import MavConnection
from flightctl.link.inbox import Inbox

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<HBBBBBBI")  # seq, session, opcode, size, req_opcode, burst_complete, padding, offset
MAX_DATA = 239  # payload bytes per FTP message: 251 minus the header
_PAYLOAD = _HEADER.size + MAX_DATA

WriteProgress = Callable[[int, int], None]  # bytes acknowledged, bytes in all


@dataclass(frozen=True)
class FtpPolicy:
    reply_timeout_s: float = 1.0  # wait for an answer before repeating the request
    attempts: int = 8  # sends of one request (or one write) before giving up
    write_window: int = 5  # writes in flight: ArduPilot queues five requests and drops the sixth


class FtpError(FlightctlError):
    """An FTP request was refused or went unanswered; says which operation, on which file, and why."""

    def __init__(self, operation: str, path: str, detail: str, *, code: int | None = None) -> None:
        self.operation = operation
        self.path = path
        self.code = code
        super().__init__(f"MAVFTP {operation} {path}: {detail}")


class FtpTimeout(FtpError, VehicleTimeout):
    """The vehicle stopped answering FTP requests."""


@dataclass(frozen=True)
class _Reply:
    seq: int
    session: int
    opcode: int
    req_opcode: int
    offset: int
    data: bytes

    @classmethod
    def parse(cls, message: MAVLinkMessage) -> _Reply:
        payload = bytes(message.payload)
        seq, session, opcode, size, req_opcode, _burst, _pad, offset = _HEADER.unpack_from(payload)
        return cls(seq, session, opcode, req_opcode, offset, payload[_HEADER.size : _HEADER.size + min(size, MAX_DATA)])

    def refusal(self) -> tuple[int | None, str]:
        """For a NAK: its error code and what it means."""
        if not self.data:
            return None, "refused without a reason"
        code = self.data[0]
        try:
            reason = FtpCode(code).name
        except ValueError:
            reason = f"error {code}"
        if code == FtpCode.FailErrno and len(self.data) > 1:
            reason += f" (errno {self.data[1]})"
        return code, reason


_OPERATION_NAMES = {
    op.OP_None: "ping",
    op.OP_CreateFile: "create",
    op.OP_WriteFile: "write",
    op.OP_TerminateSession: "close",
}


class MavFtp:
    """``vehicle.ftp``: write whole files to the autopilot. One transfer at a time (the autopilot has one file)."""

    def __init__(self, connection: MavConnection, policy: FtpPolicy | None = None) -> None:
        self._connection = connection
        self.policy = policy or FtpPolicy()
        self._lock = asyncio.Lock()
        self._seq = itertools.count(random.randrange(0x10000))
        self._sessions = itertools.count(random.randrange(256))

    async def write_file(
        self, path: str, data: bytes, *, progress: WriteProgress | None = None, first_chunk_last: bool = False
    ) -> None:
        """Create (or truncate) ``path`` on the vehicle, write ``data`` and close it. Raises ``FtpError``.

        ``first_chunk_last``: write the chunk at offset 0 only once every other chunk is acknowledged. For a
        file the server checks by its header (ArduPilot's @MISSION files) an interrupted transfer then
        never leaves a file that looks whole but has holes in it.
        """
        name = path.encode() + b"\0"
        if len(name) > MAX_DATA:
            raise FtpError("create", path, f"a path is at most {MAX_DATA - 1} bytes")
        async with self._lock:
            session = next(self._sessions) % 256
            with self._connection.inbox(
                "FILE_TRANSFER_PROTOCOL", self._for_us, what=f"MAVFTP {path}", maxsize=64
            ) as replies:
                # Few tries: a vehicle with FTP switched off never answers, and the caller has another way.
                await self._exchange(replies, session, op.OP_CreateFile, path, data=name, attempts=3)
                try:
                    await self._write_all(replies, session, path, data, progress, first_chunk_last=first_chunk_last)
                except BaseException:
                    # Free the vehicle's one file for the next transfer, briefly: a dead link must not hold
                    # up a cancellation. Left open, ArduPilot drops it 3 s after another session starts.
                    with contextlib.suppress(FlightctlError):
                        await self._exchange(replies, session, op.OP_TerminateSession, path, attempts=2)
                    raise
                await self._exchange(replies, session, op.OP_TerminateSession, path)

    async def ping(self) -> None:
        """An empty request the server acknowledges: is it answering? Raises ``FtpTimeout`` if not."""
        async with self._lock:
            with self._connection.inbox("FILE_TRANSFER_PROTOCOL", self._for_us, what="MAVFTP ping") as replies:
                await self._exchange(replies, next(self._sessions) % 256, op.OP_None, "(server)")

    def _for_us(self, message: MAVLinkMessage) -> bool:
        codec = self._connection.codec
        return bool(message.target_system == codec.system_id and message.target_component == codec.component_id)

    def _send(self, seq: int, session: int, opcode: int, *, offset: int = 0, data: bytes = b"") -> int:
        request = op.FTP_OP(seq % 0x10000, session, opcode, len(data), 0, 0, offset, bytearray(data))
        payload = request.pack()
        payload.extend(bytes(_PAYLOAD - len(payload)))
        c = self._connection
        c.send(mavlink.MAVLink_file_transfer_protocol_message(0, c.target_system, c.target_component, list(payload)))
        return seq % 0x10000

    async def _exchange(
        self, replies: Inbox, session: int, opcode: int, path: str, *, data: bytes = b"", attempts: int | None = None
    ) -> _Reply:
        """One request, repeated with the same sequence number until answered (the server replays answers)."""
        operation = _OPERATION_NAMES[opcode]
        attempts = min(attempts or self.policy.attempts, self.policy.attempts)
        seq = next(self._seq) % 0x10000
        loop = asyncio.get_running_loop()
        for _attempt in range(attempts):
            self._send(seq, session, opcode, data=data)
            deadline = loop.time() + self.policy.reply_timeout_s
            while (remaining := deadline - loop.time()) > 0:
                try:
                    reply = _Reply.parse(await replies.next(remaining))
                except VehicleTimeout:
                    break
                if reply.session != session or reply.req_opcode != opcode or reply.seq != (seq + 1) % 0x10000:
                    continue  # a late answer to something earlier
                if reply.opcode == op.OP_Nack:
                    code, reason = reply.refusal()
                    raise FtpError(operation, path, reason, code=code)
                return reply
        raise FtpTimeout(operation, path, f"no answer to {attempts} requests")

    async def _write_all(
        self,
        replies: Inbox,
        session: int,
        path: str,
        data: bytes,
        progress: WriteProgress | None,
        *,
        first_chunk_last: bool,
    ) -> None:
        offsets = list(range(0, len(data), MAX_DATA))
        phases = [offsets[1:], offsets[:1]] if first_chunk_last else [offsets]
        done = 0
        for phase in phases:
            done = await self._write_chunks(replies, session, path, data, phase, done, progress)

    async def _write_chunks(
        self,
        replies: Inbox,
        session: int,
        path: str,
        data: bytes,
        offsets: list[int],
        done: int,
        progress: WriteProgress | None,
    ) -> int:
        """Write the chunks at ``offsets``, ``write_window`` at a time, until each is acknowledged. Returns the
        bytes acknowledged so far (``done`` before)."""
        loop = asyncio.get_running_loop()
        waiting = list(reversed(offsets))  # popped from the end: lowest offset first
        in_flight: dict[int, float] = {}  # offset -> when last sent
        sends: dict[int, int] = {}  # offset -> how often sent
        offset_of_seq: dict[int, int] = {}

        def send(offset: int) -> None:
            sends[offset] = sends.get(offset, 0) + 1
            if sends[offset] > self.policy.attempts:
                raise FtpTimeout("write", path, f"no answer to {self.policy.attempts} writes at offset {offset}")
            chunk = data[offset : offset + MAX_DATA]
            seq = self._send(next(self._seq), session, op.OP_WriteFile, offset=offset, data=chunk)
            offset_of_seq[seq] = offset
            in_flight[offset] = loop.time()

        while waiting or in_flight:
            while waiting and len(in_flight) < self.policy.write_window:
                send(waiting.pop())
            oldest = min(in_flight.values())
            try:
                message = await replies.next(max(oldest + self.policy.reply_timeout_s - loop.time(), 0.001))
            except VehicleTimeout:
                now = loop.time()
                for offset, sent_at in list(in_flight.items()):
                    if now - sent_at >= self.policy.reply_timeout_s:
                        log.debug("MAVFTP %s: no answer to the write at offset %d; sending it again", path, offset)
                        send(offset)
                continue
            reply = _Reply.parse(message)
            if reply.session != session or reply.req_opcode != op.OP_WriteFile:
                continue
            answered = offset_of_seq.get((reply.seq - 1) % 0x10000)
            if answered is None:
                continue
            if reply.opcode == op.OP_Nack:
                code, reason = reply.refusal()
                raise FtpError("write", path, f"{reason} at offset {answered}", code=code)
            if in_flight.pop(answered, None) is not None:
                done += len(data[answered : answered + MAX_DATA])
                if progress is not None:
                    progress(done, len(data))
        return done
