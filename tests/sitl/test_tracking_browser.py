"""The whole chain, with a real browser at the end: `flightctl dispatch` registers an order and sends it over
the shipped broker config to `flightctl run` on SITL; `flightctl relay` turns the drone's events into the
customer's statuses; headless Chromium (Debian's) has the tracking link open and sees the status change live
to DELIVERED. A screenshot of the page is saved."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from sitl.daemon import DaemonProcess, write_daemon_config
from sitl.instance import SitlInstance
from sitl.relay_process import RelayProcess
from tests.ground.conftest import open_fleet, require_program
from tests.sitl.daemon_support import flightctl
from tests.sitl.deliveries import SHORT_DROP, order

pytestmark = [pytest.mark.sitl, pytest.mark.mqtt]


def browser() -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,700"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def current_status(driver: webdriver.Chrome) -> str:
    """The customer status the page shows now (its headline says it in words; the attribute is for machines)."""
    return str(driver.find_element(By.ID, "current").get_attribute("data-status"))


async def test_a_customer_watches_a_sitl_delivery_reach_delivered_in_chromium(
    depot_sitl: SitlInstance, tmp_path: Path
) -> None:
    require_program("/usr/bin/chromium", "chromium")
    require_program("/usr/bin/chromedriver", "chromium-driver")
    async with open_fleet(tmp_path) as fleet:
        config = write_daemon_config(
            tmp_path / "daemon", drone_id="drone-a", autopilot_url=depot_sitl.serial2_url, broker_url=fleet.broker.url,
            username="drone-a", password=fleet.passwords["drone-a"], ca_file=fleet.broker.ca_file,
        )  # fmt: skip
        daemon = DaemonProcess(config)
        registry = tmp_path / "registry.sqlite"
        relay = RelayProcess(
            tmp_path / "relay", "relay-1", broker_url=fleet.broker.url, ca_file=fleet.broker.ca_file,
            password=fleet.passwords["relay-1"], registry_url=str(registry),
        )  # fmt: skip
        the_order = order("kirkwall-1500m-place").model_copy(update={"order_id": "KWL-WEB-1", "drop": SHORT_DROP})
        order_file = tmp_path / "order.yaml"
        order_file.write_text(yaml.safe_dump(the_order.model_dump(mode="json", exclude_none=True)))
        (tmp_path / "dispatch-password").write_text(fleet.passwords["dispatch-1"])
        await daemon.start()
        await relay.start()
        driver = await asyncio.to_thread(browser)
        try:
            await depot_sitl.vehicle.telemetry.wait_until(
                lambda s: s.position is not None and s.ekf_nav_ready, timeout_s=120, what="SITL ready at the depot"
            )
            code, out, err = await flightctl(
                "dispatch", str(order_file), "--customer", "C-1042", "--drone", "drone-a",
                "--broker", fleet.broker.url, "--username", "dispatch-1",
                "--password-file", str(tmp_path / "dispatch-password"), "--ca-file", str(fleet.broker.ca_file),
                "--registry", str(registry), "--tracking-url", f"http://127.0.0.1:{relay.port}",
                "--depot-wind", "0", "--json", "--answer-timeout", "120",
                timeout_s=180,
            )  # fmt: skip
            assert code == 0, f"{out}\n{err}\n{daemon.log_tail()}"
            link = json.loads(out.splitlines()[-1])["tracking_link"]
            assert "KWL-WEB-1" not in link
            assert "C-1042" not in link

            await asyncio.to_thread(driver.get, link)
            first = await asyncio.to_thread(current_status, driver)
            assert first in ("RECEIVED", "ACCEPTED", "DEPARTED"), first
            seen = [first]

            async def delivered() -> bool:
                status = await asyncio.to_thread(current_status, driver)
                if status != seen[-1]:
                    seen.append(status)
                return status == "DELIVERED"

            async with asyncio.timeout(600):
                while not await delivered():
                    await depot_sitl.vehicle.telemetry.sleep(1.0)
            body = await asyncio.to_thread(lambda: str(driver.find_element(By.TAG_NAME, "body").text))
            screenshot = Path(os.environ.get("FLIGHTCTL_ARTIFACTS", str(tmp_path))) / "tracking-page-delivered.png"
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            assert await asyncio.to_thread(driver.save_screenshot, str(screenshot))
            print(f"tracking page screenshot: {screenshot}; statuses seen live: {seen}")
        finally:
            await asyncio.to_thread(driver.quit)
            await relay.stop()
            await daemon.stop()
    assert screenshot.stat().st_size > 5_000
    assert len(seen) >= 2, "the page changed without a reload"
    assert "KWL-WEB-1" in body
    assert "Your parcel has been delivered." in body
    assert "C-1042" not in body
    assert "58.95" not in body, "no coordinates on a customer's page"
