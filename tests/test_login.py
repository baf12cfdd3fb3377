"""Sign-in against a real coordinator: the cookie, CSRF, sign-out, limits, restarts."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest
from argon2 import PasswordHasher

from app.demo import stop_all
from tests.conftest import RunningFleet

PASSWORD = "a long field-side password"
USERS = {"alice": PasswordHasher().hash(PASSWORD)}


def sign_in_env() -> dict[str, str]:
    return {"CAMFLEET_USERS": json.dumps(USERS), "CAMFLEET_LOGIN_MAX_FAILURES_PER_USER": "7"}


@pytest.fixture(scope="module")
def coord(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """A coordinator alone, with the user alice."""
    running = RunningFleet(root=tmp_path_factory.mktemp("login"), coordinator_env=sign_in_env())
    try:
        running.start_coordinator()
        yield running
    finally:
        stop_all(running.children())


def browser(fleet: RunningFleet, address: str = "127.0.0.1") -> httpx.Client:
    """A client like a browser: cookies, no bearer header, from ``address``."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=fleet.url, transport=transport, timeout=30)


def login(client: httpx.Client, user: str = "alice", password: str = PASSWORD, **more: str):
    form = {"user": user, "password": password} | more
    return client.post("/login", data=form)


def csrf_of(client: httpx.Client) -> str:
    """The session's CSRF token, as its pages get it (and as the API says it)."""
    page = client.get("/")
    assert page.status_code == 200, page.text
    who = client.get("/api/v1/auth/session").json()
    assert who["via"] == "session"
    found = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
    if found is not None:  # the pages on the shared common.js carry it
        assert found.group(1) == who["csrf_token"]
    token: str = who["csrf_token"]
    return token


def test_pages_send_a_browser_without_a_session_to_login(coord: RunningFleet) -> None:
    with browser(coord) as b:
        for path in ("/", "/recordings", "/nodes/cam-c/settings", "/docs"):
            resp = b.get(path)
            assert resp.status_code == 303, path
            assert resp.headers["location"] == f"/login?next={path}"
        page = b.get("/login?next=/recordings")
        assert page.status_code == 200
        assert 'name="user"' in page.text and 'name="token"' in page.text
        assert 'value="/recordings"' in page.text
        api = b.get("/api/v1/nodes")
        assert api.status_code == 401 and "sign in at /login" in api.json()["detail"]
        assert b.get("/static/common.js").status_code == 401
        # the old raw-token cookie is no credential any more
        b.cookies.set("camfleet_token", coord.operator_token)
        assert b.get("/api/v1/nodes").status_code == 401
        assert b.get("/").status_code == 303


def test_the_cookie_is_an_opaque_httponly_strict_session(coord: RunningFleet) -> None:
    with browser(coord) as b:
        resp = login(b, next="/recordings")
        assert resp.status_code == 303 and resp.headers["location"] == "/recordings"
        raw = [v for k, v in resp.headers.multi_items() if k == "set-cookie"]
        session = next(c for c in raw if c.startswith("camfleet_session="))
        morsel = SimpleCookie(session)["camfleet_session"]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "strict" and morsel["path"] == "/"
        assert not morsel["secure"]  # plain http here; https sets Secure
        assert coord.operator_token not in session and len(morsel.value) >= 32
        assert any(c.startswith('camfleet_token=""') for c in raw)  # the old cookie removed
        assert b.get("/api/v1/nodes").json()["total"] == 0
        events_ok = False
        with b.stream("GET", "/api/v1/events") as stream:  # the SSE stream takes it too
            assert stream.status_code == 200
            events_ok = next(stream.iter_lines()) == "retry: 2000"
        assert events_ok
        assert b.get("/login?next=/sessions").headers["location"] == "/sessions"


@pytest.mark.parametrize(
    "next_value", ["https://evil.example/", "//evil", "/\\evil.example", "http:/evil"]
)
def test_next_never_leaves_the_server(coord: RunningFleet, next_value: str) -> None:
    with browser(coord) as b:
        resp = b.post("/login", data={"token": coord.operator_token, "next": next_value})
        assert resp.status_code == 303 and resp.headers["location"] == "/"


def test_a_change_needs_the_csrf_token_with_the_cookie_not_with_the_bearer(
    coord: RunningFleet,
) -> None:
    with browser(coord) as b, coord.client() as script:
        assert login(b).status_code == 303
        token = csrf_of(b)
        dev = {"mode": "development"}
        missing = b.put("/api/v1/mode", json=dev)
        assert missing.status_code == 403 and missing.json()["code"] == "csrf_failed"
        assert "X-CSRF-Token" in missing.json()["detail"]
        wrong = b.put("/api/v1/mode", json=dev, headers={"X-CSRF-Token": token[:-2] + "xx"})
        assert wrong.status_code == 403
        # refused before the body is read: a body over the cap is a 403, not a 413
        big = b.put("/api/v1/mode", content=b"x" * 100_000, headers={"X-CSRF-Token": "no"})
        assert big.status_code == 403
        assert script.get("/api/v1/mode").json()["mode"] == "production"  # nothing changed
        done = b.put("/api/v1/mode", json=dev, headers={"X-CSRF-Token": token})
        assert done.status_code == 200, done.text
        assert script.get("/api/v1/mode").json()["mode"] == "development"
        # a script with the bearer header has no ambient credential: no CSRF token asked
        back = script.put("/api/v1/mode", json={"mode": "production"})
        assert back.status_code == 200 and back.json()["mode"] == "production"
        # a session's token is its own: another session's is refused
        with browser(coord) as other:
            assert login(other).status_code == 303
            assert csrf_of(other) != token
            refused = other.put("/api/v1/mode", json=dev, headers={"X-CSRF-Token": token})
            assert refused.status_code == 403


def test_sign_out_ends_the_session_on_the_server(coord: RunningFleet) -> None:
    with browser(coord) as b:
        assert b.get("/?token=" + coord.operator_token).status_code == 303
        token = csrf_of(b)
        saved = b.cookies.get("camfleet_session")
        assert saved
        refused = b.post("/logout", data={"csrf_token": "not-it"})
        assert refused.status_code == 403 and "still signed in" in refused.text
        assert b.get("/api/v1/nodes").status_code == 200
        out = b.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert b.get("/").status_code == 303
    with browser(coord) as copied:
        copied.cookies.set("camfleet_session", saved)
        gone = copied.get("/api/v1/nodes")
        assert gone.status_code == 401 and "session has ended" in gone.json()["detail"]
        assert copied.get("/").headers["location"] == "/login?next=/"


def test_a_wrong_token_in_the_url_gets_the_sign_in_page(coord: RunningFleet) -> None:
    with browser(coord) as b:
        resp = b.get("/docs?token=wrong-wrong-wrong-wrong")
        assert resp.status_code == 401 and "That token is not valid" in resp.text
        signed = b.get(f"/docs?token={coord.operator_token}")
        assert signed.status_code == 303 and signed.headers["location"] == "/docs"
        assert "swagger-ui" in b.get("/docs").text
        assert b.get("/openapi.json").status_code == 200


def test_a_sign_in_from_another_site_is_refused(coord: RunningFleet) -> None:
    with browser(coord) as b:
        resp = b.post(
            "/login",
            data={"token": coord.operator_token},
            headers={"Origin": "https://evil.example"},
        )
        assert resp.status_code == 403 and "camfleet_session" not in resp.headers.get(
            "set-cookie", ""
        )


def test_failed_sign_ins_are_limited_per_address_and_per_user(coord: RunningFleet) -> None:
    with browser(coord, "127.0.0.3") as guesser, browser(coord, "127.0.0.4") as other:
        for _ in range(5):
            assert login(guesser, password="a wrong guess").status_code == 401
        limited = login(guesser)  # the right password, too soon
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 300
        assert "Too many failed sign-ins" in limited.text
        assert "camfleet_session" not in guesser.cookies
        token_too = guesser.post("/login", data={"token": coord.operator_token})
        assert token_too.status_code == 429
        assert login(other).status_code == 303  # another address is not limited
    # seven failures for one name, each from its own address, limit that name everywhere
    for i in range(7):
        with browser(coord, f"127.0.0.{10 + i}") as b:
            assert login(b, user="bob", password="a wrong guess").status_code == 401
    with browser(coord, "127.0.0.30") as fresh:
        assert login(fresh, user="bob", password="another guess").status_code == 429
        assert login(fresh).status_code == 303  # alice from there is fine


def _restart(fleet: RunningFleet) -> None:
    assert fleet.coordinator is not None
    fleet.kill(fleet.coordinator, 15)
    fleet.start_coordinator()


def test_sessions_survive_a_coordinator_restart(fleet_factory: RunningFleet) -> None:
    fleet = fleet_factory
    fleet.coordinator_env |= sign_in_env()
    fleet.start_coordinator()
    with browser(fleet) as b:
        assert login(b).status_code == 303
        token = csrf_of(b)
        data = fleet.root / "coordinator"
        assert (data / "session_secret").stat().st_mode & 0o777 == 0o600
        assert (data / "sessions.json").stat().st_mode & 0o777 == 0o600
        assert b.cookies["camfleet_session"] not in (data / "sessions.json").read_text()
        _restart(fleet)
        assert b.get("/api/v1/nodes").status_code == 200
        assert csrf_of(b) == token
        changed = b.put(
            "/api/v1/mode", json={"mode": "production"}, headers={"X-CSRF-Token": token}
        )
        assert changed.status_code == 200


def test_an_expired_session_is_refused(fleet_factory: RunningFleet) -> None:
    fleet = fleet_factory
    fleet.coordinator_env |= {"CAMFLEET_SESSION_MAX_AGE_S": "3"}
    fleet.start_coordinator()
    with browser(fleet) as b:
        signed_at = time.monotonic()
        assert b.get("/?token=" + fleet.operator_token).status_code == 303
        saved = b.cookies["camfleet_session"]
    # the browser forgets the cookie after its Max-Age; a copy kept longer is refused
    copied = {"Cookie": f"camfleet_session={saved}"}
    with httpx.Client(base_url=fleet.url, headers=copied, timeout=30) as c:
        assert c.get("/api/v1/nodes").status_code == 200
        deadline = signed_at + 20
        while c.get("/api/v1/nodes").status_code == 200:  # used all along, still it ends
            assert time.monotonic() < deadline, "the session did not expire"
            time.sleep(0.2)
        assert time.monotonic() - signed_at >= 2.9
        refused = c.get("/api/v1/nodes")
        assert refused.status_code == 401 and "expired" in refused.json()["detail"]
        assert c.get("/").headers["location"] == "/login?next=/"
