"""The customer's tracking page in a real browser (Debian's headless Chromium): each status a customer can see,
on a phone (360x740) and a desktop (1280x800), screenshot saved and checked by axe-core; a live update arriving
without a reload; and the page without JavaScript."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from flightctl.ground.customer_status import CustomerStatus, StatusUpdate, Step
from flightctl.ground.registry import Registry
from flightctl.ground.serving import serving
from flightctl.ground.tracking import tracking_app
from sitl.mosquitto import free_port
from tests.ground.conftest import require_program
from tests.support.axe import RUN_AXE, axe_source
from tests.support.browser import chromium, viewport

SIZES = [(360, 740), (1280, 800)]


@dataclass(frozen=True)
class Story:
    """An order's statuses so far, minutes from now (negative: past), and the headline it must show."""

    name: str
    steps: list[tuple[CustomerStatus, Step, float, float | None]]  # status, step, at (min), eta (min)
    headline: str
    place: str | None = None  # an island leg's airstrip, for the step that names one


STORIES = [
    Story("booked", [(CustomerStatus.ACCEPTED, Step.BOOKED, -1, None)], "Your parcel is booked on a drone"),
    Story(
        "departed",
        [(CustomerStatus.ACCEPTED, Step.BOOKED, -9, None), (CustomerStatus.DEPARTED, Step.ON_ITS_WAY, -2, 6)],
        "Your parcel is on its way",
    ),
    Story(
        "arriving",
        [
            (CustomerStatus.ACCEPTED, Step.BOOKED, -12, None),
            (CustomerStatus.DEPARTED, Step.ON_ITS_WAY, -8, 2),
            (CustomerStatus.ARRIVING, Step.ABOVE_DROP, -1, 3),
        ],
        "Your parcel is arriving",
    ),
    Story(
        "delivered",
        [
            (CustomerStatus.ACCEPTED, Step.BOOKED, -20, None),
            (CustomerStatus.DEPARTED, Step.ON_ITS_WAY, -15, -5),
            (CustomerStatus.ARRIVING, Step.ABOVE_DROP, -7, -5),
            (CustomerStatus.DELIVERED, Step.DELIVERED, -5, None),
        ],
        "Delivered at",
    ),
    Story(
        "at-airstrip",
        [
            (CustomerStatus.ACCEPTED, Step.BOOKED, -60, None),
            (CustomerStatus.DEPARTED, Step.ON_ITS_WAY, -50, -10),
            (CustomerStatus.DELIVERED, Step.ARRIVED_AT_AIRSTRIP, -8, None),
        ],
        "Arrived at",
        place="North Ronaldsay",
    ),
    Story(
        "delayed",
        [
            (CustomerStatus.ACCEPTED, Step.BOOKED, -20, None),
            (CustomerStatus.DEPARTED, Step.ON_ITS_WAY, -15, -3),
            (CustomerStatus.PROBLEM, Step.RETURNING, -6, None),
        ],
        "Your delivery is delayed",
    ),
    Story(
        "failed",
        [(CustomerStatus.ACCEPTED, Step.BOOKED, -9, None), (CustomerStatus.PROBLEM, Step.NOT_LEFT, -4, None)],
        "Your parcel could not go by drone",
    ),
]


def screenshots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FLIGHTCTL_ARTIFACTS", str(tmp_path))) / "tracking-page"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Site:
    registry: Registry
    base_url: str
    seq: int = 0

    async def order(self, story: Story) -> tuple[str, str]:
        """The order's id and its customer's tracking link."""
        order_id = f"KWL-{secrets.token_hex(4).upper()}"  # no status name in it: the page shows the id
        token = await self.registry.register(order_id, f"customer-{story.name}", "drone-a")
        for status, step, at_min, eta_min in story.steps:
            await self.add(order_id, status, step, at_min, eta_min, story.place)
        return order_id, f"{self.base_url}/t/{token}"

    async def add(
        self,
        order_id: str,
        status: CustomerStatus,
        step: Step,
        at_min: float,
        eta_min: float | None = None,
        place: str | None = None,
    ) -> None:
        now = datetime.now(UTC)
        eta = now + timedelta(minutes=eta_min) if eta_min is not None else None
        self.seq += 1
        where = place if step is Step.ARRIVED_AT_AIRSTRIP else None
        update = StatusUpdate(status, now + timedelta(minutes=at_min), step, eta, where)
        assert await self.registry.record("drone-a", self.seq, order_id, update)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    require_program("/usr/bin/chromium", "chromium")
    require_program("/usr/bin/chromedriver", "chromium-driver")
    async with await Registry.open(str(tmp_path / "registry.sqlite")) as registry:
        port = free_port()
        async with serving(tracking_app(registry, poll_s=0.1), "127.0.0.1", port):
            yield Site(registry, f"http://127.0.0.1:{port}")


def look(driver: webdriver.Chrome, url: str, width: int, height: int, shot: Path, axe: str) -> dict[str, Any]:
    """Open ``url`` at the size, save a screenshot, and say what a person sees and what axe-core finds."""
    viewport(driver, width, height)
    driver.get(url)
    driver.execute_script(axe)
    violations = driver.execute_async_script(RUN_AXE)
    assert driver.save_screenshot(str(shot))
    body = driver.find_element(By.TAG_NAME, "body")
    overflow = driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth")
    headings = [h.tag_name for h in driver.find_elements(By.CSS_SELECTOR, "h1, h2, h3")]
    return {"text": body.text, "violations": violations, "overflow": overflow, "headings": headings}


async def test_every_status_reads_clearly_on_a_phone_and_a_desktop_with_no_serious_accessibility_fault(
    site: Site, tmp_path: Path
) -> None:
    """Test each customer status (booked, departed, arriving, delivered, delayed, failed) and an unknown link, at
    360x740 and 1280x800: the headline in plain words first, no sideways scrolling, headings in order, a
    screenshot saved for each, and axe-core (every rule) reporting no serious or critical violation."""
    axe = axe_source()
    pages = [(story.name, (await site.order(story))[1], story.headline) for story in STORIES]
    pages.append(("unknown-link", f"{site.base_url}/t/{secrets.token_urlsafe(24)}", "We cannot find this delivery"))
    folder = screenshots_dir(tmp_path)

    def visit() -> dict[tuple[str, int], dict[str, Any]]:
        seen = {}
        with chromium() as driver:
            for width, height in SIZES:
                for name, url, _headline in pages:
                    shot = folder / f"tracking-{name}-{width}x{height}.png"
                    seen[name, width] = look(driver, url, width, height, shot, axe) | {"shot": shot}
        return seen

    seen = await asyncio.to_thread(visit)
    for (name, width), page in seen.items():
        headline = next(h for n, _, h in pages if n == name)
        where = f"{name} at {width} px"
        assert page["text"].split("\n")[0] in ("Your parcel", headline), where
        assert headline in page["text"], where
        assert not page["overflow"], f"{where}: the page scrolls sideways"
        assert page["headings"][0] == "h1", where
        assert set(page["headings"][1:]) <= {"h2"}, where
        assert not re.search(r"\d{4}-\d{2}-\d{2}|UTC", page["text"]), f"{where}: an ISO or UTC time is visible"
        for name in ("ACCEPTED", "DEPARTED", "ARRIVING", "DELIVERED", "PROBLEM", "ENROUTE", "ON_STATION", "RECEIVED"):
            assert name not in page["text"], f"{where}: {name} is visible"
        serious = [v for v in page["violations"] if v["impact"] in ("serious", "critical")]
        assert serious == [], f"{where}: {serious}"
        assert page["shot"].stat().st_size > 5_000, where
    print(f"tracking page screenshots: {folder}")


async def test_a_new_status_appears_without_a_reload_in_the_live_region(site: Site) -> None:
    """Test a page left open on a booked order: the drone sets off, and the headline, the arrival range and a
    new timeline entry appear in the ARIA live region, in the same document (no reload)."""
    order_id, url = await site.order(STORIES[0])

    def open_page(driver: webdriver.Chrome) -> None:
        driver.get(url)
        driver.execute_script("window.stillTheSamePage = true;")
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "live-note").is_displayed())

    def wait_departed(driver: webdriver.Chrome) -> dict[str, Any]:
        current = driver.find_element(By.ID, "current")
        WebDriverWait(driver, 20).until(lambda _d: current.get_attribute("data-status") == "DEPARTED")
        live = driver.find_element(By.ID, "live")
        return {
            "headline": current.text,
            "eta": driver.find_element(By.ID, "eta").text,
            "entries": len(driver.find_elements(By.CSS_SELECTOR, "#statuses li")),
            "same_page": driver.execute_script("return window.stillTheSamePage === true"),
            "live": (live.get_attribute("aria-live"), live.get_attribute("role")),
            "inside": bool(live.find_elements(By.ID, "current")),
        }

    with chromium() as driver:
        await asyncio.to_thread(open_page, driver)
        await site.add(order_id, CustomerStatus.DEPARTED, Step.ON_ITS_WAY, 0, 7)
        seen = await asyncio.to_thread(wait_departed, driver)
    assert seen["headline"] == "Your parcel is on its way"
    assert seen["eta"].startswith("Expected between ")
    assert seen["entries"] == 2
    assert seen["same_page"], "the page was reloaded"
    assert seen["live"] == ("polite", "status")
    assert seen["inside"], "the headline is inside the region screen readers announce"


async def test_without_javascript_the_page_still_shows_the_current_status(site: Site) -> None:
    """Test the page with JavaScript turned off: the present status and its timeline are there, and it says
    to reload (it also reloads itself)."""
    _order_id, url = await site.order(STORIES[3])

    def visit() -> str:
        with chromium(javascript=False) as driver:
            driver.get(url)
            # What the browser renders, as its accessibility tree has it (WebDriver's element text never
            # counts a <noscript>, whether scripts run or not).
            tree = driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})
            names = [node.get("name", {}).get("value", "") for node in tree["nodes"] if not node.get("ignored")]
            return "\n".join(name for name in names if name)

    text = await asyncio.to_thread(visit)
    assert "Delivered at" in text
    assert "Please collect your parcel from the drop point." in text
    assert "Reload this page to see the latest." in text
    assert "This page updates by itself." not in text


async def test_an_expired_link_reads_exactly_as_an_unknown_one(site: Site) -> None:
    """Test that a link whose token has expired gets the same friendly page, byte for byte, as a token never
    issued: nothing says that an order exists."""
    token = await site.registry.register("KWL-OLD", "customer-old", "drone-a", ttl=timedelta(seconds=-1))
    async with httpx.AsyncClient(base_url=site.base_url, timeout=30) as client:
        expired = await client.get(f"/t/{token}")
        unknown = await client.get(f"/t/{secrets.token_urlsafe(24)}")
    assert expired.status_code == unknown.status_code == 404
    assert expired.text == unknown.text
    assert "check the link in your email or text message" in expired.text
    assert "KWL-OLD" not in expired.text
