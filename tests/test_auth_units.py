"""The sign-in parts alone: the sessions table, the failure limiter, next=, user add."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import yaml
from argon2 import PasswordHasher

from app.auth.limiter import FailureLimiter
from app.auth.sessions import SECRET_FILE, TABLE_FILE, SessionStore
from app.auth.usercmd import UserError, run_user, set_user
from app.web.auth_pages import safe_next

# cheap parameters: the tests hash many times; the coordinator uses the library's defaults
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_session_lives_until_idle_or_too_old(tmp_path: Path) -> None:
    clock = Clock()
    store = SessionStore(tmp_path, idle_s=100, max_age_s=250, clock=clock)
    sid = store.create("alice")
    found = store.lookup(sid)
    assert found is not None and found.user == "alice"
    clock.now += 99
    assert store.lookup(sid) is not None  # used: its idle clock starts again
    clock.now += 99
    assert store.lookup(sid) is not None
    clock.now += 101
    assert store.lookup(sid) is None  # idle too long
    other = store.create("bob")
    for _ in range(4):  # used every 60 s, but 250 s after sign-in it ends anyway
        clock.now += 60
        assert store.lookup(other) is not None
    clock.now += 60
    assert store.lookup(other) is None
    assert store.lookup("not-a-session") is None and store.lookup("") is None


def test_sessions_survive_a_new_store_and_revoke_ends_them(tmp_path: Path) -> None:
    clock = Clock()
    store = SessionStore(tmp_path, idle_s=3600, max_age_s=86400, clock=clock)
    kept, ended = store.create("alice"), store.create("bob")
    csrf = store.csrf_token(kept)
    assert store.revoke(ended) and not store.revoke(ended)
    again = SessionStore(tmp_path, idle_s=3600, max_age_s=86400, clock=clock)  # a restart
    assert again.lookup(kept) is not None and again.lookup(ended) is None
    assert again.csrf_ok(kept, csrf) and not again.csrf_ok(ended, csrf)
    assert not again.csrf_ok(kept, "") and not again.csrf_ok(kept, None)
    assert (tmp_path / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / TABLE_FILE).stat().st_mode & 0o777 == 0o600
    table = (tmp_path / TABLE_FILE).read_text()
    assert kept not in table and "alice" in table  # only an HMAC of the id is kept
    assert list(tmp_path.glob(".*tmp*")) == []


def test_a_restart_after_the_idle_limit_ends_the_session(tmp_path: Path) -> None:
    clock = Clock()
    sid = SessionStore(tmp_path, idle_s=100, max_age_s=1000, clock=clock).create("alice")
    clock.now += 101
    assert SessionStore(tmp_path, idle_s=100, max_age_s=1000, clock=clock).lookup(sid) is None


def test_the_table_is_capped(tmp_path: Path) -> None:
    clock = Clock()
    store = SessionStore(tmp_path, idle_s=3600, max_age_s=86400, clock=clock, max_sessions=3)
    sids = []
    for _ in range(5):
        clock.now += 1
        sids.append(store.create("alice"))
    assert len(store) == 3
    assert store.lookup(sids[0]) is None and store.lookup(sids[-1]) is not None


def test_the_limiter_counts_in_a_window_and_is_bounded() -> None:
    clock = Clock()
    lim = FailureLimiter(max_failures=5, window_s=300, clock=clock, max_keys=100)
    for _ in range(4):
        lim.fail("a")
    assert lim.retry_after("a") is None
    lim.fail("a")
    wait = lim.retry_after("a")
    assert wait is not None and 299 <= wait <= 300
    clock.now += 200
    assert lim.retry_after("a") == 100
    clock.now += 100
    assert lim.retry_after("a") is None  # the window passed
    for _ in range(5):
        lim.fail("b")
    lim.reset("b")
    assert lim.retry_after("b") is None
    for _ in range(5):
        lim.fail("flooder")
    for i in range(1000):
        lim.fail(f"made-up-{i}")
        lim.fail("flooder")  # the flooder's own key stays the freshest
    assert len(lim) == 100
    assert lim.retry_after("flooder") is not None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "https://evil.example/",
        "//evil",
        "/\\evil",
        "evil",
        "javascript:alert(1)",
        "/login?next=//evil",
        "/ //evil",
        "/\t/evil",
    ],
)
def test_next_is_a_path_of_this_server_only(value: str | None) -> None:
    assert safe_next(value) == "/"


def test_next_keeps_a_local_path() -> None:
    assert safe_next("/sessions/abc?x=1") == "/sessions/abc?x=1"
    assert safe_next("/nodes/cam-c/settings") == "/nodes/cam-c/settings"


CONFIG = """\
# the coordinator at the pitch
port: 8080   # behind nothing
users:
    # people
    bob: '$argon2id$old'
beep: false
"""


def test_set_user_keeps_the_file_and_its_comments() -> None:
    added = set_user(CONFIG, "alice", "$argon2id$new")
    assert "# the coordinator at the pitch" in added and "# behind nothing" in added
    parsed = yaml.safe_load(added)
    assert parsed["users"] == {"alice": "$argon2id$new", "bob": "$argon2id$old"}
    assert parsed["beep"] is False and parsed["port"] == 8080
    changed = yaml.safe_load(set_user(added, "bob", "$argon2id$newer"))
    assert changed["users"] == {"alice": "$argon2id$new", "bob": "$argon2id$newer"}
    fresh = yaml.safe_load(set_user("port: 8080", "true", "$argon2id$x"))
    assert fresh == {"port": 8080, "users": {"true": "$argon2id$x"}}  # a string key
    with pytest.raises(UserError, match="not a block"):
        set_user("users: {bob: x}\n", "alice", "$argon2id$x")


def _args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "name": "alice",
        "config": None,
        "print_only": False,
        "password_stdin": True,
    }
    return argparse.Namespace(**(base | kw))


def test_user_add_writes_a_hash_that_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "coordinator.yaml"
    path.write_text(CONFIG)
    path.chmod(0o640)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert run_user(_args(config=str(path)), FAST) == 0
    assert "restart the coordinator" in capsys.readouterr().out
    hashed = yaml.safe_load(path.read_text())["users"]["alice"]
    assert hashed.startswith("$argon2id$") and FAST.verify(hashed, "correct horse")
    assert path.stat().st_mode & 0o777 == 0o640
    assert "# people" in path.read_text()

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert run_user(_args(print_only=True), FAST) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert FAST.verify(printed["users"]["alice"], "correct horse")


def test_user_add_refuses_what_it_cannot_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "coordinator.yaml"
    path.write_text(CONFIG)
    answers = iter(["first password", "second password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert run_user(_args(config=str(path), password_stdin=False), FAST) == 2
    assert "differ" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert run_user(_args(config=str(path)), FAST) == 2
    assert "too short" in capsys.readouterr().err
    monkeypatch.delenv("CAMFLEET_COORDINATOR_CONFIG", raising=False)
    assert run_user(_args(), FAST) == 2
    assert "--config" in capsys.readouterr().err
    assert run_user(_args(name="no spaces please"), FAST) == 2
    assert path.read_text() == CONFIG  # nothing was written
