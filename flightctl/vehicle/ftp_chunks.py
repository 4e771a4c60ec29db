"""A file read over MAVFTP in fixed-size chunks that arrive in any order, some never: what is held, what is
still wanted, and where the file ends once that is known. Pure data, so every loss pattern is testable
without a vehicle."""

from __future__ import annotations


class FileChunks:
    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self._chunks: dict[int, bytes] = {}
        self._bound: int | None = None  # the file ends at or before this offset

    def add(self, offset: int, data: bytes) -> None:
        """A chunk read at ``offset``; a short one ends the file. Unaligned or oversized ones are not ours."""
        if offset % self.chunk or len(data) > self.chunk:
            return
        self._chunks[offset] = data
        if len(data) < self.chunk:
            self.end_at_or_before(offset + len(data))

    def end_at_or_before(self, offset: int) -> None:
        """A read at ``offset`` found the end of the file (or a short chunk ended there)."""
        self._bound = offset if self._bound is None else min(self._bound, offset)

    @property
    def received(self) -> int:
        return sum(len(data) for data in self._chunks.values())

    @property
    def end(self) -> int | None:
        """The file's length once known: an end-of-file bound with the chunk just before it held and ending
        exactly there."""
        bound = self._bound
        if bound is None:
            return None
        if bound == 0:
            return 0
        last = (bound - 1) // self.chunk * self.chunk
        data = self._chunks.get(last)
        return bound if data is not None and last + len(data) == bound else None

    def wanted(self, n: int) -> list[int]:
        """Up to ``n`` offsets to read next, lowest first: gaps below the end (or below the highest chunk
        held), then, while the end is unknown, the offsets past everything held, where it must be."""
        bound = self._bound
        top = bound if bound is not None else (max(self._chunks) + self.chunk if self._chunks else 0)
        offsets = [o for o in range(0, top, self.chunk) if o not in self._chunks][:n]
        if bound is None:
            offsets += range(top, top + self.chunk * (n - len(offsets)), self.chunk)
        return offsets

    def complete(self) -> bool:
        return self.end is not None and not self.wanted(1)

    def whole(self) -> bytes:
        end = self.end
        if end is None or not self.complete():
            raise ValueError("the file is not read whole yet")
        return b"".join(self._chunks[offset] for offset in range(0, end, self.chunk))[:end]
