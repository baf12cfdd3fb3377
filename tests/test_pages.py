"""The sessions, session, recordings and settings pages in a real headless Chromium against
a real fleet: checksums and downloads that fetch the right bytes, a session renamed from
its page, a setting changed and a bad one refused, and no sideways scrolling on a phone."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.conftest import RunningFleet
from tests.test_dashboard import browser  # noqa: F401  (the module's Chromium)
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport=PHONE)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, fleet: RunningFleet, path: str) -> None:
    """Open ``path`` signed in as the operator (the session cookie is set once)."""
    resp = page.goto(f"{fleet.url}{path}?token={fleet.operator_token}")
    assert resp is not None and resp.status == 200, resp and resp.status


def assert_fits(page: Page) -> None:
    """No sideways scrolling, and every cut-off name has its whole text in its title."""
    expect(page.locator("nav")).to_have_count(1)
    width = page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    if width[0] > width[1]:
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > innerWidth)
                .slice(-5).map(e => e.outerHTML.slice(0, 200))"""
        )
        raise AssertionError(f"scrolls sideways: {width} on {page.url}: {wide}")
    bad = page.evaluate(
        """() => [...document.querySelectorAll('.trunc')]
            .filter(e => e.title !== e.textContent).map(e => e.outerHTML)"""
    )
    assert bad == [], bad


def recorded_and_offloaded(fleet: RunningFleet) -> dict[str, Any]:
    """A short session on three cameras, stopped and offloaded through the API."""
    with fleet.client() as c:
        started = c.post("/api/v1/sessions", json={"name": "pages kick-off", "lead_ms": 300})
        assert started.status_code == 201, started.text
        sid = started.json()["session_id"]

        def frames() -> list[int]:
            nodes = c.get("/api/v1/nodes").json()["nodes"]
            return [(n["status"] or {}).get("recorder", {}).get("frames", 0) for n in nodes]

        # a second of footage on every camera (the start instant may be seconds away)
        wait_for("every camera recording", lambda: all(f >= 30 for f in frames()))
        stopped = c.post(f"/api/v1/sessions/{sid}/stop").json()
        assert stopped["state"] == "stopped" and len(stopped["nodes"]) == 3, stopped
        job = c.post("/api/v1/offload", json={"session_id": sid})
        assert job.status_code == 202, job.text
        job_id = job.json()["job_id"]
        done = wait_for(
            "the offload",
            lambda: (j := c.get(f"/api/v1/offload/{job_id}").json())["state"] != "running" and j,
        )
        assert done["state"] == "done", done
        return dict(c.get(f"/api/v1/sessions/{sid}").json())


def test_a_session_page_shows_checksums_and_downloads_of_the_right_bytes(
    three_cameras: RunningFleet, page: Page, tmp_path: Path
) -> None:
    fleet = three_cameras
    session = recorded_and_offloaded(fleet)
    sid = session["session_id"]
    with fleet.client() as c:
        recs = c.get("/api/v1/recordings", params={"session_id": sid}).json()["recordings"]
        manifests = {r["file_name"]: r["manifest"] for r in recs}
        assert len(manifests) == 3, json.dumps(session["nodes"])

    sign_in(page, fleet, "/sessions")
    row = page.locator("#sessions tbody tr", has_text="pages kick-off")
    expect(row).to_have_count(1)
    expect(row.locator(".node-count")).to_have_text("3")
    expect(row.locator(".offload")).to_contain_text("3 confirmed")
    expect(row.locator(".skew-bound")).to_have_text("bound unknown")  # no chrony in tests
    expect(row.locator("time")).to_have_attribute("datetime", session["created_at"])
    assert_fits(page)
    page.screenshot(path=str(tmp_path / "sessions-phone.png"), full_page=True)
    row.locator("a", has_text="pages kick-off").click()

    expect(page).to_have_url(f"{fleet.url}/sessions/{sid}")
    expect(page.locator("#title")).to_have_text("pages kick-off")
    expect(page.locator("#nodes tbody tr")).to_have_count(3)
    expect(page.locator("#nodes .start")).to_have_text([re.compile("^armed")] * 3)
    # A loaded machine can also put the first frames a frame apart (a second warning):
    # only the bound's warning is certain here.
    expect(page.locator(".skew-warning", has_text="no clock error bound")).to_have_count(1)
    articles = page.locator("article.recording")
    expect(articles).to_have_count(3)
    assert_fits(page)
    cut = page.evaluate(
        """() => [...document.querySelectorAll('article.recording h3 .trunc')]
            .filter(e => e.scrollWidth > e.clientWidth).length"""
    )
    assert cut >= 1, "a long file name should be cut on a phone"
    page.screenshot(path=str(tmp_path / "session-phone.png"), full_page=True)

    for i in range(3):
        article = articles.nth(i)
        name = article.locator("h3 .trunc").get_attribute("title")
        assert name in manifests, name
        sha = manifests[name]["sha256"]
        expect(article.locator("code.sha")).to_have_attribute("title", sha)
        expect(article.locator("code.sha")).to_have_text(sha[:12] + "…")
        expect(article.locator(".state.confirmed")).to_have_count(1)
        hrefs = [
            article.locator(f"a.download.{kind}").get_attribute("href")
            for kind in ("archive", "relay")
        ]
        for href in hrefs:
            got = page.request.get(f"{fleet.url}{href}")  # the browser's own cookie
            assert got.status == 200, (href, got.status)
            assert hashlib.sha256(got.body()).hexdigest() == sha, href
    zip_href = page.locator("a.zip").get_attribute("href")
    assert page.request.get(f"{fleet.url}{zip_href}").body()[:2] == b"PK"

    page.set_viewport_size(LAPTOP)
    assert_fits(page)
    page.screenshot(path=str(tmp_path / "session-laptop.png"), full_page=True)

    # Rename it and add a note from its page; a reload shows both.
    page.fill("#name", "Reds v Blues, first half")
    page.click("#add-note")
    page.locator(".note-row .note-key").last.fill("venue")
    page.locator(".note-row .note-value").last.fill("North pitch")
    page.click("#save")
    expect(page.locator("#edit-message")).to_have_text("Saved.")
    page.reload()
    expect(page.locator("#title")).to_have_text("Reds v Blues, first half")
    expect(page.locator("#name")).to_have_value("Reds v Blues, first half")
    expect(page.locator("#summary .note")).to_have_text("North pitch")
    expect(page.locator("#summary .edited")).to_have_count(1)
    with fleet.client() as c:
        stored = c.get(f"/api/v1/sessions/{sid}").json()
    assert stored["name"] == "Reds v Blues, first half"
    assert stored["metadata"] == {"venue": "North pitch"}

    # A name the API refuses is shown next to the field, and nothing changes.
    page.fill("#name", "tab\there")
    page.click("#save")
    expect(page.locator("#name-error")).not_to_be_empty()
    expect(page.locator("#name")).to_have_attribute("aria-invalid", "true")
    with fleet.client() as c:
        assert c.get(f"/api/v1/sessions/{sid}").json()["name"] == "Reds v Blues, first half"

    # The recordings page: every file, filtered by node, with its checksum and link.
    page.set_viewport_size(PHONE)
    page.goto(f"{fleet.url}/recordings")
    expect(page.locator("#recordings tbody tr")).to_have_count(3)
    assert_fits(page)
    page.screenshot(path=str(tmp_path / "recordings-phone.png"), full_page=True)
    page.select_option("#f-node", "cam-l")
    expect(page.locator("#recordings tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"node_id=cam-l"))
    only = page.locator("#recordings tbody tr")
    name = only.locator("td.file .trunc").get_attribute("title")
    assert name is not None and "CAM_L" in name
    expect(only.locator("code.sha")).to_have_attribute("title", manifests[name]["sha256"])
    expect(only.locator(".state.confirmed")).to_have_count(1)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=fleet.url)
    only.locator("button.copy").focus()
    page.keyboard.press("Enter")  # the copy button works from the keyboard
    expect(only.locator("button.copy")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == manifests[name]["sha256"]
    href = only.locator("a.download.archive").get_attribute("href")
    got = page.request.get(f"{fleet.url}{href}")
    assert hashlib.sha256(got.body()).hexdigest() == manifests[name]["sha256"]
    page.select_option("#f-session", sid)
    page.select_option("#f-node", "")
    expect(page.locator("#recordings tbody tr")).to_have_count(3)
    page.set_viewport_size(LAPTOP)
    assert_fits(page)
    page.screenshot(path=str(tmp_path / "recordings-laptop.png"), full_page=True)


def test_the_settings_page_applies_a_change_and_shows_a_refusal_by_its_field(
    fleet: RunningFleet, page: Page, tmp_path: Path
) -> None:
    own = fleet.root / "CAM_C" / "agent.yaml"
    sign_in(page, fleet, "/nodes/cam-c/settings")
    gates = page.locator('details[data-section="gates"]')
    expect(gates.locator("summary")).to_contain_text("gates")
    field = page.locator('[data-key="gates.max_clock_error_ms"]')
    expect(field).to_be_hidden()  # sections are folded
    gates.locator("summary").click()
    page.locator('details[data-section="camera"] summary').click()
    page.locator('details[data-section="general"] summary').click()
    expect(field).to_have_attribute("type", "number")
    expect(page.locator('[data-key="camera.audio"]')).to_have_attribute("type", "checkbox")
    secret = page.locator('[data-key="fleet_token"]')
    expect(secret).to_have_attribute("type", "password")
    expect(secret).to_have_value("")
    # camera.fps comes from the test agent's environment: the page says so
    expect(page.locator("#f-camera-fps-hint")).to_contain_text("environment")
    assert_fits(page)
    version = int(page.locator("#version").inner_text())

    field.fill("3.5")
    page.click("#save")
    expect(page.locator("#applied")).to_have_text("gates.max_clock_error_ms")
    expect(page.locator("#restart")).to_have_text("none")
    expect(page.locator("#version")).to_have_text(str(version + 1))
    with fleet.client() as c:
        doc = c.get("/api/v1/nodes/cam-c/config").json()
    assert doc["settings"]["gates"]["max_clock_error_ms"] == 3.5
    assert doc["settings"]["fleet_token"] == "**********"  # kept: it was not typed
    assert doc["version"] == version + 1
    text = own.read_text()
    assert "max_clock_error_ms: 3.5" in text and "fleet_token" not in text  # only the change

    before = own.read_bytes()
    fps = page.locator('[data-key="camera.fps"]')
    fps.fill("0")
    page.click("#save")
    error = page.locator('[data-error-for="camera.fps"]')
    expect(error).not_to_be_empty()
    expect(error).to_contain_text("greater than 0")
    expect(fps).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#message")).to_contain_text("Nothing was written")
    assert own.read_bytes() == before
    page.screenshot(path=str(tmp_path / "settings-phone.png"), full_page=True)

    # A change made elsewhere meanwhile: the page's version is stale, and it says so.
    with fleet.client() as c:
        ok = c.put(
            "/api/v1/nodes/cam-c/config",
            json={"settings": {"gates": {"max_clock_error_ms": 4}}},
        )
        assert ok.status_code == 200, ok.text
    fps.fill(str(int(fleet.fps)))  # back to what it was
    field.fill("2.5")
    page.click("#save")
    expect(page.locator("#message")).to_contain_text("changed elsewhere")
    with fleet.client() as c:
        assert (
            c.get("/api/v1/nodes/cam-c/config").json()["settings"]["gates"]["max_clock_error_ms"]
            == 4
        )
    page.set_viewport_size(LAPTOP)
    assert_fits(page)


def test_pages_need_the_operator(fleet: RunningFleet) -> None:
    for path in ("/sessions", "/sessions/x", "/recordings", "/nodes/cam-c/settings"):
        # no session: sent to the sign-in page, which comes back here after it
        resp = httpx.get(f"{fleet.url}{path}")
        assert resp.status_code == 303, path
        assert resp.headers["location"] == f"/login?next={quote(path, safe='/')}", resp.headers
        form = httpx.get(f"{fleet.url}{path}", follow_redirects=True)
        assert form.url.path == "/login" and 'type="password"' in form.text, form.url
