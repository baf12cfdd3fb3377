"""Signing in and out in a real headless Chromium, with a user made by `camfleet user add`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from app.demo import stop_all
from tests.conftest import RunningFleet
from tests.test_dashboard import browser  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow

PASSWORD = "touchline at dusk"


@pytest.fixture(scope="module")
def signed_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """A coordinator whose settings file got its user from the CLI, and CAM_C."""
    root = tmp_path_factory.mktemp("signin")
    config = root / "coordinator.yaml"
    config.write_text("# the rig at the pitch\nbeep: false\n")
    command = ["user", "add", "alice", "--config", str(config), "--password-stdin"]
    made = subprocess.run(
        [sys.executable, "-m", "app.cli", *command],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert "# the rig at the pitch" in config.read_text()
    running = RunningFleet(root=root, coordinator_env={"CAMFLEET_COORDINATOR_CONFIG": str(config)})
    try:
        running.start_coordinator()
        running.start_agent("CAM_C", "centre")
        running.wait_online(1)
        yield running
    finally:
        stop_all(running.children())


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        yield context.new_page()
    finally:
        context.close()


# A fetch in the page, as the page's own scripts make it (with or without the header).
PUT_MODE = """async ([mode, withToken]) => {
  const who = await (await fetch("/api/v1/auth/session")).json();
  const headers = {"Content-Type": "application/json"};
  if (withToken) headers["X-CSRF-Token"] = who.csrf_token;
  const r = await fetch("/api/v1/mode", {method: "PUT", headers, body: JSON.stringify({mode})});
  return [r.status, await r.json()];
}"""

# What common.js's nav() puts on every page: a form that posts /logout with csrf_token.
SIGN_OUT = """async () => {
  const who = await (await fetch("/api/v1/auth/session")).json();
  const f = document.createElement("form");
  f.method = "post"; f.action = "/logout";
  f.innerHTML = '<input type="hidden" name="csrf_token"><button type="submit">Sign out</button>';
  f.querySelector("input").value = who.csrf_token;
  document.body.append(f);
  f.querySelector("button").click();
}"""


def test_sign_in_reload_sign_out_and_the_old_cookie_is_refused(
    signed_fleet: RunningFleet,
    phone: Page,
    browser: Browser,  # noqa: F811
) -> None:
    fleet = signed_fleet
    page = phone
    page.goto(f"{fleet.url}/")
    expect(page).to_have_url(f"{fleet.url}/login?next=/")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.get_by_label("User name", exact=True).fill("alice")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    expect(page.get_by_label("User name", exact=True)).to_have_value("alice")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password", exact=True).press("Enter")  # the keyboard signs in too
    expect(page).to_have_url(f"{fleet.url}/")
    expect(page.locator("article.card")).to_have_count(1)

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["camfleet_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/"
    assert fleet.operator_token not in session["value"]
    assert page.evaluate("document.cookie") == ""  # no script can read it

    page.reload()
    expect(page.locator("article.card")).to_have_count(1)
    assert page.url == f"{fleet.url}/"

    status, body = page.evaluate(PUT_MODE, ["development", False])
    assert status == 403 and "CSRF" in body["detail"]
    with fleet.client() as script:
        assert script.get("/api/v1/mode").json()["mode"] == "production"
        status, body = page.evaluate(PUT_MODE, ["development", True])
        assert status == 200 and body["mode"] == "development"
        assert script.get("/api/v1/mode").json()["mode"] == "development"
        assert script.put("/api/v1/mode", json={"mode": "production"}).status_code == 200

    page.evaluate(SIGN_OUT)
    expect(page).to_have_url(f"{fleet.url}/login")
    expect(page.get_by_label("User name", exact=True)).to_be_visible()
    page.goto(f"{fleet.url}/")
    expect(page).to_have_url(f"{fleet.url}/login?next=/")

    # the cookie saved before the sign-out, put into another browser, is refused
    other = browser.new_context()
    try:
        other.add_cookies([{"name": session["name"], "value": session["value"], "url": fleet.url}])
        stolen = other.new_page()
        stolen.goto(f"{fleet.url}/")
        expect(stolen).to_have_url(f"{fleet.url}/login?next=/")
        assert stolen.request.get(f"{fleet.url}/api/v1/nodes").status == 401
    finally:
        other.close()


def test_a_signed_out_page_goes_to_login_and_comes_back(
    signed_fleet: RunningFleet, phone: Page
) -> None:
    page = phone
    page.goto(f"{signed_fleet.url}/recordings?x=1")
    expect(page).to_have_url(f"{signed_fleet.url}/login?next=/recordings")
    page.get_by_label("Operator token", exact=True).fill(signed_fleet.operator_token)
    page.get_by_role("button", name="Sign in with the token").click()
    expect(page).to_have_url(f"{signed_fleet.url}/recordings")
