"""ArduPilot's source at the version flightctl is tested against: where it comes from and how it is unpacked.

Three kinds of source, all ending in a tree that waf can build:
- a ``.tar.xz`` snapshot (the project's machines have no route to GitHub: ``../shared/ardupilot/`` beside the
  checkout holds one, with the submodules SITL needs and its checksum);
- a local directory (an ArduPilot checkout or an unpacked snapshot), copied without its ``build/``;
- a git URL, cloned and checked out at the pinned commit with the submodules SITL needs.

A snapshot has no ``.git``, but waf asks git for the version (``git rev-parse --short=8 HEAD``) and stops
without one, so an unpacked tree is made a repository with one commit.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from sitl.errors import SitlInstallError

# The ArduPilot commit our SITL tests fly against (master of mid-2025, 4.7-dev), and the checksum of the
# snapshot of it that the project's machines carry in ../shared/ardupilot/.
PINNED_COMMIT = "90700977c5"
PINNED_SNAPSHOT = f"ardupilot-{PINNED_COMMIT}.tar.xz"
PINNED_SNAPSHOT_SHA256 = "ac5bba1d980ea4ac70c3ee236edab2a2e8a52558b933a02358384b7f8d97f483"
ARDUPILOT_REPOSITORY = "https://github.com/ArduPilot/ardupilot.git"
# The submodules an SITL build needs (the rest are for flight-controller boards).
SITL_SUBMODULES = (
    "modules/waf",
    "modules/mavlink",
    "modules/DroneCAN/DSDL",
    "modules/DroneCAN/dronecan_dsdlc",
    "modules/DroneCAN/libcanard",
    "modules/littlefs",
)
# What makes a tree ArduPilot's, checked before anything is built.
_ARDUPILOT_MARKERS = ("waf", "wscript", "ArduCopter", "ArduPlane", "Tools/autotest", "modules/waf/waflib")
_SNAPSHOT_NAME = re.compile(r"ardupilot-([0-9a-f]{7,40})\.tar\.xz$")
_GIT_URL = re.compile(r"^(https?|ssh|git)://|^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class Source:
    """Where the tree comes from (``kind`` is ``snapshot``, ``directory`` or ``git``) and which version it is."""

    kind: str
    location: str
    version: str

    def describe(self) -> str:
        return f"{self.kind} {self.location}"


def default_snapshot(search_from: list[Path]) -> Path | None:
    """The pinned snapshot in ``shared/ardupilot/`` beside a checkout, if one of ``search_from`` has it."""
    for start in search_from:
        candidate = start.resolve().parent / "shared" / "ardupilot" / PINNED_SNAPSHOT
        if candidate.is_file():
            return candidate
    return None


def resolve_source(text: str | None, search_from: list[Path]) -> Source:
    """``--source`` as given (or the default) as a ``Source`` whose version is known before anything is built."""
    if text is None:
        snapshot = default_snapshot(search_from)
        if snapshot is None:
            return Source("git", ARDUPILOT_REPOSITORY, PINNED_COMMIT)
        text = str(snapshot)
    if _GIT_URL.match(text):
        return Source("git", text, PINNED_COMMIT)
    path = Path(text).expanduser()
    if path.is_dir():
        source = Source("directory", str(path.resolve()), _directory_version(path))
        check_ardupilot_tree(path, source)
        return source
    if path.is_file():
        if not path.name.endswith(".tar.xz"):
            raise SitlInstallError(f"--source {text}: not a .tar.xz snapshot, a directory or a git URL")
        return Source("snapshot", str(path.resolve()), _snapshot_version(path))
    raise SitlInstallError(f"--source {text}: no such file or directory, and not a git URL")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listed_checksum(path: Path) -> str | None:
    """The checksum ``SHA256SUMS`` beside the snapshot lists for it, if there is such a file."""
    sums = path.parent / "SHA256SUMS"
    if not sums.is_file():
        return None
    for line in sums.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            return parts[0].lower()
    return None


def _snapshot_version(path: Path) -> str:
    """The commit a snapshot holds; a snapshot whose checksum disagrees with its name or SHA256SUMS is refused."""
    actual = _sha256(path)
    listed = _listed_checksum(path)
    if listed is not None and listed != actual:
        raise SitlInstallError(
            f"{path}: checksum {actual[:16]}... does not match SHA256SUMS beside it ({listed[:16]}...): "
            "the file is truncated or altered"
        )
    if actual == PINNED_SNAPSHOT_SHA256:
        return PINNED_COMMIT
    named = _SNAPSHOT_NAME.search(path.name)
    if named and named.group(1) == PINNED_COMMIT:
        raise SitlInstallError(
            f"{path}: named as the pinned snapshot ({PINNED_COMMIT}) but its checksum {actual[:16]}... is not "
            f"the pinned one ({PINNED_SNAPSHOT_SHA256[:16]}...): the file is truncated or altered"
        )
    return named.group(1) if named else f"snapshot-{actual[:12]}"


def tree_version(tree: Path) -> str | None:
    """The commit a git tree is at, abbreviated as the pin is; None when git cannot tell."""
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return head.stdout.strip()[: len(PINNED_COMMIT)] if head.returncode == 0 else None


def _directory_version(path: Path) -> str:
    version = tree_version(path) if (path / ".git").exists() else None
    return version or f"directory-{path.resolve()}"


def is_ardupilot_tree(tree: Path) -> bool:
    return all((tree / marker).exists() for marker in _ARDUPILOT_MARKERS)


def check_ardupilot_tree(tree: Path, source: Source) -> None:
    missing = [marker for marker in _ARDUPILOT_MARKERS if not (tree / marker).exists()]
    if missing:
        raise SitlInstallError(
            f"{source.describe()} is not an ArduPilot source tree with the submodules SITL needs "
            f"(missing: {', '.join(missing)})"
        )


def unpack(source: Source, destination: Path, log: Path) -> None:
    """Put the tree of ``source`` at ``destination`` (which must not exist), ready for waf."""
    if source.kind == "snapshot":
        _extract_snapshot(Path(source.location), destination)
    elif source.kind == "directory":
        shutil.copytree(
            source.location, destination, symlinks=True, ignore=shutil.ignore_patterns("build", ".lock-waf*")
        )
    else:
        _clone(source, destination, log)
    check_ardupilot_tree(destination, source)
    if not (destination / ".git").exists():
        _make_repository(destination, log)


def _extract_snapshot(archive: Path, destination: Path) -> None:
    staging = destination.with_name(destination.name + ".unpack")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with tarfile.open(archive, "r:xz") as tar:
            # The 'data' filter refuses absolute paths, links out of the tree and device files.
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise SitlInstallError(f"{archive}: not a complete .tar.xz archive ({exc})") from exc
    entries = list(staging.iterdir())
    # Snapshots hold one top folder (ardupilot/); take the tree from inside it.
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    top.rename(destination)
    shutil.rmtree(staging, ignore_errors=True)


# A server that accepts a connection and then says nothing (or trickles) must not hang an install: git over HTTP
# gives up below 1 kB/s for this long (curl's low-speed limit), and every git command has an overall deadline.
GIT_STALL_S = 60
GIT_DEADLINE_S = 3600.0


def _git(args: list[str], log: Path, cwd: Path | None = None, *, stall_s: int = GIT_STALL_S) -> None:
    stalls = ["-c", "http.lowSpeedLimit=1000", "-c", f"http.lowSpeedTime={stall_s}"]
    with log.open("a") as out:
        out.write(f"$ git {' '.join(args)}\n")
        out.flush()
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        try:
            done = subprocess.run(
                ["git", *stalls, *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False,
                timeout=GIT_DEADLINE_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise SitlInstallError(f"git {args[0]} did not finish within {GIT_DEADLINE_S:g} s; see {log}") from None
    if done.returncode != 0:
        raise SitlInstallError(f"git {args[0]} failed (exit {done.returncode}); see {log}")


def _clone(source: Source, destination: Path, log: Path, *, stall_s: int = GIT_STALL_S) -> None:
    _git(["clone", "--no-checkout", "--filter=blob:none", source.location, str(destination)], log, stall_s=stall_s)
    _git(["checkout", "--quiet", source.version], log, cwd=destination, stall_s=stall_s)
    _git(["submodule", "update", "--init", "--recursive", "--depth", "1", *SITL_SUBMODULES], log, cwd=destination)


def _make_repository(tree: Path, log: Path) -> None:
    identity = ["-c", "user.name=flightctl sim install", "-c", "user.email=flightctl@localhost"]
    _git(["init", "--quiet"], log, cwd=tree)
    _git(["add", "--all", "--force"], log, cwd=tree)
    _git([*identity, "commit", "--quiet", "--no-verify", "-m", "ArduPilot source snapshot"], log, cwd=tree)
