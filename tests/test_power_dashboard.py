"""The battery, dashcam and timelapse lines on a camera's dashboard card, in a real
headless Chromium, from real agents: one whose battery command reads a file the test
writes, one in the dashcam mode (a dry run whose NAS is a closed loopback port), one with
a daily timelapse window."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from bench.common import free_port
from tests.conftest import RunningFleet
from tests.test_dashboard import browser, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def test_the_card_shows_the_battery_and_highlights_a_low_one(
    fleet_factory: RunningFleet,
    page: Page,  # noqa: F811
    tmp_path: Path,
) -> None:
    state = tmp_path / "battery.json"
    state.write_text(json.dumps({"battery_percent": 52, "battery_voltage": 3.27, "on_ac": False}))
    script = tmp_path / "battery-info.sh"
    script.write_text(f"#!/bin/sh\ncat {state}\n")
    script.chmod(0o755)
    fleet = fleet_factory
    fleet.start_coordinator()
    fleet.start_agent(
        "CAM_C",
        "centre",
        CAMFLEET_POWER__PROVIDER="command",
        CAMFLEET_POWER__COMMAND=json.dumps([str(script)]),
        CAMFLEET_POWER__POLL_INTERVAL_S="0.2",
        CAMFLEET_POWER__SHUTDOWN_COMMAND=json.dumps([str(tmp_path / "no-poweroff"), "x"]),
    )
    # provider none: no battery line; the dashcam mode in a dry run, its NAS a closed port
    fleet.start_agent(
        "CAM_L",
        "left",
        CAMFLEET_DASHCAM__ENABLED="true",
        CAMFLEET_DASHCAM__DRY_RUN="true",
        CAMFLEET_DASHCAM__PATHS__LOCAL_STAGING=str(tmp_path / "staging"),
        CAMFLEET_DASHCAM__UPLOAD__HOST="127.0.0.1",
        CAMFLEET_DASHCAM__UPLOAD__PORT=str(free_port()),
        CAMFLEET_DASHCAM__UPLOAD__CONNECT_TIMEOUT_S="0.5",
        CAMFLEET_DASHCAM__POLL__INTERVAL_SECONDS="0.5",
    )
    fleet.wait_online(2)
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    line = page.locator('article.card[data-node="cam-c"] dd.battery')
    expect(line).to_have_text("52 %, 3.27 V, low")
    expect(line).to_have_class("battery level-low")
    expect(page.locator('article.card[data-node="cam-l"] dd.battery')).to_have_count(0)
    dashcam = page.locator('article.card[data-node="cam-l"] dd.dashcam')
    expect(dashcam).to_have_text("recording (dry run), 0 to upload, NAS unreachable")
    expect(page.locator('article.card[data-node="cam-c"] dd.dashcam')).to_have_count(0)


def test_the_card_shows_the_timelapse_s_day_and_a_run_started_from_the_page(
    fleet_factory: RunningFleet,
    page: Page,  # noqa: F811
) -> None:
    now = dt.datetime.now().astimezone()
    # A window later today (waiting for it), or, late in the evening, one already over.
    later = now.hour < 22
    window = ("22:00", "23:00") if later else ("00:00", "00:01")
    fleet = fleet_factory
    fleet.start_fleet(
        [("CAM_C", "centre"), ("CAM_L", "left")],
        {
            "CAM_C": {
                "CAMFLEET_TIMELAPSE__WINDOW": "fixed",
                "CAMFLEET_TIMELAPSE__START_TIME": window[0],
                "CAMFLEET_TIMELAPSE__END_TIME": window[1],
                "CAMFLEET_TIMELAPSE__INTERVAL_S": "60",
            }
        },
    )
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    day = page.locator('article.card[data-node="cam-c"] dd.timelapse')
    expected = 60 if later else 1
    expect(day).to_have_text(
        f"{'waiting' if later else 'idle'}, 0 of {expected} photos today, "
        f"{window[0]}\u2013{window[1]}, every 60 s"
    )
    # No window and nothing running: no line (a match camera's card stays short).
    other = page.locator('article.card[data-node="cam-l"] dd.timelapse')
    expect(other).to_have_count(0)
    page.locator("#timelapse-start").click()  # the fleet's button: every camera
    expect(other).to_contain_text(re.compile(r"^capturing, [1-9]\d* photos today, every "))
    expect(day).to_contain_text("a run started by hand")
    page.locator("#timelapse-stop").click()
    expect(other).to_have_count(0)
