"""A bad radio between a MAVLink client and SITL: a UDP endpoint for the client, TCP to SITL, datagrams dropped.

A telemetry radio or a cellular modem delivers whole packets or nothing, and SITL writes several messages in
one go, so one loss takes them together: each chunk read from SITL becomes one datagram, dropped whole with
the given probability, and each datagram from the client is dropped whole the same way. ``cut()`` stops
everything in both directions (a radio out of range for good); ``restore()`` brings it back.

Runs on the caller's event loop; the client connects with ``relay.url`` (``udpout:127.0.0.1:PORT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass

from flightctl.tasks import cancel_and_wait
from sitl.errors import SitlError


@dataclass
class RelayStats:
    datagrams_to_client: int = 0
    datagrams_from_client: int = 0
    dropped_to_client: int = 0
    dropped_from_client: int = 0


class _ClientSide(asyncio.DatagramProtocol):
    def __init__(self, relay: LossyRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        self.relay._from_client(data, addr)


class LossyRelay:
    def __init__(self, sitl_host: str, sitl_port: int, *, loss: float, seed: int = 0) -> None:
        if not 0.0 <= loss < 1.0:
            raise SitlError(f"relay loss {loss} is outside [0, 1)")
        self._target = (sitl_host, sitl_port)
        self.loss = loss
        self.stats = RelayStats()
        self.is_cut = False
        self._rng = random.Random(seed)
        self._udp: asyncio.DatagramTransport | None = None
        self._client: tuple[str | bytes | int, ...] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        if self._udp is None:
            raise SitlError("relay not started")
        host, port = self._udp.get_extra_info("sockname")[:2]
        return f"udpout:{host}:{port}"

    async def __aenter__(self) -> LossyRelay:
        loop = asyncio.get_running_loop()
        reader, self._writer = await asyncio.open_connection(*self._target)
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _ClientSide(self), local_addr=("127.0.0.1", 0))
        self._pump = asyncio.create_task(self._to_client(reader), name="relay to client")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._pump is not None:
            failed = await cancel_and_wait(self._pump)
            if failed is not None:
                raise failed
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    def cut(self) -> None:
        self.is_cut = True

    def restore(self) -> None:
        self.is_cut = False

    def _drop(self) -> bool:
        return self.is_cut or self._rng.random() < self.loss

    def _from_client(self, data: bytes, addr: tuple[str | bytes | int, ...]) -> None:
        self._client = addr  # answer whoever spoke last, as SITL's own UDP ports do
        self.stats.datagrams_from_client += 1
        if self._drop():
            self.stats.dropped_from_client += 1
            return
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    async def _to_client(self, reader: asyncio.StreamReader) -> None:
        # SITL must always be drained (a reader that stops slows the simulation), cut or not.
        while chunk := await reader.read(4096):
            if self._client is None or self._udp is None:
                continue
            self.stats.datagrams_to_client += 1
            if self._drop():
                self.stats.dropped_to_client += 1
                continue
            self._udp.sendto(chunk, self._client)
