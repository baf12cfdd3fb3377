"""The live view page in a real headless Chromium: frames while a recording runs, the
recording's counters, stop/start, the node's reason when it turns the view off, and no
horizontal scrolling on a phone or a laptop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import RunningFleet
from tests.liveview_helpers import wait_for
from tests.test_dashboard import browser  # noqa: F401  (the module's Chromium)
from tests.test_liveview_e2e import agent_client, start, start_one, stop, wait_recording

pytestmark = pytest.mark.slow

PICTURE = """() => { const i = document.getElementById('live');
  if (!i || !i.naturalWidth) return null;
  const c = document.createElement('canvas'); c.width = 64; c.height = 36;
  const g = c.getContext('2d'); g.drawImage(i, 0, 0, 64, 36);
  return Array.from(g.getImageData(0, 0, 64, 36).data).join(','); }"""
NO_SIDEWAYS = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        yield context.new_page()
    finally:
        context.close()


def test_the_live_page_shows_frames_while_recording_and_the_nodes_reason(
    fleet_factory: RunningFleet,
    phone: Page,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    cpu_stat = tmp_path / "stat"
    cpu_stat.write_text("cpu  1000 0 1000 8000 0 0 0 0 0 0\n")
    start_one(
        fleet_factory,
        cpu_stat,
        CAMFLEET_LIVEVIEW__MAX_CPU_PERCENT="80",
        CAMFLEET_LIVEVIEW__SUSTAIN_S="0.5",
        CAMFLEET_LIVEVIEW__MIN_ENCODE_FPS_RATIO="0.3",
        CAMFLEET_LIVEVIEW__MAX_DROPPED_FRAMES="1000",
    )
    url = f"{fleet_factory.url}/nodes/cam-c/live?token={fleet_factory.operator_token}"
    with agent_client(fleet_factory) as agent:
        start(agent, "LV-PAGE")
        wait_recording(agent)
        phone.goto(url)
        expect(phone.locator("#recstate")).to_have_text("recording")
        phone.wait_for_function(
            "() => document.getElementById('live')?.naturalWidth === 640", timeout=20_000
        )
        assert phone.evaluate("document.getElementById('live').naturalHeight") == 360
        first = phone.evaluate(PICTURE)
        phone.wait_for_function(f"() => ({PICTURE})() !== {first!r}", timeout=20_000)
        frames = int(phone.locator("#frames").inner_text())
        phone.wait_for_function(
            f"() => Number(document.getElementById('frames').textContent) > {frames}"
        )
        expect(phone.locator("#encode")).to_contain_text("of 15 fps")
        expect(phone.locator("#served")).not_to_have_text("0")
        assert phone.evaluate(NO_SIDEWAYS)

        # Stop: the <img> goes and the node's stream is closed; start again.
        phone.get_by_role("button", name="Stop view").click()
        expect(phone.locator("#live")).to_have_count(0)

        def clients() -> int:
            return int(agent.get("/api/v1/status").json()["liveview"]["clients"])

        wait_for(lambda: clients() == 0, what="the node's stream to close")
        phone.get_by_role("button", name="Start view").click()
        phone.wait_for_function("() => document.getElementById('live')?.naturalWidth > 0")

        # The node's CPU fills up: the view turns off and the page says why.
        burning = threading.Event()

        def burn() -> None:
            busy = 1000
            while not burning.wait(0.1):
                busy += 100
                cpu_stat.write_text(f"cpu  {busy} 0 1000 8000 0 0 0 0 0 0\n")

        burner = threading.Thread(target=burn, daemon=True)
        burner.start()
        try:
            expect(phone.locator("#reason")).to_contain_text("turned the view off", timeout=20_000)
            expect(phone.locator("#reason")).to_contain_text("CPU at 100 %")
        finally:
            burning.set()
            burner.join()
        expect(phone.get_by_role("button", name="Start view")).to_be_visible()
        assert phone.evaluate(NO_SIDEWAYS)

        laptop = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            page = laptop.new_page()
            page.goto(url)
            expect(page.locator("#reason")).to_contain_text("CPU at 100 %")
            assert page.evaluate(NO_SIDEWAYS)
        finally:
            laptop.close()
        stop(agent, "LV-PAGE")


def test_the_page_needs_the_operator(fleet_factory: RunningFleet, tmp_path: Path) -> None:
    cpu_stat = tmp_path / "stat"
    cpu_stat.write_text("cpu  1 0 1 8 0 0 0 0 0 0\n")
    start_one(fleet_factory, cpu_stat)
    answer = httpx.get(f"{fleet_factory.url}/api/v1/nodes/cam-c/live.mjpg", timeout=10)
    assert answer.status_code == 401
