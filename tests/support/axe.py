"""axe-core, the accessibility checker, for a test to inject into a page in a real browser.

Fetched once from the npm registry (``npm pack``, the package as published) into a cache outside the checkout,
pinned to one version: a newer axe with new rules must not change a test's verdict by itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

AXE_VERSION = "4.11.0"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "flightctl"


def axe_source() -> str:
    """The text of axe.min.js; skips without npm (fails under CI=true, which installs it)."""
    cached = cache_dir() / f"axe-core-{AXE_VERSION}.min.js"
    if not cached.exists():
        npm = shutil.which("npm")
        if npm is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail("CI=true and npm is not installed (apt-get install npm)", pytrace=False)
            pytest.skip("npm is not installed (apt-get install npm): axe-core comes from the npm registry")
        with tempfile.TemporaryDirectory() as folder:
            subprocess.run(
                [npm, "pack", "--silent", f"axe-core@{AXE_VERSION}", "--pack-destination", folder],
                check=True,
                capture_output=True,
                timeout=300,
            )
            with tarfile.open(next(Path(folder).glob("axe-core-*.tgz"))) as package:
                member = package.extractfile("package/axe.min.js")
                assert member is not None, "axe-core's package has no axe.min.js"
                source = member.read()
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")
        partial.write_bytes(source)
        partial.replace(cached)  # whole or not at all: a run killed mid-write leaves no half a script
    return cached.read_text()


# Runs in the page (Selenium's execute_async_script): every rule, and only what a person is hurt by reported.
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document).then(
  (results) => done(results.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                                    targets: v.nodes.map((n) => n.target.join(" "))}))),
  (error) => done([{id: "axe-error", impact: "critical", help: String(error), targets: []}]),
);
"""
