"""The vehicle's side of MAVLink FTP for ArduPilot's @MISSION files, scripted on a ScriptedPeer.

It follows libraries/GCS_MAVLink/GCS_FTP.cpp and AP_Filesystem_Mission.cpp where they matter to a client:
one open file, requests queued five deep and answered in order by a worker, the last answer replayed for a
repeated request, TerminateSession acknowledged even when the file is then refused, a refused item leaving
the list cleared up to it; reads as GCS_FTP's OpenFileRO, ReadFile and BurstReadFile answer them (a made-up
size of 1 MiB, chunks numbered on from a burst request, an end-of-file NACK after the last); CalcFileCRC32 as
AP_Filesystem::crc32 works it out (ArduPilot's crc_crc32: the reflected table from 0, no final inversion),
written here from crc.cpp rather than borrowed from the code under test. Items land in the MissionPeer's store,
so both protocols see one vehicle.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque

from pymavlink import mavftp_op as op
from pymavlink.mavftp import FtpError as FtpCode

from flightctl.dialect import MAVLinkMessage, mavlink
from flightctl.missions import ardupilot_files
from flightctl.missions.formats.errors import MissionFileError
from flightctl.missions.model import MissionItem
from tests.support.mission_peer import MissionPeer

_HEADER = struct.Struct("<HBBBBBBI")
_QUEUE_DEPTH = 5
_ENDING = (op.OP_TerminateSession, op.OP_ResetSessions)


def _crc32_entry(n: int) -> int:
    for _ in range(8):
        n = (n >> 1) ^ 0xEDB88320 if n & 1 else n >> 1
    return n


_CRC32_TABLE = [_crc32_entry(n) for n in range(256)]  # crc.cpp's crc32_tab: the reflected 0xEDB88320 table


class FtpPeer:
    def __init__(self, mission_peer: MissionPeer) -> None:
        self.mission_peer = mission_peer
        self.peer = mission_peer.peer
        self.silent = False  # FTP switched off (BRD_OPTIONS): requests vanish
        self.busy = False  # another client holds the one file: opens are refused
        self.refuse_item_at: int | None = None  # conversion fails here, after the list was cleared
        self.files_closed = 0
        self.header_writes_complete: list[bool] = []  # per write at offset 0: was the rest already in place?
        self._written: set[int] = set()
        self.requests_dropped = 0
        self._queue: deque[tuple[tuple[int, int], bytes]] = deque()
        self._last_reply: tuple[tuple[int, int], int, int, bytes] | None = None  # sender, session, seq, payload
        self._open: tuple[int, int, str] | None = None  # session, mission type, path
        self._buffer = bytearray()
        self._reading: bytes | None = None  # the file open for reading, as it was when opened
        self.bursts = 0
        self.reads = 0
        self.checksums = 0
        self.crc_supported = True  # False: an older server, which answers CalcFileCRC32 UnknownCommand
        self.session_timeout_s = 3.0  # GCS_FTP.cpp FTP_SESSION_TIMEOUT
        self.invalid_sessions = 0  # requests refused because another session holds the file
        self._last_send = 0.0  # loop time of the server's last answer (ftp.last_send_ms)
        self.peer.on("FILE_TRANSFER_PROTOCOL", self._request)
        self._worker = asyncio.get_running_loop().create_task(self._work_forever())

    def stop(self) -> None:
        self._worker.cancel()

    def _request(self, message: MAVLinkMessage) -> None:
        if self.silent:
            return
        if len(self._queue) >= _QUEUE_DEPTH:
            self.requests_dropped += 1  # ArduPilot drops what its queue cannot hold
            return
        self._queue.append(((message.get_srcSystem(), message.get_srcComponent()), bytes(message.payload)))

    async def _work_forever(self) -> None:
        while True:
            await asyncio.sleep(0.001)
            while self._queue:
                sender, payload = self._queue.popleft()
                self._handle(sender, payload)

    def _handle(self, sender: tuple[int, int], payload: bytes) -> None:
        seq, session, opcode, size, _req, _burst, _pad, offset = _HEADER.unpack_from(payload)
        data = payload[12 : 12 + size]
        last = self._last_reply
        if last is not None and last[:2] == (sender, session) and (seq + 1) % 0x10000 == last[2]:
            self._send(sender, last[3])  # a repeated request gets the same answer
            return
        now = asyncio.get_running_loop().time()
        if self._open is not None and session != self._open[0] and opcode not in _ENDING:
            if now - self._last_send < self.session_timeout_s:  # IO on the wrong file is refused
                self.invalid_sessions += 1
                self._reply(sender, seq + 1, session, op.OP_Nack, bytes([FtpCode.InvalidSession]), req=opcode, offset=0)
                return
            self._open, self._reading = None, None  # a new session after the old one went quiet: closed
        if opcode == op.OP_BurstReadFile:
            self._burst(sender, seq, session, offset, size)
            return
        if opcode == op.OP_None:
            reply = (op.OP_Ack, b"")
        elif opcode == op.OP_OpenFileRO:
            reply = self._open_read(session, data)
        elif opcode == op.OP_ReadFile:
            reply = self._read(session, offset, size)
        elif opcode == op.OP_CreateFile:
            reply = self._create(session, data)
        elif opcode == op.OP_WriteFile:
            reply = self._write(session, offset, data)
        elif opcode in (op.OP_TerminateSession, op.OP_ResetSessions):
            reply = self._close(session)
        elif opcode == op.OP_CalcFileCRC32 and self.crc_supported:
            reply = self._checksum(data)
        else:
            reply = (op.OP_Nack, bytes([FtpCode.UnknownCommand]))
        answer, reply_data = reply
        header = _HEADER.pack((seq + 1) % 0x10000, session, answer, len(reply_data), opcode, 0, 0, offset)
        out = (header + reply_data).ljust(251, b"\0")
        self._last_reply = (sender, session, (seq + 1) % 0x10000, out)
        self._send(sender, out)

    def _reply(self, sender: tuple[int, int], seq: int, session: int, answer: int, data: bytes, **header: int) -> None:
        """Send one answer numbered ``seq`` and keep it for a repeated request."""
        out = (
            _HEADER.pack(
                seq % 0x10000, session, answer, len(data), header["req"], header.get("burst", 0), 0, header["offset"]
            )
            + data
        ).ljust(251, b"\0")
        self._last_reply = (sender, session, seq % 0x10000, out)
        self._send(sender, out)

    def _burst(self, sender: tuple[int, int], seq: int, session: int, offset: int, size: int) -> None:
        """GCS_FTP's BurstReadFile: up to 500 chunks, each numbered on, then an end-of-file NACK."""
        self.bursts += 1
        if self._reading is None or self._open is None or self._open[0] != session:
            self._reply(sender, seq + 1, session, op.OP_Nack, bytes([FtpCode.FileNotFound]), req=15, offset=offset)
            return
        max_read = size or 239
        for i in range(500):
            at = offset + i * max_read
            chunk = self._reading[at : at + min(239, max_read)]
            if not chunk:
                at -= max_read if i else 0  # ArduPilot leaves the NACK at the last chunk's offset
                break
            done = len(chunk) < max_read or i == 499
            self._reply(sender, seq + 1 + i, session, op.OP_Ack, chunk, req=15, offset=at, burst=int(done))
            if len(chunk) < max_read:
                at += len(chunk)  # the NACK that follows is at the file's end
                i += 1
                break
        else:
            return
        self._reply(sender, seq + 1 + i, session, op.OP_Nack, bytes([FtpCode.EndOfFile]), req=15, offset=at)

    def _open_read(self, session: int, data: bytes) -> tuple[int, bytes]:
        if self._open is not None or self.busy:
            return op.OP_Nack, bytes([FtpCode.Fail])
        path = data.split(b"\0")[0].decode()
        types = {path: kind for kind, path in ardupilot_files.PATHS.items()}
        if path not in types:
            return op.OP_Nack, bytes([FtpCode.FailErrno, 2])
        stored = [MissionItem.from_message(m) for m in self.mission_peer.stored[int(types[path])]]
        self._reading = ardupilot_files.encode(stored, types[path])
        self._open = (session, int(types[path]), path)
        return op.OP_Ack, struct.pack("<I", 1024 * 1024)  # AP_Filesystem_Mission::stat's fixed size

    def _checksum(self, data: bytes) -> tuple[int, bytes]:
        self.checksums += 1
        path = data.split(b"\0")[0].decode()
        types = {path: kind for kind, path in ardupilot_files.PATHS.items()}
        if path not in types:
            return op.OP_Nack, bytes([FtpCode.FailErrno, 2])
        stored = [MissionItem.from_message(m) for m in self.mission_peer.stored[int(types[path])]]
        crc = 0
        for byte in ardupilot_files.encode(stored, types[path]):
            crc = _CRC32_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return op.OP_Ack, struct.pack("<I", crc)

    def _read(self, session: int, offset: int, size: int) -> tuple[int, bytes]:
        self.reads += 1
        if self._reading is None or self._open is None or self._open[0] != session:
            return op.OP_Nack, bytes([FtpCode.FileNotFound])
        chunk = self._reading[offset : offset + min(size, 239)]
        return (op.OP_Ack, chunk) if chunk else (op.OP_Nack, bytes([FtpCode.EndOfFile]))

    def _send(self, sender: tuple[int, int], payload: bytes) -> None:
        self._last_send = asyncio.get_running_loop().time()
        self.peer.send(mavlink.MAVLink_file_transfer_protocol_message(0, sender[0], sender[1], list(payload)))

    def _create(self, session: int, data: bytes) -> tuple[int, bytes]:
        if self._open is not None or self.busy:
            return op.OP_Nack, bytes([FtpCode.Fail])
        path = data.split(b"\0")[0].decode()
        types = {path: int(kind) for kind, path in ardupilot_files.PATHS.items()}
        if path not in types:
            return op.OP_Nack, bytes([FtpCode.FileNotFound])
        self._open = (session, types[path], path)
        self._buffer = bytearray()
        self._written = set()
        return op.OP_Ack, b""

    def _write(self, session: int, offset: int, data: bytes) -> tuple[int, bytes]:
        if self._open is None:
            return op.OP_Nack, bytes([FtpCode.FileNotFound])
        if self._open[0] != session:
            return op.OP_Nack, bytes([FtpCode.InvalidSession])
        if offset == 0 and len(data) >= 10:
            total = 10 + ardupilot_files.ITEM_SIZE * struct.unpack_from("<H", data, 8)[0]
            self.header_writes_complete.append(self._written >= set(range(len(data), total, len(data))))
        self._written.add(offset)
        end = offset + len(data)
        if end > len(self._buffer):
            self._buffer.extend(bytes(end - len(self._buffer)))
        self._buffer[offset:end] = data
        return op.OP_Ack, b""

    def _close(self, session: int) -> tuple[int, bytes]:
        if self._open is None or self._open[0] != session:
            return op.OP_Ack, b""
        mission_type = self._open[1]
        self._open = None
        if self._reading is not None:
            self._reading = None
            return op.OP_Ack, b""
        self.files_closed += 1
        try:
            _type, items = ardupilot_files.decode(bytes(self._buffer))
        except MissionFileError:
            return op.OP_Ack, b""  # refused whole; ArduPilot still acknowledges the close
        stored = []
        for seq, item in enumerate(items):
            if seq == self.refuse_item_at:
                break
            message = item.message(seq, mission_type)
            stored.append(message)
        self.mission_peer.stored[mission_type] = stored
        return op.OP_Ack, b""
