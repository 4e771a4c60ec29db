"""Parameters against a scripted peer that stores them the way ArduPilot (or PX4) encodes them."""

from __future__ import annotations

import asyncio
import math

import pytest

from flightctl.errors import ParamError, ParamTimeout
from flightctl.link.connection import MavConnection
from flightctl.link.request import RetryPolicy
from flightctl.vehicle.params import ParamEncoding, Params, decode_value, encode_value
from tests.support.param_store import INT8, INT32, REAL32, ParamStore
from tests.support.peer import ScriptedPeer


@pytest.mark.parametrize("encoding", list(ParamEncoding))
async def test_integer_parameter_round_trips_exactly(
    peer: ScriptedPeer, connection: MavConnection, encoding: ParamEncoding
) -> None:
    """Test that setting an INT32 parameter returns exactly the integer we set, in either encoding."""
    ParamStore(peer, {"SYSID_THISMAV": (1, INT32), "BIG": (0, INT32)}, encoding)
    params = Params(connection, encoding=encoding, policy=RetryPolicy(0.2, 4))
    echoed = await params.set("BIG", 16_777_215)
    assert echoed.value == 16_777_215
    assert isinstance(echoed.value, int)
    assert (await params.get("BIG")).value == 16_777_215


def test_bytewise_encoding_keeps_integers_beyond_float_precision() -> None:
    """Test that bytewise encoding carries 2**31-1 exactly where a C cast could not."""
    raw = encode_value(2**31 - 1, INT32, ParamEncoding.BYTEWISE)
    assert decode_value(raw, INT32, ParamEncoding.BYTEWISE) == 2**31 - 1
    with pytest.raises(ParamError, match="2\\*\\*24"):
        encode_value(2**31 - 1, INT32, ParamEncoding.C_CAST)


def test_integer_out_of_range_or_fractional_is_refused() -> None:
    """Test that a value the parameter type cannot hold is refused before sending."""
    with pytest.raises(ParamError, match="does not fit"):
        encode_value(200, INT8, ParamEncoding.C_CAST)
    with pytest.raises(ParamError, match="not a whole number"):
        encode_value(1.5, INT32, ParamEncoding.C_CAST)


async def test_float_parameter_set_confirmed(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that a float parameter set is confirmed at float32 precision."""
    ParamStore(peer, {"WPNAV_SPEED": (500.0, REAL32)}, ParamEncoding.C_CAST)
    echoed = await Params(connection, policy=RetryPolicy(0.2, 4)).set("WPNAV_SPEED", 0.1)
    assert math.isclose(echoed.value, 0.1, rel_tol=1e-7)


async def test_vehicle_keeping_another_value_is_an_error(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that an echo with a different value (the vehicle clamped it) raises ParamError."""
    store = ParamStore(peer, {"ANGLE_MAX": (3000.0, REAL32)}, ParamEncoding.C_CAST)
    store.clamp["ANGLE_MAX"] = 8000.0
    with pytest.raises(ParamError, match="vehicle kept 8000"):
        await Params(connection, policy=RetryPolicy(0.2, 4)).set("ANGLE_MAX", 9000.0)


async def test_missing_parameter_times_out_with_its_name(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that reading a parameter the vehicle does not have ends in ParamTimeout naming it."""
    ParamStore(peer, {}, ParamEncoding.C_CAST)
    with pytest.raises(ParamTimeout, match="NO_SUCH_PARAM"):
        await Params(connection, policy=RetryPolicy(0.05, 2), list_quiet_s=0.1).get("NO_SUCH_PARAM")
    assert len(peer.sent("PARAM_REQUEST_READ")) == 2


async def test_fetch_all_rerequests_gaps_and_reports_progress(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that parameters lost from the list are asked for by index, and progress reaches the total."""
    values = {f"P{n:03d}": (float(n), REAL32) for n in range(120)}
    store = ParamStore(peer, values, ParamEncoding.C_CAST)
    store.drop_indices = {0, 7, 64, 119}
    progress: list[tuple[int, int]] = []
    fetched = await Params(connection).fetch_all(
        progress=lambda done, total: progress.append((done, total)), quiet_s=0.1
    )
    assert len(fetched) == 120
    assert fetched["P064"].value == 64.0
    assert progress[-1] == (120, 120)
    assert sorted(m.param_index for m in peer.sent("PARAM_REQUEST_READ")) == [0, 7, 64, 119]


async def test_fetch_all_asks_for_the_list_again_when_reads_by_index_go_unanswered(
    peer: ScriptedPeer, connection: MavConnection
) -> None:
    """Test that when reads by index bring nothing (ArduPilot's shared reply queue held up by another link),
    the whole list is asked for again, and what it lost the first time arrives that way."""
    store = ParamStore(peer, {f"P{n:03d}": (float(n), REAL32) for n in range(50)}, ParamEncoding.C_CAST)
    store.drop_on_first_list = {3, 17, 42}
    peer.on("PARAM_REQUEST_READ", lambda _m: None)
    fetched = await Params(connection).fetch_all(quiet_s=0.05, rounds=4)
    assert len(fetched) == 50
    assert fetched["P042"].value == 42.0
    assert store.lists_sent == 2
    assert len(peer.sent("PARAM_REQUEST_READ")) == 3  # one round by index first, which brought nothing


async def test_fetch_all_gives_up_with_count_missing(peer: ScriptedPeer, connection: MavConnection) -> None:
    """Test that parameters that never arrive end the fetch with ParamTimeout saying how many are missing."""
    store = ParamStore(peer, {f"P{n}": (0.0, REAL32) for n in range(10)}, ParamEncoding.C_CAST)
    store.drop_indices = {3}
    peer.on("PARAM_REQUEST_READ", lambda _m: None)
    with pytest.raises(ParamTimeout, match="1 of 10 still missing"):
        await Params(connection).fetch_all(quiet_s=0.05, rounds=2)


async def test_a_read_by_name_that_goes_unanswered_is_found_in_the_whole_list(
    peer: ScriptedPeer, connection: MavConnection
) -> None:
    """Test that when reads by name bring nothing (ArduPilot's shared reply queue held up by another link), the
    whole list, which ArduPilot sends per link, brings the value; and that a name not in it still ends in
    ParamTimeout."""
    store = ParamStore(peer, {f"P{n:03d}": (float(n), REAL32) for n in range(50)}, ParamEncoding.C_CAST)
    peer.on("PARAM_REQUEST_READ", lambda _m: None)
    params = Params(connection, policy=RetryPolicy(0.05, 2))
    assert (await params.get("P042")).value == 42.0
    assert store.lists_sent == 1
    assert len(peer.sent("PARAM_REQUEST_READ")) == 2
    store.drop_indices = {7}
    with pytest.raises(ParamTimeout, match="2 lists"):
        await Params(connection, policy=RetryPolicy(0.05, 1), list_quiet_s=0.2).get("P007")


async def test_an_optional_parameter_that_is_not_there_fails_without_fetching_the_whole_list(
    peer: ScriptedPeer, connection: MavConnection
) -> None:
    """Test that list_fallback=False (an optional feature's parameter, such as DID_ENABLE on a build without
    OpenDroneID) ends in ParamTimeout after the reads by name, and never asks for the whole list."""
    store = ParamStore(peer, {f"P{n:03d}": (float(n), REAL32) for n in range(50)}, ParamEncoding.C_CAST)
    params = Params(connection, policy=RetryPolicy(0.05, 2))
    with pytest.raises(ParamTimeout, match="DID_ENABLE: no PARAM_VALUE after 2 requests"):
        await params.get("DID_ENABLE", list_fallback=False)
    assert store.lists_sent == 0
    assert (await params.get("P003", list_fallback=False)).value == 3.0


async def test_a_slow_list_is_followed_for_as_long_as_it_keeps_coming(
    peer: ScriptedPeer, connection: MavConnection
) -> None:
    """Test that the list fallback waits while the list keeps coming (a busy, lossy radio sends it slowly) and is
    not cut off by a fixed clock: the value comes 40 list entries in, well after the quiet gap."""
    store = ParamStore(peer, {f"P{n:03d}": (float(n), REAL32) for n in range(50)}, ParamEncoding.C_CAST)
    store.list_period_s = 0.02
    peer.on("PARAM_REQUEST_READ", lambda _m: None)
    params = Params(connection, policy=RetryPolicy(0.05, 1), list_quiet_s=0.2, list_deadline_s=10)
    started = asyncio.get_running_loop().time()
    assert (await params.get("P040")).value == 40.0
    assert asyncio.get_running_loop().time() - started > 0.2 * 3, "it outlasted several quiet gaps"
    assert store.lists_sent == 1
