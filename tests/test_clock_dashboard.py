"""The clock on a camera's dashboard card, in a real headless Chromium, from real agents
reading a real chronyd -x master and client: offset and bound, role, stratum and source;
the flag when the client stops following the master."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.clock_fleet import clock_fleet, synced, wait_for
from tests.conftest import RunningFleet
from tests.test_dashboard import browser, page  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="chronyd -u root needs root"),
]


def test_the_card_shows_the_clock_and_flags_a_client_that_lost_its_master(
    fleet_factory: RunningFleet,
    page: Page,  # noqa: F811
    tmp_path: Path,
) -> None:
    fleet = fleet_factory
    with clock_fleet(fleet, tmp_path) as pair:
        wait_for(fleet, "both clocks synchronised", synced, 30)
        page.goto(f"{fleet.url}/?token={fleet.operator_token}")
        client = page.locator('article.card[data-node="cam-l"]')
        master = page.locator('article.card[data-node="cam-c"]')
        expect(client.locator("dd.clock")).to_contain_text(" ± ")
        expect(client.locator(".clock-info")).to_contain_text("client, stratum 9, ref 127.0.0.1")
        expect(client.locator("dd.clock")).to_have_attribute(
            "title", _contains("127.0.0.1 selected reach 377")
        )
        expect(master.locator(".clock-info")).to_contain_text("master, stratum 8, ref LOCAL")
        expect(client.locator("dd.clock-flag")).to_have_count(0)

        pair.kill_master()
        flag = client.locator("dd.clock-flag")
        expect(flag).to_contain_text("not following the master", timeout=30_000)
        expect(flag).to_have_class("clock-flag warn")
        expect(client.locator("dd.clock")).to_contain_text("unsynchronized")


def _contains(text: str) -> re.Pattern[str]:
    return re.compile(".*" + re.escape(text) + ".*", re.S)
