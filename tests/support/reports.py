"""Flight reports as an engineer gets them: ``flightctl report`` run as a process, then the page opened in
Debian's Chromium with its network switched off, and a screenshot kept (in ``$FLIGHTCTL_ARTIFACTS/reports``
when CI sets it)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.browser import CHROMEDRIVER, CHROMIUM, chromium

SHOT_WIDTH = 1200
# What the page loaded from anywhere but itself (data: images are part of it), and whether each image drew.
LOOK = """
const resources = performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'));
const images = Array.from(document.images).map(i => ({alt: i.alt, drawn: i.complete && i.naturalWidth > 0}));
return {resources, images, text: document.body.innerText, height: document.body.scrollHeight};
"""


@dataclass
class SeenReport:
    data: dict[str, Any]  # the report's JSON, as `flightctl report --json` printed it
    html: Path
    resources: list[str]  # fetched from outside the page: must be none
    images: list[dict[str, Any]]
    text: str
    screenshot: Path


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FLIGHTCTL_ARTIFACTS", str(tmp_path))) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def report_of(journal: Path, out: Path, *, order_id: str | None = None) -> tuple[dict[str, Any], Path]:
    """Run ``flightctl report JOURNAL --json``; its JSON and the page's path."""
    more = ["--order", order_id] if order_id else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightctl", "report", str(journal), "--out", str(out), "--json", *more,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(120):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    data = json.loads(stdout)
    return data, Path(data["html"])


def _look_offline(html: Path, shot: Path) -> dict[str, Any]:
    with chromium() as driver:
        driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
        driver.set_window_size(SHOT_WIDTH, 900)
        driver.get(html.absolute().as_uri())
        seen: dict[str, Any] = driver.execute_script(LOOK)
        driver.set_window_size(SHOT_WIDTH, min(int(seen["height"]) + 40, 6000))
        assert driver.save_screenshot(str(shot))
        return seen


def _need_chromium() -> None:
    for program in (CHROMIUM, CHROMEDRIVER):
        assert Path(program).exists(), f"{program} is missing (apt-get install chromium chromium-driver)"


async def seen_offline(journal: Path, tmp_path: Path, name: str, *, order_id: str | None = None) -> SeenReport:
    """The report of ``journal`` drawn by the CLI and looked at in Chromium with no network."""
    _need_chromium()
    data, html = await report_of(journal, tmp_path / f"report-{name}", order_id=order_id)
    shot = artifacts(tmp_path) / f"{name}.png"
    seen = await asyncio.to_thread(_look_offline, html, shot)
    return SeenReport(data, html, seen["resources"], seen["images"], seen["text"], shot)
