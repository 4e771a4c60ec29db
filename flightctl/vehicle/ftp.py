"""MAVLink FTP (https://mavlink.io/en/services/ftp.html), the client side: writing and reading whole files.

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
  the caller has to confirm the outcome another way;
- a burst read (BurstReadFile) is answered with up to 500 chunks in a row, numbered on from the request,
  the last marked ``burst_complete`` and followed by an end-of-file NACK; a read (ReadFile) at an offset
  is answered with that chunk, so lost chunks are read again one by one, several in flight.

Opcodes and error names come from pymavlink's ``mavftp``; the I/O is ours, on the MavConnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

from pymavlink import mavftp_op as op

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.errors import FlightctlError, VehicleTimeout
from flightctl.link.connection import MavConnection
from flightctl.link.inbox import Inbox
from flightctl.link.rtt import RttEstimator
from flightctl.vehicle.ftp_chunks import FileChunks

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<HBBBBBBI")  # seq, session, opcode, size, req_opcode, burst_complete, padding, offset
MAX_DATA = 239  # payload bytes per FTP message: 251 minus the header
_PAYLOAD = _HEADER.size + MAX_DATA

FTP_RTT = "ftp"
WriteProgress = Callable[[int, int], None]  # bytes acknowledged, bytes in all
ReadProgress = Callable[[int, int | None], None]  # bytes read, bytes in all once known
_BURST_MAX = 500  # answers to one burst read (GCS_FTP.cpp: transfer_size)


@dataclass(frozen=True)
class FtpPolicy:
    # How long to wait for an answer before repeating a request follows the link's measured round trip
    # (``MavConnection.rtt("ftp")``), between these bounds, backing off at most 4x for a request resent.
    min_reply_timeout_s: float = 0.1
    reply_timeout_s: float = 1.0
    # A transfer gives up only when the server has answered nothing for this long. A fixed number of tries
    # per request made a long file fail on a lossy radio while the link still worked (8 tries per chunk lost
    # about one 500-item upload in five at 30 % loss each way).
    silent_s: float = 6.0
    write_window: int = 5  # writes in flight: ArduPilot queues five requests and drops the sixth
    # A stale session (its close lost) is dropped by ArduPilot once it has sent nothing for this long
    # (GCS_FTP.cpp FTP_SESSION_TIMEOUT, 3 s) and another session asks: the wait before asking again.
    stale_session_wait_s: float = 3.2
    # How a read starts: with one burst ("always"), chunk by chunk from the start ("never"), or with a burst once
    # the link has lost a frame from the vehicle ("after_loss"). ArduPilot paces a burst to a third of the port's
    # bandwidth (GCS_FTP.cpp burst_delay_ms), so on a clean link five reads in flight are faster (0.2 s against
    # 0.5 s for 500 items over SITL's TCP); through loss one request for the whole file, then reads of only
    # the gaps, costs far fewer round trips than every chunk asked and timed out for.
    burst_read: Literal["always", "never", "after_loss"] = "after_loss"


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
    burst_complete: bool = False

    @classmethod
    def parse(cls, message: MAVLinkMessage) -> _Reply:
        payload = bytes(message.payload)
        seq, session, opcode, size, req_opcode, burst, _pad, offset = _HEADER.unpack_from(payload)
        data = payload[_HEADER.size : _HEADER.size + min(size, MAX_DATA)]
        return cls(seq, session, opcode, req_opcode, offset, data, bool(burst))

    def end_of_file(self) -> bool:
        return self.opcode == op.OP_Nack and self.data[:1] == bytes([mavlink.MAV_FTP_ERR_EOF])

    def refusal(self) -> tuple[int | None, str]:
        """For a NAK: its error code and what it means."""
        if not self.data:
            return None, "refused without a reason"
        code = self.data[0]
        # The dialect's MAV_FTP_ERR descriptions begin with the code's name ("FileNotFound: ..."); pymavlink's
        # mavftp has the same names but imports mavutil, and with it numpy, into every command that links.
        entry = mavlink.enums["MAV_FTP_ERR"].get(code)
        reason = entry.description.split(":", 1)[0] if entry is not None and entry.description else f"error {code}"
        if code == mavlink.MAV_FTP_ERR_FAILERRNO and len(self.data) > 1:
            reason += f" (errno {self.data[1]})"
        return code, reason


def ardupilot_crc32(data: bytes) -> int:
    """What ``MavFtp.crc32`` answers for a file holding ``data``."""
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


_OPERATION_NAMES = {
    op.OP_None: "ping",
    op.OP_CalcFileCRC32: "crc32",
    op.OP_CreateFile: "create",
    op.OP_OpenFileRO: "open",
    op.OP_WriteFile: "write",
    op.OP_TerminateSession: "close",
}


class MavFtp:
    """``vehicle.ftp``: write and read whole files on the autopilot. One transfer at a time (the autopilot has one
    file open for FTP)."""

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
        async with self._file(path, op.OP_CreateFile) as (replies, session):
            await self._write_all(replies, session, path, data, progress, first_chunk_last=first_chunk_last)

    async def read_file(self, path: str, *, progress: ReadProgress | None = None) -> bytes:
        """The whole of ``path`` on the vehicle. Raises ``FtpError``.

        One burst read asks the server to stream the file (ArduPilot sends up to 500 chunks, each answer to
        the one request); what the radio lost is then read chunk by chunk (``ReadFile``), several in flight,
        each resent on its own timer, until the end of the file is known and nothing below it is missing.
        ArduPilot's @MISSION files report a made-up size (1 MiB), so the end is where a read finds it: a
        short chunk, or an end-of-file refusal.
        """
        chunks = FileChunks(MAX_DATA)
        async with self._file(path, op.OP_OpenFileRO) as (replies, session):
            if self.policy.burst_read == "always" or (
                self.policy.burst_read == "after_loss" and self._connection.frames_lost > 0
            ):
                await self._burst(replies, session, path, chunks, progress)
            await self._fill_gaps(replies, session, path, chunks, progress)
        return chunks.whole()

    async def crc32(self, path: str) -> int:
        """ArduPilot's CRC-32 of the whole of ``path``, worked out on the vehicle (CalcFileCRC32: one round trip,
        however long the file). ArduPilot's is the reflected CRC-32 table started from 0 with no final
        inversion (AP_Filesystem::crc32, crc_crc32): ``ardupilot_crc32`` gives the same of local bytes."""
        name = path.encode() + b"\0"
        if len(name) > MAX_DATA:
            raise FtpError("crc32", path, f"a path is at most {MAX_DATA - 1} bytes")
        async with self._lock:
            with self._connection.inbox("FILE_TRANSFER_PROTOCOL", self._for_us, what=f"MAVFTP crc32 {path}") as replies:
                reply = await self._exchange(replies, next(self._sessions) % 256, op.OP_CalcFileCRC32, path, data=name)
        if len(reply.data) < 4:
            raise FtpError("crc32", path, f"answered with {len(reply.data)} bytes, not a 4-byte checksum")
        return int.from_bytes(reply.data[:4], "little")

    async def ping(self) -> None:
        """An empty request the server acknowledges: is it answering? Raises ``FtpTimeout`` if not."""
        async with self._lock:
            with self._connection.inbox("FILE_TRANSFER_PROTOCOL", self._for_us, what="MAVFTP ping") as replies:
                await self._exchange(replies, next(self._sessions) % 256, op.OP_None, "(server)")

    @contextlib.asynccontextmanager
    async def _file(self, path: str, opcode: int) -> AsyncIterator[tuple[Inbox, int]]:
        """``path`` open (``opcode``: create, or open to read) in a fresh session, for one transfer at a time.
        Closed as surely as the transfer went on when it succeeds (a session left open refuses the next
        client for 3 s), and briefly when it failed or was cancelled."""
        name = path.encode() + b"\0"
        if len(name) > MAX_DATA:
            raise FtpError(_OPERATION_NAMES[opcode], path, f"a path is at most {MAX_DATA - 1} bytes")
        async with self._lock:
            session = next(self._sessions) % 256
            with self._connection.inbox(
                "FILE_TRANSFER_PROTOCOL", self._for_us, what=f"MAVFTP {path}", maxsize=600
            ) as replies:
                await self._open(replies, session, opcode, path, name)
                try:
                    yield replies, session
                except BaseException:
                    await self._close_briefly(replies, session, path)
                    raise
                await self._exchange(replies, session, op.OP_TerminateSession, path)

    async def _open(self, replies: Inbox, session: int, opcode: int, path: str, name: bytes) -> None:
        """Open ``path`` (create it, or open it to read) in a fresh ``session``.

        Given up after ``silent_s`` like any request: only a vehicle that offers FTP is asked, and at 30 %
        loss each way a 3 s limit failed about one open in thirty (the caller then rests FTP for a minute). A
        refusal for InvalidSession is the previous client's session, still open because its close was lost
        (a radio, a killed process): ArduPilot closes it when a new session asks after 3 s in which it sent
        nothing, and every refusal it sends restarts that clock, so this waits the 3 s out in silence and
        asks once more."""
        try:
            await self._exchange(replies, session, opcode, path, data=name)
        except FtpError as refused:
            if refused.code != mavlink.MAV_FTP_ERR_INVALIDSESSION:
                raise
            wait_s = self.policy.stale_session_wait_s
            log.info("MAVFTP %s: another session holds the file; waiting %g s for the server to drop it", path, wait_s)
            await asyncio.sleep(wait_s)
            await self._exchange(replies, session, opcode, path, data=name)

    async def _close_briefly(self, replies: Inbox, session: int, path: str) -> None:
        """Free the vehicle's one file after a failure, briefly: a dead link must not hold up a cancellation.
        Left open, ArduPilot drops it 3 s after another session asks."""
        with contextlib.suppress(FlightctlError):
            await self._exchange(replies, session, op.OP_TerminateSession, path, give_up_s=1.0)

    def _for_us(self, message: MAVLinkMessage) -> bool:
        codec = self._connection.codec
        return bool(message.target_system == codec.system_id and message.target_component == codec.component_id)

    def _send(
        self, seq: int, session: int, opcode: int, *, offset: int = 0, data: bytes = b"", size: int | None = None
    ) -> int:
        """Send one request; ``size`` is the data's length unless given (a read says how much it wants)."""
        length = len(data) if size is None else size
        request = op.FTP_OP(seq % 0x10000, session, opcode, length, 0, 0, offset, bytearray(data))
        payload = request.pack()
        payload.extend(bytes(_PAYLOAD - len(payload)))
        c = self._connection
        c.send(mavlink.MAVLink_file_transfer_protocol_message(0, c.target_system, c.target_component, list(payload)))
        return seq % 0x10000

    def _rtt(self) -> RttEstimator:
        p = self.policy
        return self._connection.rtt(FTP_RTT, min_timeout_s=p.min_reply_timeout_s, max_timeout_s=p.reply_timeout_s)

    async def _exchange(
        self, replies: Inbox, session: int, opcode: int, path: str, *, data: bytes = b"", give_up_s: float | None = None
    ) -> _Reply:
        """One request, repeated with the same sequence number until answered (the server replays answers),
        each wait following the link's round trip; ``FtpTimeout`` after ``give_up_s`` (default: the policy's
        ``silent_s``) without an answer."""
        operation = _OPERATION_NAMES[opcode]
        give_up_s = min(give_up_s or self.policy.silent_s, self.policy.silent_s)
        seq = next(self._seq) % 0x10000
        loop = asyncio.get_running_loop()
        first_sent = loop.time()
        for resends in itertools.count():
            self._send(seq, session, opcode, data=data)
            sent_at = loop.time()
            # Asked afresh each sending: a link measured meanwhile (the TIMESYNC probe while a first open
            # waits) sets the next wait.
            rtt = self._rtt()
            deadline = min(sent_at + rtt.timeout_s(resends), first_sent + give_up_s)
            while (remaining := deadline - loop.time()) > 0:
                try:
                    reply = _Reply.parse(await replies.next(remaining))
                except VehicleTimeout:
                    break
                if reply.session != session or reply.req_opcode != opcode or reply.seq != (seq + 1) % 0x10000:
                    continue  # a late answer to something earlier
                if resends == 0:  # Karn: an answer to a repeated request may be the first one's
                    rtt.sample(loop.time() - sent_at)
                if reply.opcode == op.OP_Nack:
                    code, reason = reply.refusal()
                    raise FtpError(operation, path, reason, code=code)
                return reply
            if loop.time() - first_sent >= give_up_s:
                raise FtpTimeout(operation, path, f"no answer in {give_up_s:g} s ({resends + 1} requests)")
        raise AssertionError("unreachable: the loop above returns or raises")

    async def _burst(
        self, replies: Inbox, session: int, path: str, chunks: FileChunks, progress: ReadProgress | None
    ) -> None:
        """Ask for the file as one burst and keep what arrives, until the burst says it is complete or the
        stream pauses for longer than a round trip would explain (its end was lost)."""
        loop = asyncio.get_running_loop()
        rtt = self._rtt()
        seq = self._send(next(self._seq), session, op.OP_BurstReadFile, size=MAX_DATA)
        # The server numbers a burst's answers on from our request; ours must not land on one of them, or it
        # would be taken for a repeat of the burst's last answer and get that answer again.
        self._seq = itertools.count(seq + _BURST_MAX + 2)
        sent_at = heard_at = loop.time()
        while True:
            # The first answer may wait behind the server's queue; later ones come back to back (ArduPilot
            # spaces them on a slow serial link), so a pause of a round trip means the rest was lost.
            pause_s = rtt.timeout_s(2 if heard_at == sent_at else 1)
            try:
                reply = _Reply.parse(await replies.next(max(heard_at + pause_s - loop.time(), 0.001)))
            except VehicleTimeout:
                return
            if reply.session != session or reply.req_opcode != op.OP_BurstReadFile:
                continue
            if not 0 < (reply.seq - seq) % 0x10000 <= _BURST_MAX + 1:
                continue
            if heard_at == sent_at:
                rtt.sample(loop.time() - sent_at)
            heard_at = loop.time()
            if reply.opcode == op.OP_Nack:
                if not reply.end_of_file():
                    code, reason = reply.refusal()
                    raise FtpError("burst read", path, reason, code=code)
                return  # its offset is not where the file ends (ArduPilot leaves it at the last chunk sent)
            chunks.add(reply.offset, reply.data)
            if progress is not None:
                progress(chunks.received, chunks.end)
            if reply.burst_complete and chunks.end is None:
                return  # a long file: the rest is read by the gap fill

    async def _fill_gaps(
        self, replies: Inbox, session: int, path: str, chunks: FileChunks, progress: ReadProgress | None
    ) -> None:
        """Read what the burst did not bring, ``write_window`` chunks in flight, each resent on its own timer
        (the same selective repeat as writes), until the file's end is known and nothing before it is
        missing; ``FtpTimeout`` after ``silent_s`` without an answer."""
        loop = asyncio.get_running_loop()
        rtt = self._rtt()
        due: dict[int, float] = {}
        resends: dict[int, int] = {}
        sending_of_seq: dict[int, tuple[int, float]] = {}
        heard_at = loop.time()

        def send(offset: int) -> None:
            resends[offset] = resends.get(offset, -1) + 1
            seq = self._send(next(self._seq), session, op.OP_ReadFile, offset=offset, size=MAX_DATA)
            now = loop.time()
            sending_of_seq[seq] = (offset, now)
            due[offset] = now + rtt.timeout_s(resends[offset])

        while not chunks.complete():
            for offset in chunks.wanted(2 * self.policy.write_window):
                if len(due) >= self.policy.write_window:
                    break
                if offset not in due:
                    send(offset)
            if not due:  # nothing missing, yet no end: chunks that contradict each other
                raise FtpError("read", path, "the file changed while it was read")
            give_up_at = heard_at + self.policy.silent_s
            try:
                message = await replies.next(max(min(min(due.values()), give_up_at) - loop.time(), 0.001))
            except VehicleTimeout:
                now = loop.time()
                if now >= give_up_at:
                    detail = f"no answer to any read for {self.policy.silent_s:g} s ({chunks.received} bytes read)"
                    raise FtpTimeout("read", path, detail) from None
                for offset in [offset for offset, at in due.items() if at <= now]:
                    send(offset)
                continue
            reply = _Reply.parse(message)
            if reply.session != session:
                continue
            if reply.req_opcode == op.OP_BurstReadFile and reply.opcode == op.OP_Ack:
                chunks.add(reply.offset, reply.data)  # the burst, still streaming on a slow radio
                heard_at = loop.time()
                continue
            sending = (
                sending_of_seq.pop((reply.seq - 1) % 0x10000, None) if reply.req_opcode == op.OP_ReadFile else None
            )
            if sending is None:
                continue
            offset, sent_at = sending
            heard_at = loop.time()
            rtt.sample(heard_at - sent_at)
            due.pop(offset, None)
            if reply.end_of_file():
                chunks.end_at_or_before(offset)
            elif reply.opcode == op.OP_Nack:
                code, reason = reply.refusal()
                raise FtpError("read", path, f"{reason} at offset {offset}", code=code)
            else:
                chunks.add(offset, reply.data)
                if progress is not None:
                    progress(chunks.received, chunks.end)

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
        rtt = self._rtt()
        waiting = list(reversed(offsets))  # popped from the end: lowest offset first
        due: dict[int, float] = {}  # offset in flight -> when to send it again
        resends: dict[int, int] = {}  # offset -> sendings before the last one (its backoff)
        # Every sending has its own sequence number, so an answer says which sending it answers: each is a
        # true round-trip sample, resent or not, and a late answer still completes its offset.
        sending_of_seq: dict[int, tuple[int, float]] = {}  # seq -> (offset, when sent)
        heard_at = loop.time()

        def send(offset: int) -> None:
            resends[offset] = resends.get(offset, -1) + 1
            chunk = data[offset : offset + MAX_DATA]
            seq = self._send(next(self._seq), session, op.OP_WriteFile, offset=offset, data=chunk)
            now = loop.time()
            sending_of_seq[seq] = (offset, now)
            due[offset] = now + rtt.timeout_s(resends[offset])

        while waiting or due:
            while waiting and len(due) < self.policy.write_window:
                send(waiting.pop())
            give_up_at = heard_at + self.policy.silent_s
            try:
                message = await replies.next(max(min(min(due.values()), give_up_at) - loop.time(), 0.001))
            except VehicleTimeout:
                now = loop.time()
                if now >= give_up_at:
                    raise FtpTimeout(
                        "write", path, f"no answer to any write for {self.policy.silent_s:g} s "
                        f"({done} of {len(data)} bytes written)",
                    ) from None  # fmt: skip
                # Selective repeat: only the writes whose own wait is over go again.
                for offset in [offset for offset, at in due.items() if at <= now]:
                    log.debug("MAVFTP %s: no answer to the write at offset %d; sending it again", path, offset)
                    send(offset)
                continue
            reply = _Reply.parse(message)
            if reply.session != session or reply.req_opcode != op.OP_WriteFile:
                continue
            sending = sending_of_seq.pop((reply.seq - 1) % 0x10000, None)
            if sending is None:
                continue
            answered, sent_at = sending
            heard_at = loop.time()
            rtt.sample(heard_at - sent_at)
            if reply.opcode == op.OP_Nack:
                code, reason = reply.refusal()
                raise FtpError("write", path, f"{reason} at offset {answered}", code=code)
            if due.pop(answered, None) is not None:
                done += len(data[answered : answered + MAX_DATA])
                if progress is not None:
                    progress(done, len(data))
        return done
