"""Fuzzing every file parser and the order loader: random and mutated bytes give a result or our typed error.

Seeded mutations of real files (byte flips, insertions, deletions, splices, duplicated and truncated spans,
interesting numbers written into fields) and random bytes. Anything but a plan or a ``ConfigError`` (a
``struct.error``, a ``RecursionError``, a pydantic dump, a crash) fails, with the input that caused it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from flightctl.config import configs_dir, read_yaml_model
from flightctl.delivery.order import DeliveryOrder
from flightctl.errors import ConfigError
from flightctl.missions.formats import format_plan, parse_plan
from flightctl.missions.formats.errors import MissionFileError
from flightctl.missions.model import MissionPlan
from tests.support.shared_data import shared_testdata

CASES = 10_000
INTERESTING = [
    b"nan", b"inf", b"-inf", b"1e39", b"1e300", b"-1e308", b"65536", b"-1", b"4294967296", b"91", b"-181",
    b"0", b"", b"[", b"]", b"{", b"}", b":", b"\t", b"\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"'", b'"',
    b"null", b"true", b"[[[[[[[[", b"- - -", b"&a", b"*a", b"!!python/object", b"0x10", b"1_000",
]  # fmt: skip


def mutate(seed: bytes, rng: random.Random) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 6)):
        where = rng.randint(0, len(data))
        match rng.randrange(7):
            case 0 if data:
                data[min(where, len(data) - 1)] = rng.randrange(256)
            case 1:
                data[where:where] = rng.choice(INTERESTING)
            case 2:
                del data[where : where + rng.randint(1, 16)]
            case 3:
                span = data[where : where + rng.randint(1, 64)]
                data[where:where] = span * rng.randint(1, 4)
            case 4:
                del data[where:]
            case 5:
                data[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            case _:
                digits = [i for i, b in enumerate(data) if 48 <= b <= 57]
                if digits:
                    at = rng.choice(digits)
                    data[at : at + 1] = rng.choice(INTERESTING)
    return bytes(data)


def inputs(seeds: list[bytes], rng: random.Random) -> list[bytes]:
    cases = [bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))) for _ in range(CASES // 20)]
    while len(cases) < CASES:
        cases.append(mutate(rng.choice(seeds), rng))
    return cases


def fuzz(parse: Callable[[bytes], object], seeds: list[bytes], seed: int) -> int:
    """Feed every input; return how many parsed. An exception other than ConfigError fails with the input."""
    rng = random.Random(seed)
    parsed = 0
    for data in inputs(seeds, rng):
        try:
            parse(data)
        except ConfigError:
            continue
        except Exception as exc:  # the point of the test: anything else is a defect
            pytest.fail(f"{type(exc).__name__}: {exc}\ninput: {data[:400]!r}")
        parsed += 1
    return parsed


def _mission_parser(suffix: str) -> Callable[[bytes], MissionPlan]:
    path = Path(f"fuzz{suffix}")

    def parse(data: bytes) -> MissionPlan:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:  # what load_plan does with a file that is not text
            raise MissionFileError(path, "", f"cannot read: {exc}") from None
        plan = parse_plan(text, path)
        format_plan(plan, path.with_suffix(".yaml"))  # whatever parses can also be written back
        return plan

    return parse


def _seeds(suffix: str) -> list[bytes]:
    """Real files: QGroundControl's own .plan files, and the same plans written as WPL and as our YAML."""
    sources = [shared_testdata("qgc", name) for name in ("ArduPilotSITL-ArduCopter.plan", "simple_square.plan")]
    if suffix == ".plan":
        return [path.read_bytes() for path in sources]
    plans = [parse_plan(path.read_text(), path) for path in sources]
    if suffix == ".waypoints":
        plans = [MissionPlan(mission=plan.mission) for plan in plans]
    return [format_plan(plan, Path(f"seed{suffix}")).encode() for plan in plans]


@pytest.mark.parametrize(("suffix", "seed"), [(".waypoints", 1), (".plan", 2), (".yaml", 3)])
def test_mission_file_parsers_never_crash(suffix: str, seed: int) -> None:
    """Test 10,000 mutated and random inputs per mission file format: a plan or a MissionFileError, nothing else."""
    parsed = fuzz(_mission_parser(suffix), _seeds(suffix), seed)
    assert parsed > 0, "the mutations were too harsh to exercise the parser past its first line"


def test_order_loader_never_crashes(tmp_path: Path) -> None:
    """Test 10,000 mutated and random order files: an order or a ConfigError naming the file, nothing else."""
    seeds = [path.read_bytes() for path in sorted((configs_dir() / "orders").glob("*.yaml"))]
    path = tmp_path / "order.yaml"

    def load(data: bytes) -> DeliveryOrder:
        path.write_bytes(data)
        return read_yaml_model(path, DeliveryOrder)

    parsed = fuzz(load, seeds, 4)
    assert parsed > 0
