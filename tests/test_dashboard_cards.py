"""The dashboard's cards and controls in a real headless Chromium against real fleets:
Start reaches every card within 2 s without a reload, on a phone and a laptop with no
horizontal scroll; a killed agent goes offline and comes back; a node whose gate refuses is
named with its reason in the results panel and its card shows the disagreement; the
shutdown button powers a recording node off only after its manifest is finished."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from app.supervise import stop_all
from node_agent.schemas import Manifest
from tests.conftest import CAMERAS, RunningFleet
from tests.fakebin import FakeBin
from tests.test_dashboard import browser  # noqa: F401 (fixture)
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """live_fleet's three cameras (the coordinator polls every 5 s), shared by the tests
    that leave the fleet as they found it: idle, every node online."""
    fleet = RunningFleet(
        root=tmp_path_factory.mktemp("cards"),
        coordinator_env={"CAMFLEET_POLL_INTERVAL_S": "5", "CAMFLEET_OFFLINE_AFTER_S": "15"},
    )
    try:
        fleet.start_fleet(CAMERAS, online_timeout_s=30)
        yield fleet
    finally:
        stop_all(fleet.children())


LAPTOP = {"width": 1280, "height": 800}


def open_page(browser: Browser, viewport: dict[str, int]) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:  # noqa: F811
    yield from open_page(browser, PHONE)


@pytest.fixture
def laptop(browser: Browser) -> Iterator[Page]:  # noqa: F811
    yield from open_page(browser, LAPTOP)


def no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"scrollWidth {width[0]} > innerWidth {width[1]}"


# Every visible text's contrast with the first opaque background behind it (WCAG's
# formula); disabled controls are exempt, as WCAG has them.
LOW_CONTRAST_JS = """() => {
  const lin = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).map(Number); return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b); };
  const bg = el => {
    for (; el; el = el.parentElement) {
      const m = getComputedStyle(el).backgroundColor.match(/[\\d.]+/g);
      if (m && (m.length < 4 || +m[3] > 0.5)) return getComputedStyle(el).backgroundColor;
    }
    return "rgb(255, 255, 255)";
  };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    if (!el.getClientRects().length || el.closest(":disabled, [hidden]")) continue;
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const a = lum(getComputedStyle(el).color), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) out.push(`${el.tagName}.${el.className} ${ratio.toFixed(2)}: ${el.textContent.trim().slice(0, 40)}`);
  }
  return out;
}"""


def start_and_stop(fleet: RunningFleet, page: Page) -> None:
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("article.card")).to_have_count(3)
    expect(page.locator("#live")).to_have_text("live")
    no_horizontal_scroll(page)
    page.evaluate("window.notReloaded = true")
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    page.on("framenavigated", lambda f: loads.append(f.url) if f == page.main_frame else None)

    page.fill("#name", "a long session name " * 8)
    page.click("#meta summary")
    page.fill("#meta-v1", "kick-off at the north pitch")
    page.click("#start")
    # The coordinator polls every 5 s: within 2 s only the events can do it.
    expect(page.locator("article.card .pill.recording")).to_have_count(3, timeout=2_000)
    expect(page.locator("#results tr.ok")).to_have_count(3)
    expect(page.locator("#last-session a.session-link")).to_have_attribute(
        "title", ("a long session name " * 8).strip()
    )
    no_horizontal_scroll(page)
    href = page.locator("#last-session a.session-link").get_attribute("href") or ""
    with fleet.client() as c:
        session = c.get(f"/api/v1{href}").json()
    if "metadata" in session:  # a session API that keeps the details has them
        assert session["metadata"] == {"notes": "kick-off at the north pitch"}
    else:  # one that takes none started anyway, and the page says so
        expect(page.locator("#banner")).to_contain_text("the details were not kept")
    page.click("#stop")
    expect(page.locator("article.card .pill.recording")).to_have_count(0, timeout=5_000)
    expect(page.locator("#results-title")).to_have_text("Results: Stop all")
    no_horizontal_scroll(page)
    assert page.evaluate("window.notReloaded") is True and loads == []


def test_start_reaches_every_card_within_2s_on_a_phone(rig: RunningFleet, phone: Page) -> None:
    start_and_stop(rig, phone)
    # the long name is cut, not wrapped past the screen; the whole of it is in the title
    link = phone.locator("#last-session a.session-link")
    expect(link).to_be_visible()
    phone.wait_for_function(
        "() => { const a = document.querySelector('#last-session a.session-link');"
        " return a && a.clientWidth > 0 && a.scrollWidth > a.clientWidth; }"
    )
    phone.screenshot(path=str(rig.root / "phone.png"), full_page=True)


def test_start_and_stop_on_a_laptop(rig: RunningFleet, laptop: Page) -> None:
    start_and_stop(rig, laptop)


def test_keyboard_reaches_the_controls_and_escape_closes_the_dialogs(
    rig: RunningFleet, phone: Page
) -> None:
    fleet, page = rig, phone
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("article.card")).to_have_count(3)
    seen: set[str] = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        seen.add(
            page.evaluate(
                "document.activeElement.id || document.activeElement.dataset.shutdown || ''"
            )
        )
    assert {"name", "start", "selftest", "offload", "delete-offloaded", "mode-apply"} <= seen
    assert {"cam-l", "cam-c"} <= seen  # the cards' Shut down buttons
    page.focus('article.card[data-node="cam-r"] button[data-shutdown]')
    page.keyboard.press("Enter")
    dialog = page.locator("#shutdown-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#shutdown-name")).to_have_text("CAM_R")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.focus("#delete-offloaded")
    page.keyboard.press("Enter")
    expect(page.locator("#delete-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#delete-dialog")).to_be_hidden()
    expect(page.locator("#results")).to_be_hidden()  # nothing was sent
    expect(page.locator("article.card .pill.offline")).to_have_count(0)
    # every form field has a label
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input:not([type=hidden]), select')]"
        ".filter(e => !e.labels.length)"
        ".map(e => e.id)"
    )
    assert unlabelled == []
    assert page.evaluate(LOW_CONTRAST_JS) == []


def test_a_killed_agent_goes_offline_within_2s_and_comes_back(
    three_cameras: RunningFleet, laptop: Page
) -> None:
    fleet, page = three_cameras, laptop
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("article.card")).to_have_count(3)
    expect(page.locator("#fleet-alert")).to_be_hidden()
    fleet.kill(fleet.agents["CAM_R"])
    card = page.locator('article.card[data-node="cam-r"]')
    expect(card).to_have_class("card offline", timeout=2_000)
    expect(card.locator(".pill")).to_have_text("offline")
    expect(card.locator("li.warning").first).to_contain_text("offline")
    expect(page.locator("#fleet-alert")).to_contain_text("Offline: CAM_R")
    expect(page.locator("#summary")).to_have_text("2/3 online")

    fleet.start_agent("CAM_R", "right")
    expect(card.locator(".pill")).to_have_text("idle", timeout=10_000)
    expect(card).not_to_have_class(re.compile(r"\boffline\b"))
    expect(page.locator("#fleet-alert")).to_be_hidden()
    expect(page.locator("#summary")).to_have_text("3/3 online")


@pytest.fixture
def one_hot_camera(fleet_factory: RunningFleet, tmp_path: Path) -> RunningFleet:
    """CAM_L, CAM_C, CAM_R; CAM_R's CPU reads 95 °C against a limit of 80 °C."""
    hot = tmp_path / "thermal_zone0_temp"
    hot.write_text("95000\n")
    hot_env = {"CAMFLEET_GATES__THERMAL_PATH": str(hot), "CAMFLEET_GATES__MAX_CPU_TEMP_C": "80"}
    fleet_factory.start_fleet(CAMERAS, {"CAM_R": hot_env})
    return fleet_factory


def test_a_refusing_node_is_named_with_its_reason(
    one_hot_camera: RunningFleet, laptop: Page
) -> None:
    fleet, page = one_hot_camera, laptop
    with fleet.client() as c:  # the agent's reading, carried by the coordinator's node record
        status = c.get("/api/v1/nodes/cam-r").json()["status"]
    assert status["cpu_temp_c"] == 95.0
    assert status["network"]["mode"] in ("wired", "wifi", "none", "ap_host")
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    hot = page.locator('article.card[data-node="cam-r"]')
    expect(hot.locator("dd.temp")).to_have_text("95.0 °C")
    expect(hot.locator("li.warning")).to_contain_text(["CPU hot: 95.0 °C"])
    page.click("#start")
    expect(page.locator("#results-title")).to_have_text("Results: Start all")
    refused = page.locator('#results tr.failed[data-node="cam-r"]')
    expect(refused.locator("td").first).to_have_text("CAM_R")
    expect(refused.locator("td.result")).to_have_text("failed")
    expect(refused.locator("td.detail")).to_contain_text("CPU at 95.0 °C, limit 80 °C")
    expect(page.locator("#results tr.ok")).to_have_count(2)
    expect(page.locator("#banner")).to_contain_text("Started on 2 of 3")
    # the disagreement: CAM_R idles while the other two record
    expect(page.locator("article.card .pill.recording")).to_have_count(2, timeout=5_000)
    expect(hot).to_have_class("card odd")
    expect(hot.locator("li.warning").first).to_have_text("idle while 2 others record")
    page.click("#stop")
    expect(page.locator("#results-title")).to_have_text("Results: Stop all")


@pytest.fixture
def shutdown_node(fleet_factory: RunningFleet, tmp_path: Path) -> tuple[RunningFleet, FakeBin]:
    fake = FakeBin(tmp_path)
    systemctl = fake.add("systemctl")
    fake.add("sync")
    fleet_factory.start_coordinator()
    fleet_factory.start_agent(
        "CAM_C",
        "centre",
        CAMFLEET_POWER__SHUTDOWN_COMMAND=json.dumps([str(systemctl), "poweroff"]),
        PATH=fake.env()["PATH"],
    )
    fleet_factory.wait_online(1)
    return fleet_factory, fake


def test_shutdown_finishes_the_recording_before_powering_off(
    shutdown_node: tuple[RunningFleet, FakeBin], phone: Page
) -> None:
    (fleet, fake), page = shutdown_node, phone
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("article.card")).to_have_count(1)
    page.click("#start")
    expect(page.locator("article.card .pill.recording")).to_have_count(1, timeout=5_000)
    expect(page.locator("article.card dd.encode")).to_contain_text("frames")
    wait_for("frames", lambda: "0 frames" not in page.locator("dd.encode").inner_text())
    page.click("article.card button[data-shutdown]")
    expect(page.locator("#shutdown-dialog")).to_be_visible()
    assert fake.argvs("systemctl") == []  # nothing happens before the confirmation
    page.click("#shutdown-confirm")
    expect(page.locator("#results-title")).to_have_text("Results: Shut down CAM_C")
    expect(page.locator('#results tr.ok[data-node="cam-c"] td.result')).to_have_text(
        "shutting down"
    )
    calls = wait_for("poweroff", lambda: fake.calls("systemctl"))
    manifests = list(fleet.recordings_dir("CAM_C").glob("*_CAM_C.json"))
    assert len(manifests) == 1
    manifest = Manifest.model_validate_json(manifests[0].read_text())
    video = fleet.recordings_dir("CAM_C") / manifest.file_name
    assert manifest.frame_count > 0 and len(manifest.sha256) == 64 and not manifest.interrupted
    assert manifest.size_bytes == video.stat().st_size
    # finished (written and renamed into place) before the power-off command ran
    assert manifests[0].stat().st_mtime_ns < calls[0]["t_ns"]
    assert [a[0] for a in fake.argvs()] == ["sync", "systemctl"]


def test_update_software_asks_first_then_shows_each_camera_and_stops_at_a_failure(
    rig: RunningFleet, laptop: Page
) -> None:
    """The rig's agents have no release feed: the first camera in order cannot check, so
    the run stops there and the other two are left as they were."""
    page = laptop
    page.goto(f"{rig.url}/?token={rig.operator_token}")
    expect(page.locator("article.card")).to_have_count(3)
    page.click("#fleet-update")
    expect(page.locator("#update-dialog")).to_be_visible()
    page.click("#update-cancel")  # nothing happens without the confirmation
    expect(page.locator("#update-dialog")).to_be_hidden()
    with rig.client() as c:
        assert c.get("/api/v1/fleet/update").status_code == 404
    page.click("#fleet-update")
    page.click("#update-confirm")
    expect(page.locator("#results-title")).to_have_text(
        "Results: Update software to the newest release (failed)", timeout=15_000
    )
    first = page.locator('#results tr[data-node="cam-c"]')
    expect(first).to_have_class("failed")
    expect(first.locator("td.detail")).to_contain_text("updater.feed_url is not set")
    expect(first.locator("td.result")).to_have_text("failed")
    for node in ("cam-l", "cam-r"):  # left as they were, and not shown as failures
        row = page.locator(f'#results tr[data-node="{node}"]')
        expect(row).to_have_class("held")
        expect(row.locator("td.result")).to_have_text("not started")
    expect(page.locator("#banner")).to_contain_text("Software update failed: 0 of 3 cameras")
    expect(page.locator("#banner")).to_contain_text("stopped at CAM_C")
    with rig.client() as c:
        run = c.get("/api/v1/fleet/update").json()
    assert [n["outcome"] for n in run["nodes"]] == ["failed", "not_started", "not_started"]
