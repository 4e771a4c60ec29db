"""`flightctl sim install` before it builds: which source, refusals, idempotence, nothing half-installed.

The build itself runs for real in `.ci/run` (and by hand), where it takes minutes; these tests stop short of waf.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sitl.ardupilot_source import PINNED_COMMIT, PINNED_SNAPSHOT, Source, _clone, resolve_source
from sitl.errors import SitlInstallError
from sitl.install import INCOMPLETE_NAME, WAF_CONFIGURE, Stamp, check_installed, install, missing_features
from tests.support.shared_data import shared_root


@pytest.fixture
def pinned_snapshot() -> Path:
    path = shared_root() / "ardupilot" / PINNED_SNAPSHOT
    if not path.is_file():
        pytest.skip(f"the pinned ArduPilot snapshot is not at {path}")
    return path


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it; its output with rich's line wrapping undone."""
    done = subprocess.run(
        [sys.executable, "-m", "flightctl", "sim", "install", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, " ".join(done.stdout.split()), " ".join(done.stderr.split())
    )


def _fake_install(prefix: Path, version: str, vehicles: list[str], *, opendroneid: bool = True) -> None:
    """What a finished install leaves behind, without the minutes of building it."""
    binaries = prefix / "build" / "sitl" / "bin"
    binaries.mkdir(parents=True)
    defines = "#define AP_SIM_ENABLED 1\n" + ("#define AP_OPENDRONEID_ENABLED 1\n" if opendroneid else "")
    (prefix / "build" / "sitl" / "ap_config.h").write_text(defines)
    for name in ("arducopter", "arduplane"):
        (binaries / name).write_text("#!/bin/sh\n")
        (binaries / name).chmod(0o755)
    Stamp(f"snapshot {prefix}", version, vehicles, "2026-11-28T00:00:00+0000", 1.0).write(prefix)


def test_the_pinned_snapshot_is_recognised_by_its_checksum(pinned_snapshot: Path) -> None:
    """Test that the snapshot in shared/ardupilot resolves to the pinned commit."""
    source = resolve_source(str(pinned_snapshot), [])
    assert source.kind == "snapshot"
    assert source.version == PINNED_COMMIT


def test_without_source_the_snapshot_beside_the_checkout_is_used(pinned_snapshot: Path) -> None:
    """Test that no --source means the pinned snapshot in shared/ beside the checkout, not the internet."""
    checkout = pinned_snapshot.parents[2] / "main"
    source = resolve_source(None, [checkout])
    assert source == Source("snapshot", str(pinned_snapshot.resolve()), PINNED_COMMIT)


def test_without_source_or_snapshot_the_pinned_commit_is_cloned(tmp_path: Path) -> None:
    """Test that with no snapshot anywhere the source is ArduPilot's repository at the pinned commit."""
    source = resolve_source(None, [tmp_path / "checkout"])
    assert source.kind == "git"
    assert "ArduPilot/ardupilot" in source.location
    assert source.version == PINNED_COMMIT


def test_a_truncated_pinned_snapshot_is_refused_by_checksum(pinned_snapshot: Path, tmp_path: Path) -> None:
    """Test that a cut-short copy of the pinned snapshot is named as truncated or altered before unpacking."""
    truncated = tmp_path / PINNED_SNAPSHOT
    truncated.write_bytes(pinned_snapshot.read_bytes()[: 1 << 20])
    with pytest.raises(SitlInstallError, match="truncated or altered"):
        resolve_source(str(truncated), [])


def test_a_truncated_archive_fails_cleanly_and_leaves_no_prefix(pinned_snapshot: Path, tmp_path: Path) -> None:
    """Test that an archive that stops half way ends in a clear error with nothing left in or beside the prefix."""
    truncated = tmp_path / "ardupilot-mine.tar.xz"
    truncated.write_bytes(pinned_snapshot.read_bytes()[: 2 << 20])
    prefix = tmp_path / "home" / "ardupilot"
    result = _cli("--source", str(truncated), "--prefix", str(prefix), "--no-system-packages")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not a complete .tar.xz archive" in result.stderr
    assert not prefix.exists()
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["ardupilot.flightctl"]  # the log, nothing else


def test_a_directory_that_is_not_ardupilot_is_refused(tmp_path: Path) -> None:
    """Test that a directory without ArduPilot's tree is named with what it lacks, and nothing is installed."""
    source = tmp_path / "not-ardupilot"
    (source / "ArduCopter").mkdir(parents=True)
    prefix = tmp_path / "ardupilot"
    result = _cli("--source", str(source), "--prefix", str(prefix))
    assert result.returncode == 1
    assert "is not an ArduPilot source tree" in result.stderr
    assert "wscript" in result.stderr
    assert not prefix.exists()


def test_a_source_that_does_not_exist_is_named(tmp_path: Path) -> None:
    """Test that a --source path that is not there says so instead of trying the internet."""
    result = _cli("--source", str(tmp_path / "nowhere.tar.xz"), "--prefix", str(tmp_path / "ardupilot"))
    assert result.returncode == 1
    assert "no such file or directory" in result.stderr


def test_a_missing_compiler_is_named_before_anything_is_unpacked(pinned_snapshot: Path, tmp_path: Path) -> None:
    """Test that without a C++ compiler on PATH the install stops at once, naming it, with no prefix made."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("git", "make"):
        found = shutil.which(program)
        if found:
            (bin_dir / program).symlink_to(found)
    prefix = tmp_path / "ardupilot"
    env = {**os.environ, "PATH": str(bin_dir)}
    result = _cli("--source", str(pinned_snapshot), "--prefix", str(prefix), "--no-system-packages", env=env)
    assert result.returncode == 1
    assert "a C++ compiler (g++)" in result.stderr
    assert not prefix.exists()


def test_an_install_of_the_same_version_returns_without_building(pinned_snapshot: Path, tmp_path: Path) -> None:
    """Test that a second install of the pinned version says it is there and builds nothing."""
    prefix = tmp_path / "ardupilot"
    _fake_install(prefix, PINNED_COMMIT, ["copter", "plane"])
    result = _cli("--source", str(pinned_snapshot), "--prefix", str(prefix))
    assert result.returncode == 0, result.stderr
    assert f"ArduPilot {PINNED_COMMIT} is already built in {prefix}: nothing to do" in result.stdout
    assert not (tmp_path / "ardupilot.flightctl").exists()  # no log: nothing ran


def test_a_different_version_is_never_replaced_without_force(pinned_snapshot: Path, tmp_path: Path) -> None:
    """Test that an install of another version is left alone and the refusal says how to replace it."""
    prefix = tmp_path / "ardupilot"
    _fake_install(prefix, "0123456789", ["copter", "plane"])
    before = sorted(str(p) for p in prefix.rglob("*"))
    with pytest.raises(SitlInstallError, match="--force"):
        install(resolve_source(str(pinned_snapshot), []), ["copter"], prefix, jobs=1)
    assert sorted(str(p) for p in prefix.rglob("*")) == before
    assert Stamp.read(prefix) is not None
    assert Stamp.read(prefix).version == "0123456789"  # type: ignore[union-attr]


def test_an_unfinished_install_is_not_taken_for_a_finished_one(tmp_path: Path) -> None:
    """Test that a tree still carrying the in-progress marker (a killed build) does not count as installed."""
    prefix = tmp_path / "ardupilot"
    _fake_install(prefix, PINNED_COMMIT, ["copter", "plane"])
    source = Source("snapshot", "x", PINNED_COMMIT)
    assert check_installed(prefix, source, ["copter"]) is not None
    (prefix / INCOMPLETE_NAME).write_text("killed\n")
    assert check_installed(prefix, source, ["copter"]) is None


def test_a_vehicle_not_yet_built_is_not_installed(tmp_path: Path) -> None:
    """Test that asking for plane where only copter was built is not a no-op."""
    prefix = tmp_path / "ardupilot"
    _fake_install(prefix, PINNED_COMMIT, ["copter"])
    source = Source("snapshot", "x", PINNED_COMMIT)
    assert check_installed(prefix, source, ["copter"]) is not None
    assert check_installed(prefix, source, ["copter", "plane"]) is None


def test_a_build_without_opendroneid_is_not_installed(tmp_path: Path) -> None:
    """Test that a build configured without OpenDroneID (older, or by hand) is built again, not flown."""
    source = Source("snapshot", "x", PINNED_COMMIT)
    with_it, without = tmp_path / "with", tmp_path / "without"
    _fake_install(with_it, PINNED_COMMIT, ["copter", "plane"])
    _fake_install(without, PINNED_COMMIT, ["copter", "plane"], opendroneid=False)
    assert check_installed(with_it, source, ["copter"]) is not None
    assert missing_features(without) == ["opendroneid"]
    assert check_installed(without, source, ["copter"]) is None
    assert "--enable-opendroneid" in WAF_CONFIGURE


def test_unknown_vehicle_names_are_refused(tmp_path: Path) -> None:
    """Test that --vehicles with a name we cannot build lists the ones we can."""
    result = _cli("--vehicles", "copter,sub", "--prefix", str(tmp_path / "ardupilot"))
    assert result.returncode == 2
    assert "choose from copter, plane" in result.stderr


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_that_is_not_ardupilot_is_never_replaced_even_with_force(
    pinned_snapshot: Path, tmp_path: Path, force: bool
) -> None:
    """Test that --prefix naming someone's folder (no stamp of ours, not an ArduPilot tree) is refused before any
    work, with --force too, and that the refusal does not suggest --force; the folder is left as it was."""
    prefix = tmp_path / "work"
    (prefix / "thesis").mkdir(parents=True)
    (prefix / "thesis" / "chapter1.tex").write_text("years of work\n")
    before = sorted(str(p) for p in prefix.rglob("*"))
    with pytest.raises(SitlInstallError, match="not ArduPilot") as refused:
        install(resolve_source(str(pinned_snapshot), []), ["copter"], prefix, jobs=1, force=force)
    assert "Run again with --force" not in str(refused.value)
    assert sorted(str(p) for p in prefix.rglob("*")) == before
    assert not (tmp_path / "work.flightctl").exists()


def test_a_git_server_that_accepts_and_never_answers_ends_by_a_deadline(tmp_path: Path) -> None:
    """Test a clone from a server that takes the connection and says nothing: it fails within its stall limit
    (1 kB/s for ``stall_s``), naming git and the log, instead of hanging the install."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    port = listener.getsockname()[1]

    def accept_and_say_nothing() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept_and_say_nothing, daemon=True)
    thread.start()
    log = tmp_path / "install.log"
    log.write_text("")
    source = Source("git", f"http://127.0.0.1:{port}/ardupilot.git", PINNED_COMMIT)
    started = time.monotonic()
    try:
        with pytest.raises(SitlInstallError, match="git clone failed"):
            _clone(source, tmp_path / "ardupilot", log, stall_s=2)
    finally:
        listener.close()
        for connection in held:
            connection.close()
    assert time.monotonic() - started < 30
    assert "too slow" in log.read_text()


def test_a_second_install_into_one_prefix_waits_its_turn_and_finds_the_first_ones_build(
    pinned_snapshot: Path, tmp_path: Path
) -> None:
    """Test two installs into one prefix (two waf builds in one tree delete each other's files): the second says
    it waits, builds nothing while the first holds the prefix, and then finds the first one's finished build."""
    import fcntl

    prefix = tmp_path / "ardupilot"
    (tmp_path / "ardupilot.flightctl").mkdir()
    phases: list[str] = []
    waiting = threading.Event()
    results: list[object] = []

    def progress(phase: str, _done: int, _total: int) -> None:
        phases.append(phase)
        waiting.set()

    with (tmp_path / "ardupilot.flightctl" / "install.lock").open("a") as first:
        fcntl.flock(first, fcntl.LOCK_EX)  # the first install, mid-build
        second = threading.Thread(
            target=lambda: results.append(
                install(
                    resolve_source(str(pinned_snapshot), []),
                    ["copter"],
                    prefix,
                    jobs=1,
                    progress=progress,
                )
            )
        )
        second.start()
        assert waiting.wait(timeout=30), "the second install never said it waits"
        assert phases == ["waiting for another sim install into this prefix"]
        assert not prefix.exists(), "the second install touched the prefix while the first held it"
        _fake_install(prefix, PINNED_COMMIT, ["copter", "plane"])  # what the first install leaves
        fcntl.flock(first, fcntl.LOCK_UN)
    second.join(timeout=60)
    assert not second.is_alive()
    (result,) = results
    assert result.built is False  # type: ignore[attr-defined]
    assert phases == ["waiting for another sim install into this prefix"]
