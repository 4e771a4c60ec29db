"""FileChunks: what a MAVFTP read holds, still wants, and where the file ends, for every way a radio can
lose a burst's chunks or a read's answers."""

from __future__ import annotations

import random

import pytest

from flightctl.vehicle.ftp_chunks import FileChunks

CHUNK = 10


def read_into(chunks: FileChunks, data: bytes, offsets: list[int]) -> None:
    """What the server answers at each offset: a chunk, or the end of the file."""
    for offset in offsets:
        piece = data[offset : offset + CHUNK]
        if piece:
            chunks.add(offset, piece)
        else:
            chunks.end_at_or_before(offset)


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 30, 95])
def test_every_loss_pattern_ends_with_the_whole_file(size: int) -> None:
    """Test that reading whatever is wanted, with random answers lost, always ends with exactly the file,
    whether it ends mid-chunk, on a chunk boundary, or is empty."""
    data = bytes(random.Random(size).randrange(256) for _ in range(size))
    for seed in range(20):
        lose = random.Random(seed)
        chunks = FileChunks(CHUNK)
        # a burst: every chunk and the end, each lost with probability 0.4
        burst = [o for o in range(0, size + 1, CHUNK) if lose.random() > 0.4]
        read_into(chunks, data, burst)
        rounds = 0
        while not chunks.complete():
            wanted = chunks.wanted(3)
            assert wanted, "something is always wanted until the file is whole"
            read_into(chunks, data, [o for o in wanted if lose.random() > 0.4])
            rounds += 1
            assert rounds < 200
        assert chunks.whole() == data
        assert chunks.end == size


def test_end_is_unknown_until_the_chunk_before_it_is_held() -> None:
    """Test that an end-of-file answer alone does not end the file: the last chunk must be held and end
    exactly there; and the file is whole only with every chunk before it."""
    chunks = FileChunks(CHUNK)
    chunks.add(0, b"a" * CHUNK)
    chunks.end_at_or_before(30)
    assert chunks.end is None
    assert chunks.wanted(5) == [10, 20]
    chunks.add(20, b"c" * CHUNK)
    assert chunks.end == 30
    assert not chunks.complete()
    assert chunks.wanted(5) == [10]
    chunks.add(10, b"b" * CHUNK)
    assert chunks.complete()
    assert chunks.whole() == b"a" * 10 + b"b" * 10 + b"c" * 10


def test_unknown_end_asks_past_everything_held() -> None:
    """Test that with the burst's tail lost the gaps come first, then the offsets where the end must be."""
    chunks = FileChunks(CHUNK)
    assert chunks.wanted(3) == [0, 10, 20]
    chunks.add(10, b"x" * CHUNK)
    assert chunks.wanted(4) == [0, 20, 30, 40]
    assert not chunks.complete()
    with pytest.raises(ValueError, match="not read whole"):
        chunks.whole()


def test_a_short_chunk_ends_the_file() -> None:
    """Test that a chunk shorter than the chunk size is the last one."""
    chunks = FileChunks(CHUNK)
    chunks.add(10, b"xyz")
    assert chunks.end == 13
    assert not chunks.complete()  # the chunk before it is missing
    assert chunks.wanted(5) == [0]
    chunks.add(0, b"a" * CHUNK)
    assert chunks.complete()
    assert chunks.received == 13


def test_chunks_that_are_not_ours_are_ignored() -> None:
    """Test that an unaligned or oversized chunk (not an answer to any read we made) changes nothing."""
    chunks = FileChunks(CHUNK)
    chunks.add(5, b"x" * CHUNK)
    chunks.add(0, b"x" * (CHUNK + 1))
    assert chunks.received == 0
    assert chunks.wanted(1) == [0]
