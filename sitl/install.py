"""``flightctl sim install``: ArduPilot's SITL built from source at the pinned version, once.

The prefix (``$ARDUPILOT_HOME``, else ``~/ardupilot``) holds only a finished install or nothing new: the tree is
unpacked beside it, moved into place, built with a marker that says the install is incomplete, and stamped
when the build succeeds. A failure removes what this run put there and puts back what was there before.
Build-time Python modules live in a venv beside the tree (``<prefix>.flightctl/venv``), with the build log,
so neither the user's Python nor flightctl's venv is touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sitl.ardupilot_source import Source, is_ardupilot_tree, tree_version, unpack
from sitl.errors import SitlInstallError
from sitl.paths import BINARY_NAMES, VehicleKind, ardupilot_home

STAMP_NAME = ".flightctl-sitl.json"
INCOMPLETE_NAME = ".flightctl-install-incomplete"
# Debian packages a build needs (observed on a bare Debian 12), and the programs that show they are there.
DEBIAN_PACKAGES = ("g++", "make", "git", "python3-venv", "python3-dev", "libxml2-dev", "libxslt1-dev")
REQUIRED_PROGRAMS = {"g++": "a C++ compiler", "gcc": "a C compiler", "make": "make", "git": "git"}
# empy 4 breaks ArduPilot's MAVLink generator; the others are what waf's SITL build imports.
BUILD_MODULES = ("empy==3.3.4", "pexpect", "future", "dronecan", "lxml", "setuptools")
# --enable-opendroneid: a UK aircraft flies with Remote ID enforced, so SITL must have ArduPilot's OpenDroneID
# library (the sitl board turns it on at this version anyway; the option keeps it on if that default changes).
WAF_CONFIGURE = (
    "configure",
    "--board",
    "sitl",
    "--disable-Werror",
    "--no-submodule-update",
    "--disable-networking",
    "--enable-opendroneid",
)
# What a build must have, by the define waf writes into build/sitl/ap_config.h, the build's own record of how
# it was configured: a build without one (an older install, a tree built by hand) is configured and built again.
REQUIRED_FEATURES = {"opendroneid": "AP_OPENDRONEID_ENABLED"}
_WAF_STEP = re.compile(r"^\[\s*(\d+)/(\d+)\]")

Progress = Callable[[str, int, int], None]  # (phase, done, total): total 0 while unknown


@dataclass(frozen=True)
class Stamp:
    """What an install holds, written last: its presence means the build finished."""

    source: str
    version: str
    vehicles: list[str]
    built_at: str
    build_seconds: float
    features: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, prefix: Path) -> Stamp | None:
        try:
            data = json.loads((prefix / STAMP_NAME).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def write(self, prefix: Path) -> None:
        (prefix / STAMP_NAME).write_text(json.dumps(asdict(self), indent=2) + "\n")


@dataclass(frozen=True)
class InstallResult:
    prefix: Path
    stamp: Stamp
    built: bool  # False: it was already there
    log: Path | None

    def binaries(self) -> list[Path]:
        return [self.prefix / "build" / "sitl" / "bin" / BINARY_NAMES[v] for v in self.stamp.vehicles]


def state_dir(prefix: Path) -> Path:
    """Beside the tree, never in it: the build venv and the logs survive a failed or replaced install."""
    return prefix.with_name(prefix.name + ".flightctl")


def default_prefix() -> Path:
    return ardupilot_home()


def _built(prefix: Path, vehicles: Sequence[str]) -> bool:
    return all(os.access(prefix / "build" / "sitl" / "bin" / BINARY_NAMES[v], os.X_OK) for v in vehicles)


def built_features(prefix: Path) -> list[str]:
    """The REQUIRED_FEATURES the build in ``prefix`` was configured with, read from its ap_config.h."""
    try:
        config = (prefix / "build" / "sitl" / "ap_config.h").read_text(errors="replace")
    except OSError:
        return []
    defined = set(re.findall(r"^#define (\w+) 1\s*$", config, flags=re.MULTILINE))
    return sorted(name for name, define in REQUIRED_FEATURES.items() if define in defined)


def missing_features(prefix: Path) -> list[str]:
    return sorted(set(REQUIRED_FEATURES) - set(built_features(prefix)))


def check_installed(prefix: Path, source: Source, vehicles: Sequence[VehicleKind]) -> Stamp | None:
    """The stamp when ``prefix`` already holds this version with these vehicles built, with every required
    feature, else None."""
    stamp = Stamp.read(prefix)
    if stamp is None and (prefix / ".git").exists() and tree_version(prefix) == source.version:
        # Built by hand from the same commit (ArduPilot's own instructions): use it as it is.
        stamp = Stamp(f"existing tree {prefix}", source.version, list(vehicles), "unknown", 0.0)
    if stamp is None or stamp.version != source.version or (prefix / INCOMPLETE_NAME).exists():
        return None
    if not set(vehicles) <= set(stamp.vehicles) or not _built(prefix, vehicles) or missing_features(prefix):
        return None
    return stamp


# ---- prerequisites -----------------------------------------------------------------------------------------


def missing_debian_packages() -> list[str]:
    """Packages from ``DEBIAN_PACKAGES`` that dpkg does not list as installed ([] where there is no dpkg)."""
    if shutil.which("dpkg-query") is None:
        return []
    missing = []
    for package in DEBIAN_PACKAGES:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in status.stdout:
            missing.append(package)
    return missing


def ensure_prerequisites(install_packages: bool, log: Path) -> None:
    """Debian packages (installed with apt-get when we are root and may), then the programs the build runs."""
    missing = missing_debian_packages()
    if missing:
        command = f"apt-get install -y --no-install-recommends {' '.join(missing)}"
        if not install_packages or os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise SitlInstallError(
                f"the SITL build needs Debian packages that are not installed: {', '.join(missing)}. "
                f"Install them with:  sudo apt-get update && sudo {command}"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        with log.open("a") as out:
            for step in (["apt-get", "update", "-qq"], command.split()):
                out.write(f"$ {' '.join(step)}\n")
                out.flush()
                done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
                if done.returncode != 0:
                    raise SitlInstallError(f"'{' '.join(step)}' failed (exit {done.returncode}); see {log}")
    absent = [f"{what} ({program})" for program, what in REQUIRED_PROGRAMS.items() if shutil.which(program) is None]
    if absent:
        raise SitlInstallError(f"the SITL build needs {', '.join(absent)}, not found on PATH")


def ensure_build_venv(venv: Path, log: Path) -> Path:
    """The venv with ArduPilot's build modules; made once, reused. Returns its python."""
    python = venv / "bin" / "python"
    ready = venv / ".modules-installed"
    if ready.is_file() and ready.read_text() == "\n".join(BUILD_MODULES) and python.exists():
        return python
    with log.open("a") as out:
        for step in (
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *BUILD_MODULES],
        ):
            out.write(f"$ {' '.join(step)}\n")
            out.flush()
            done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                raise SitlInstallError(f"could not prepare the build's Python venv at {venv}; see {log}")
    ready.write_text("\n".join(BUILD_MODULES))
    return python


# ---- the build ---------------------------------------------------------------------------------------------


def _build_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    if shutil.which("ccache"):
        # Relative paths under the tree make the cache hit for a tree unpacked anywhere else too.
        env.update(CC="ccache gcc", CXX="ccache g++", CCACHE_BASEDIR=str(tree))
    return env


def run_waf(python: Path, tree: Path, args: Sequence[str], log: Path, phase: str, progress: Progress) -> None:
    """One waf command, its output appended to ``log``; progress from waf's ``[n/N]`` lines."""
    tail: deque[str] = deque(maxlen=25)
    with log.open("a") as out:
        out.write(f"$ {python} waf {' '.join(args)}\n")
        out.flush()
        process = subprocess.Popen(
            [str(python), "waf", *args],
            cwd=tree,
            env=_build_env(tree),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                out.write(line)
                tail.append(line.rstrip())
                step = _WAF_STEP.match(line)
                if step:
                    progress(phase, int(step.group(1)), int(step.group(2)))
            code = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
    if code != 0:
        last = "\n".join(f"  {line}" for line in tail)
        raise SitlInstallError(f"waf {args[0]} failed (exit {code}). Last lines of {log}:\n{last}")


# ---- the whole install -------------------------------------------------------------------------------------


def _check_replaceable(prefix: Path, source: Source, force: bool) -> None:
    """Refuse, before any work, to replace another version without ``force``, and, even with it, anything that is
    not an ArduPilot tree: ``--force`` replaces an install, never a folder of someone's files."""
    if not prefix.exists() or (prefix.is_dir() and not any(prefix.iterdir())):
        return
    stamp = Stamp.read(prefix)
    ours = (prefix / INCOMPLETE_NAME).exists() or stamp is not None
    if not ours and not (prefix.is_dir() and is_ardupilot_tree(prefix)):
        raise SitlInstallError(
            f"{prefix} holds something that is not ArduPilot, which sim install never replaces, --force or not: "
            "choose another --prefix, or move it away yourself"
        )
    if force or (prefix / INCOMPLETE_NAME).exists() or (stamp is not None and stamp.version == source.version):
        return  # asked to, or ours: unfinished, or the same version with its binaries gone
    there = (
        f"ArduPilot {stamp.version} (from {stamp.source})" if stamp else "an ArduPilot tree flightctl did not install"
    )
    raise SitlInstallError(
        f"{prefix} already holds {there}; flightctl wants {source.version}. "
        "Run again with --force to replace it, or choose another --prefix"
    )


def _move_aside(prefix: Path) -> Path | None:
    """Make room for the new tree; returns where an existing one went (put back if the build fails)."""
    if not prefix.exists():
        return None
    if prefix.is_dir() and not any(prefix.iterdir()):
        prefix.rmdir()
        return None
    aside = prefix.with_name(f"{prefix.name}.replaced-{os.getpid()}")
    prefix.rename(aside)
    return aside


def install(
    source: Source,
    vehicles: Sequence[VehicleKind],
    prefix: Path,
    *,
    jobs: int,
    force: bool = False,
    install_packages: bool = True,
    progress: Progress = lambda phase, done, total: None,
) -> InstallResult:
    """Build ``vehicles`` from ``source`` into ``prefix``, or return at once when that is already there. Two
    installs into one prefix take turns: the second waits, then finds the first one's build (or builds)."""
    prefix = prefix.expanduser().absolute()
    if not force and (stamp := check_installed(prefix, source, vehicles)) is not None:
        return InstallResult(prefix, stamp, built=False, log=None)
    _check_replaceable(prefix, source, force)  # a refusal leaves nothing behind, not even a lock file
    with one_install_at_a_time(prefix, progress):
        if not force and (stamp := check_installed(prefix, source, vehicles)) is not None:
            return InstallResult(prefix, stamp, built=False, log=None)
        return _install(source, vehicles, prefix, jobs=jobs, force=force, install_packages=install_packages,
                        progress=progress)  # fmt: skip


@contextlib.contextmanager
def one_install_at_a_time(prefix: Path, progress: Progress) -> Iterator[None]:
    """Hold the prefix's install lock (waiting for another install's turn to end): two waf builds in one tree
    delete each other's files mid-configure. The lock is the kernel's, so a killed install never leaves it held."""
    state = state_dir(prefix)
    state.mkdir(parents=True, exist_ok=True)
    with (state / "install.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("waiting for another sim install into this prefix", 0, 0)
            fcntl.flock(lock, fcntl.LOCK_EX)  # an install ends (finished, failed or killed): never held forever
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install(
    source: Source,
    vehicles: Sequence[VehicleKind],
    prefix: Path,
    *,
    jobs: int,
    force: bool,
    install_packages: bool,
    progress: Progress,
) -> InstallResult:
    _check_replaceable(prefix, source, force)
    state = state_dir(prefix)
    state.mkdir(parents=True, exist_ok=True)
    log = state / f"install-{time.strftime('%Y%m%d-%H%M%S')}.log"
    log.write_text(f"flightctl sim install: {source.describe()} ({source.version}) -> {prefix}\n")
    started = time.monotonic()
    progress("prerequisites", 0, 0)
    ensure_prerequisites(install_packages, log)

    existing = Stamp.read(prefix)
    add_vehicles = (
        not force and existing is not None and existing.version == source.version and _built(prefix, existing.vehicles)
    )
    aside: Path | None = None
    if add_vehicles:
        # Same version, more vehicles: waf builds only what is missing, in the tree that is already there.
        assert existing is not None
        wanted = sorted(set(existing.vehicles) | set(vehicles))
        python = ensure_build_venv(state / "venv", log)
        if missing_features(prefix):
            # Built before a feature was required: configure again with it, and build every vehicle again.
            (prefix / INCOMPLETE_NAME).write_text(f"flightctl sim install in progress, log: {log}\n")
            progress("configuring", 0, 0)
            run_waf(python, prefix, WAF_CONFIGURE, log, "configuring", progress)
            run_waf(python, prefix, [*wanted, f"-j{jobs}"], log, "building", progress)
        else:
            run_waf(python, prefix, [*vehicles, f"-j{jobs}"], log, "building", progress)
    else:
        wanted = sorted(set(vehicles))
        progress("unpacking", 0, 0)
        staging = prefix.with_name(f"{prefix.name}.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            unpack(source, staging, log)
            python = ensure_build_venv(state / "venv", log)
            aside = _move_aside(prefix)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        staging.rename(prefix)
        try:
            (prefix / INCOMPLETE_NAME).write_text(f"flightctl sim install in progress, log: {log}\n")
            progress("configuring", 0, 0)
            run_waf(python, prefix, WAF_CONFIGURE, log, "configuring", progress)
            run_waf(python, prefix, [*wanted, f"-j{jobs}"], log, "building", progress)
        except BaseException:
            shutil.rmtree(prefix, ignore_errors=True)
            if aside is not None:
                aside.rename(prefix)
            raise
    stamp = Stamp(
        source=source.describe(),
        version=source.version,
        vehicles=wanted,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        build_seconds=round(time.monotonic() - started, 1),
        features=built_features(prefix),
    )
    stamp.write(prefix)
    (prefix / INCOMPLETE_NAME).unlink(missing_ok=True)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return InstallResult(prefix, stamp, built=True, log=log)


def installed_version(prefix: Path | None = None) -> str | None:
    """'90700977c5 (snapshot ...)' for an install made by ``sim install``, else the tree's git HEAD, else None."""
    prefix = prefix or ardupilot_home()
    stamp = Stamp.read(prefix)
    if stamp is not None:
        return f"{stamp.version} ({stamp.source})"
    if not (prefix / ".git").exists():
        return None
    head = tree_version(prefix)
    return f"{head} (git tree, not installed by flightctl)" if head else None
