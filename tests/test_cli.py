"""The `camfleet` command's help is plain text a new user can read."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest

from app import cli
from bench.common import free_port

COMMANDS = (
    "coordinator",
    "agent",
    "demo",
    "dashcam",
    "nodes",
    "start",
    "stop",
    "sessions",
    "session",
    "fleet",
    "config",
    "logs",
    "offload",
    "download",
    "archive",
)


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 0
    return capsys.readouterr().out


def test_help_is_plain_text_and_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(["--help"], capsys)
    assert "``" not in text and ":mod:" not in text
    assert "CAMFLEET_URL" in text and "CAMFLEET_OPERATOR_TOKEN" in text
    for command in (*COMMANDS, "recordings", "approve", "remove"):
        # each command is listed with a one-line help beside it
        assert re.search(rf"^    {command} +\S", text, re.M), text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text([command, "--help"], capsys)
    assert "``" not in text
    assert text.split("\n\n")[1].strip().endswith(".")


@pytest.mark.parametrize(
    "argv",
    [
        ["fleet", "status"],
        ["fleet", "start"],
        ["fleet", "stop"],
        ["fleet", "selftest"],
        ["fleet", "lockview"],
        ["fleet", "shutdown"],
        ["config", "get"],
        ["config", "set"],
    ],
)
def test_every_action_has_help_and_json(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text([*argv, "--help"], capsys)
    assert "--json" in text and "--url" in text and "--token" in text


def test_no_token_is_exit_2_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CAMFLEET_OPERATOR_TOKEN", raising=False)
    assert cli.main(["fleet", "status"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CAMFLEET_OPERATOR_TOKEN" in err


ECHO_PEER = """
import sys
from app.cli import _serve

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = scope["client"][0].encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})

_serve(app, "127.0.0.1", int(sys.argv[1]), "warning")
"""


def test_served_apps_see_the_tcp_peer_not_x_forwarded_for() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", ECHO_PEER, str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                resp = httpx.get(
                    f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": "10.9.8.7"}
                )
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert resp.text == "127.0.0.1"
    finally:
        proc.terminate()
        proc.wait(10)
