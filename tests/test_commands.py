"""The command runner: every program the agent runs is logged, timed out, dry-runnable."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from node_agent.commands import NOT_FOUND, TIMED_OUT, CommandFailed, CommandRunner
from tests.fakebin import FakeBin


def test_a_call_returns_its_exit_code_and_output_and_is_journalled(tmp_path: Path) -> None:
    fakes = FakeBin(tmp_path)
    tool = fakes.add("uhubctl", stdout="Current status for hub 1-1\n", exit_code=3)
    runner = CommandRunner()
    done = runner.run([str(tool), "-l", "1-1", "-a", "0"])
    assert (done.returncode, done.stdout) == (3, "Current status for hub 1-1\n")
    assert not done.ok
    assert "exit 3" in done.describe()
    assert fakes.argvs() == [["uhubctl", "-l", "1-1", "-a", "0"]]
    assert [c.argv[1:] for c in runner.recent()] == [("-l", "1-1", "-a", "0")]


def test_dry_run_logs_a_changing_call_and_runs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fakes = FakeBin(tmp_path)
    tool = fakes.add("systemctl")
    runner = CommandRunner(dry_run=True)
    with caplog.at_level(logging.INFO, logger="node_agent.commands"):
        done = runner.run([str(tool), "poweroff"])
    assert done.ok and done.dry_run
    assert fakes.calls() == []
    assert f"would run: {tool} poweroff" in caplog.text


def test_dry_run_still_runs_a_call_that_only_reads(tmp_path: Path) -> None:
    fakes = FakeBin(tmp_path)
    tool = fakes.add("lifepo4wered-cli", stdout="VBAT = 3300\n")
    done = CommandRunner(dry_run=True).run([str(tool), "get"], mutates=False)
    assert not done.dry_run
    assert done.stdout == "VBAT = 3300\n"
    assert fakes.argvs() == [["lifepo4wered-cli", "get"]]


def test_a_missing_program_is_an_answer_not_an_exception(tmp_path: Path) -> None:
    done = CommandRunner().run([str(tmp_path / "no-such-tool"), "x"])
    assert done.returncode == NOT_FOUND
    assert done.describe().endswith("not found")


def test_a_hanging_program_is_killed_at_its_time_out(tmp_path: Path) -> None:
    fakes = FakeBin(tmp_path)
    tool = fakes.add("rsync", script="sleep 30")
    done = CommandRunner().run([str(tool)], timeout_s=0.5)
    assert done.returncode == TIMED_OUT
    assert "timed out" in done.describe()


def test_check_raises_with_the_reason(tmp_path: Path) -> None:
    fakes = FakeBin(tmp_path)
    tool = fakes.add("mount", script="echo 'mount: /mnt/cam: wrong fs type' >&2; exit 32")
    with pytest.raises(CommandFailed, match="exit 32: mount: /mnt/cam: wrong fs type"):
        CommandRunner().run([str(tool), "/dev/sda1", "/mnt/cam"], check=True)


def test_the_runner_environment_reaches_the_program(tmp_path: Path) -> None:
    fakes = FakeBin(tmp_path)
    fakes.add("uhubctl")
    runner = CommandRunner(env={"PATH": str(fakes.dir) + ":/usr/bin:/bin"})
    assert runner.run(["uhubctl", "-a", "1"]).ok
    assert fakes.argvs("uhubctl") == [["uhubctl", "-a", "1"]]


def test_the_journal_keeps_only_the_last_calls(tmp_path: Path) -> None:
    runner = CommandRunner(dry_run=True, journal_size=3)
    for i in range(5):
        runner.run(["true", str(i)])
    assert [c.argv[1] for c in runner.recent()] == ["2", "3", "4"]
