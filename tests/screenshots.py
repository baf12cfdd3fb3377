"""Write the dashboard's screenshots for the docs: ``python -m tests.screenshots [OUT_DIR]``.

Starts a real demo fleet on loopback (a coordinator and three synthetic cameras, CAM_R with
a different bitrate so a disagreement shows), starts a session from the laptop view, and saves
``dashboard-phone.png`` (390x844) and ``dashboard-laptop.png`` (1280x800) in OUT_DIR
(default ``docs/img``). Needs Debian's chromium, like the browser tests.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from app.demo import stop_all
from tests.conftest import CAMERAS, RunningFleet
from tests.test_dashboard import CHROMIUM_ARGS

VIEWS = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def shoot(page: Page, fleet: RunningFleet, out: Path, name: str, start: bool) -> None:
    page.goto(f"{fleet.url}/?token={fleet.operator_token}")
    expect(page.locator("article.card")).to_have_count(3)
    if start:  # from the page, so its results panel shows each camera's answer
        page.fill("#name", "U12 final, north pitch")
        page.click("#start")
    expect(page.locator("article.card .pill.recording")).to_have_count(3, timeout=10_000)
    for card in page.locator("article.card").all():
        card.locator("button[data-preview]").click()
    expect(page.locator("article.card .preview img:visible")).to_have_count(3, timeout=10_000)
    # the laptop shows the whole page; the phone its first screen of cards
    page.evaluate(
        "window.scrollTo(0, 0)"
        if name == "laptop"
        else "document.getElementById('cards').scrollIntoView()"
    )
    page.screenshot(path=str(out / f"dashboard-{name}.png"), full_page=name == "laptop")
    print(out / f"dashboard-{name}.png")


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/img")
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        fleet = RunningFleet(root=Path(tmp))
        try:
            fleet.start_coordinator()
            for cam_id, position in CAMERAS:
                extra = {"CAMFLEET_CAMERA__BITRATE_BPS": "3000000"} if cam_id == "CAM_R" else {}
                fleet.start_agent(cam_id, position, **extra)
            fleet.wait_online(3)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                try:
                    for name, viewport in VIEWS.items():
                        context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
                        shoot(context.new_page(), fleet, out, name, start=name == "laptop")
                        context.close()
                finally:
                    browser.close()
        finally:
            stop_all(fleet.children(), timeout_s=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
