"""A transport that loses what a bad radio would: wrap any transport, drop a share of chunks each way.

Over TCP a chunk can hold several frames or parts of one, so a drop also cuts frames in half: the codec's
resynchronisation is exercised along with the protocols' retries. Seeded, so a failing run can be repeated.
"""

from __future__ import annotations

import random

from flightctl.link.transport import Transport


class LossyTransport(Transport):
    def __init__(self, inner: Transport, *, loss_in: float, loss_out: float, seed: int = 0) -> None:
        super().__init__(f"lossy({inner.url}, in {loss_in:.0%}, out {loss_out:.0%})")
        self.inner = inner
        self.loss_in = loss_in
        self.loss_out = loss_out
        self.dropped_in = 0
        self.dropped_out = 0
        self._rng = random.Random(seed)

    @property
    def connected(self) -> bool:
        return self.inner.connected

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()
        await super().close()

    async def read(self) -> bytes:
        while True:
            chunk = await self.inner.read()
            if self._rng.random() >= self.loss_in:
                self.stats.bytes_in += len(chunk)
                return chunk
            self.dropped_in += 1

    def write(self, data: bytes) -> None:
        if self._rng.random() < self.loss_out:
            self.dropped_out += 1
            return
        self.stats.bytes_out += len(data)
        self.inner.write(data)
