"""The dashboard's live updates in a real headless Chromium: a card turns to recording without
a reload, and the page says it is out of date while the coordinator is down, then recovers."""

from __future__ import annotations

import re
import signal

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import RunningFleet
from tests.test_dashboard import browser, page  # noqa: F401 (fixtures)
from tests.test_live_events import live_fleet  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


def test_cards_follow_the_events_and_the_page_says_when_it_is_out_of_date(
    live_fleet: RunningFleet,  # noqa: F811
    page: Page,  # noqa: F811
) -> None:
    fleet = live_fleet
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("article.card")).to_have_count(3)
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate("window.notReloaded = true")
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))

    # Started from elsewhere (the API), as another operator or the CLI would. The page reads
    # nodes only from the stream while it is live, and the coordinator polls every 5 s, so
    # the cards can only turn within this bound through the events.
    with fleet.client() as c:
        created = c.post("/api/v1/sessions", json={"name": "live page", "lead_ms": 800})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        expect(page.locator("article.card .pill.recording")).to_have_count(3, timeout=2_000)
        expect(page.locator("#last-session")).to_contain_text("live page", timeout=2_000)
        stopped = c.post(f"/api/v1/sessions/{session_id}/stop")
        assert stopped.status_code == 200, stopped.text
    expect(page.locator("article.card .pill.recording")).to_have_count(0, timeout=2_000)
    assert page.evaluate("window.notReloaded") is True and loads == []

    assert fleet.coordinator is not None
    fleet.kill(fleet.coordinator, signal.SIGTERM)
    stale = page.locator("#live")
    expect(stale).to_have_text(re.compile(r"^out of date since \d\d:\d\d:\d\d$"), timeout=5_000)
    expect(stale).to_have_class(re.compile(r"\bstale\b"))

    fleet.start_coordinator()
    expect(stale).to_have_text("live", timeout=10_000)
    expect(page.locator("article.card")).to_have_count(3)
    assert page.evaluate("window.notReloaded") is True and loads == []
