"""The `camfleet` command's help is plain text a new user can read."""

from __future__ import annotations

import re

import pytest

from app import cli

COMMANDS = ("coordinator", "agent", "demo", "nodes", "start", "stop", "sessions", "session")


def help_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 0
    return capsys.readouterr().out


def test_help_is_plain_text_and_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(["--help"], capsys)
    assert "``" not in text and ":mod:" not in text
    assert "CAMFLEET_URL" in text and "CAMFLEET_OPERATOR_TOKEN" in text
    for command in (*COMMANDS, "recordings"):
        # each command is listed with a one-line help beside it
        assert re.search(rf"^    {command} +\S", text, re.M), text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_description(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text([command, "--help"], capsys)
    assert "``" not in text
    assert text.split("\n\n")[1].strip().endswith(".")
