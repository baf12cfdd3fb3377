"""The dashboard in a real headless Chromium: a card per camera, start, stop, an offline node."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import RunningFleet

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 412, "height": 915})  # a phone
    try:
        yield context.new_page()
    finally:
        context.close()


def test_start_and_stop_from_the_dashboard(
    three_cameras: RunningFleet, page: Page, tmp_path: Path
) -> None:
    fleet = three_cameras
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    cards = page.locator("article.card")
    expect(cards).to_have_count(3)
    # left, centre, right, whatever order they joined in
    expect(page.locator("article.card h2 .cam")).to_have_text(["CAM_L", "CAM_C", "CAM_R"])
    expect(page.locator("#summary")).to_have_text("3/3 online")
    # configured beside measured (the agents record at 2 Mb/s; nothing is measured while idle)
    expect(page.locator("article.card dd.bitrate")).to_have_text(
        ["2.0 Mb/s configured, \u2013 measured"] * 3
    )
    expect(page.locator("article.card dd.profile")).to_have_text(["320x240, 30 fps, h264"] * 3)
    expect(page.locator("article.card dd.network").first).to_have_text(
        re.compile(r"^(wired|wifi|none|AP \(hosting\))( \(.+\))?$")
    )
    expect(page.locator("article.card dd.temp").first).to_have_text(
        re.compile(r"^(\d+\.\d °C|\u2013)$")
    )
    card_l = page.locator('article.card[data-node="cam-l"]')
    expect(card_l.locator("a.settings-link")).to_have_attribute("href", "/nodes/cam-l/settings")
    expect(card_l.locator("a.live-link")).to_have_attribute("href", "/nodes/cam-l/live")

    page.fill("#name", "dashboard kick-off")
    page.click("#start")
    expect(page.locator("#banner")).to_contain_text("starts at")
    expect(page.locator("article.card .pill.recording")).to_have_count(3, timeout=10_000)
    expect(page.locator("#results-title")).to_have_text("Results: Start all")
    expect(page.locator("#results tr.ok td.result")).to_have_text(["started"] * 3)
    expect(page.locator("#stop")).to_be_enabled()
    link = page.locator("#last-session a.session-link")
    expect(link).to_have_text("dashboard kick-off")
    expect(link).to_have_attribute("href", re.compile(r"^/sessions/[A-Za-z0-9-]+$"))
    page.wait_for_timeout(1500)
    page.click("#stop")
    expect(page.locator("#banner")).to_contain_text("start skew")
    expect(page.locator("#results-title")).to_have_text("Results: Stop all")
    expect(page.locator("#results tr.ok")).to_have_count(3)
    expect(page.locator("#results tr.ok td.detail").first).to_contain_text(".mp4")
    expect(page.locator("#last-session")).to_contain_text("Last session: dashboard kick-off")
    expect(page.locator("#last-session .session-state")).to_have_text("stopped")
    # The test agents read no chrony: the skew's bound is unknown, and the stop says why.
    expect(page.locator("#banner")).to_contain_text("no clock error bound from CAM_C, CAM_L, CAM_R")
    expect(page.locator("article.card .pill.idle")).to_have_count(3, timeout=5_000)
    # the sessions and recordings tables moved to their own pages
    expect(page.locator("#sessions, #recordings")).to_have_count(0)
    card_l.locator("button[data-preview]").click()
    preview = card_l.locator(".preview img")
    expect(preview).to_be_visible()
    assert preview.evaluate("img => img.decode().then(() => img.naturalWidth)") == 320
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)


def test_an_unreachable_camera_is_marked_on_its_card(
    three_cameras: RunningFleet, page: Page
) -> None:
    fleet = three_cameras
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("article.card")).to_have_count(3)
    fleet.kill(fleet.agents["CAM_R"])
    offline = page.locator("article.card.offline")
    expect(offline).to_have_count(1, timeout=10_000)  # offline after 3 s without contact
    expect(offline).to_contain_text("CAM_R")
    expect(offline.locator(".pill")).to_have_text("offline")
    expect(page.locator("#summary")).to_have_text("2/3 online")


def test_a_wrong_token_gets_the_sign_in_form(fleet: RunningFleet, page: Page) -> None:
    resp = page.goto(f"{fleet.url}/?token=not-the-token-at-all")
    assert resp is not None and resp.status == 401
    expect(page.locator("body")).to_contain_text("That token is not valid")
    page.fill("input[name=token]", fleet.operator_token)
    page.get_by_role("button", name="Sign in with the token").click()
    expect(page.locator("article.card")).to_have_count(1)
    assert page.url == f"{fleet.url}/"


def test_lock_view_and_self_test_from_the_dashboard(fleet: RunningFleet, page: Page) -> None:
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("article.card")).to_have_count(1)
    expect(page.locator("#lockview")).to_be_disabled()
    page.click("#selftest")
    expect(page.locator("#banner")).to_contain_text("Self-test passed", timeout=30_000)
    expect(page.locator("#results-title")).to_have_text("Results: Self-test all")
    row = page.locator('#results tr[data-node="cam-c"]')
    expect(row.locator("td").first).to_have_text("CAM_C")
    expect(row.locator("td.result")).to_have_text("pass")
    page.click("#start")
    expect(page.locator("#lockview")).to_be_enabled()
    page.click("#lockview")
    expect(page.locator("#banner")).to_contain_text("Lock View saved on 1 cameras")
    page.click("#stop")
    expect(page.locator("#banner")).to_contain_text("Stopped")
    lockviews = list(fleet.recordings_dir("CAM_C").glob("*_lockview.jpg"))
    assert len(lockviews) == 1


def test_offload_and_delete_from_the_dashboard(fleet: RunningFleet, page: Page) -> None:
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("article.card")).to_have_count(1)
    expect(page.locator("article.card dd.unoffloaded")).to_contain_text("(")
    page.click("#start")
    expect(page.locator("#stop")).to_be_enabled()
    page.wait_for_timeout(1200)
    page.click("#stop")
    expect(page.locator("#banner")).to_contain_text("Stopped")
    page.click("#offload")
    job = page.locator("#offload-job")
    expect(job).to_contain_text("Offload")
    expect(job.locator(".state").first).to_have_text("done", timeout=20_000)
    # everything this module recorded (the Lock View test's recording too), none failed
    expect(job.locator(".counts")).to_have_text(re.compile(r"^\d+ confirmed$"))
    assert job.locator("progress").evaluate("p => p.value === p.max && p.max > 1")
    # The archived recording links to its file (the session's zip is on its own page).
    link = job.locator("ul.files a").first
    expect(link).to_have_attribute("href", re.compile(r"^/api/v1/recordings/\d+/file$"))
    file_href = link.get_attribute("href")
    assert page.request.get(f"{fleet.url}{file_href}").status == 200

    page.click("#delete-offloaded")
    expect(page.locator("#delete-dialog")).to_be_visible()
    page.click("#delete-cancel")
    expect(page.locator("#delete-dialog")).to_be_hidden()
    page.click("#delete-offloaded")
    page.click("#delete-confirm")
    expect(page.locator("#banner")).to_contain_text("freed")
    expect(page.locator("#banner")).to_contain_text("cam-c: freed")
    expect(page.locator('#results tr.ok[data-node="cam-c"] td.detail')).to_contain_text("freed")


def test_the_mode_switch_reaches_the_coordinator_and_every_node(
    fleet: RunningFleet, page: Page
) -> None:
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("#mode-now")).to_have_text("coordinator: production")
    page.select_option("#mode", "development")
    page.click("#mode-apply")
    expect(page.locator("#results-title")).to_have_text("Results: Mode development")
    expect(page.locator('#results tr.ok[data-node="coordinator"] td.result')).to_have_text(
        "development"
    )
    expect(page.locator('#results tr.ok[data-node="cam-c"] td.result')).to_have_text("development")
    expect(page.locator("#mode-now")).to_have_text("coordinator: development")
    with fleet.client() as c:
        assert c.get("/api/v1/mode").json()["mode"] == "development"
    page.select_option("#mode", "production")
    page.click("#mode-apply")
    expect(page.locator("#mode-now")).to_have_text("coordinator: production")
    expect(page.locator('#results tr.ok[data-node="cam-c"] td.result')).to_have_text("production")
