"""kill -9 at each step of an update leaves a node that starts the old or the new version,
never neither. ``CAMFLEET_UPDATER_KILL_AT=<step>`` makes the process at that step (the
agent for the first four, the finisher after) SIGKILL itself once; the test then does
what systemd's ``Restart=always`` does (start the unit when its process is gone) until
the update is over."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from node_agent.updater.hooks import STEPS
from tests.updater_helpers import (
    BROKEN,
    NEW,
    OLD,
    Releases,
)
from tests.updater_node import UNIT, Node, releases, running_node, template

__all__ = ["releases", "template"]  # the session fixtures
pytestmark = pytest.mark.slow

# The agent's steps here, the finisher's in test_updater_crash_finisher.py (two files, so
# that the suite's two workers share them).
AGENT_STEPS = STEPS[:4]
FINISHER_STEPS = STEPS[4:]

# Where a kill leaves the node once it has recovered: what it runs then.
EXPECTED = {
    "downloading": OLD,  # the agent died: nothing installed; the next start marks it failed
    "installing": OLD,
    "installed": OLD,  # versions/NEW is whole but nothing points at it
    "pending": NEW,  # the restarted old agent finds the marker and starts a finisher
    "switched": NEW,  # the old agent notices the finisher is gone and starts another
    "restarted": NEW,  # the new agent does
    "checked": NEW,
    "rolling_back": OLD,  # (a broken release) the old agent finishes the rollback
}


def recover(node: Node, timeout_s: float = 120) -> dict[str, object]:
    """Start the unit whenever its process is gone, until the update is over."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if node.systemd.agent_pid() is None:
            node.systemd.systemctl("start", UNIT)
        pending = (node.data / "updates" / "pending.json").exists()
        progress_file = node.data / "updates" / "progress.json"
        state = json.loads(progress_file.read_text())["state"] if progress_file.exists() else ""
        if not pending and state in ("done", "rolled_back", "failed") and node.version():
            return dict(node.progress())
        time.sleep(0.2)
    raise AssertionError(f"the node did not settle:\n{node.log()}")


def kill_at(tmp_path: Path, releases: Releases, template: Path, step: str) -> None:
    """Apply an update whose process dies at ``step``; the node recovers to EXPECTED."""
    target = BROKEN if step == "rolling_back" else NEW
    with running_node(
        tmp_path,
        releases,
        template,
        CAMFLEET_UPDATER_KILL_AT=step,
        CAMFLEET_UPDATER__HEALTH_DEADLINE_S="8" if target == BROKEN else "25",
    ) as node:
        node.server.publish(target, releases.assets(target))
        with node.client() as c:
            answer = c.post("/api/v1/update/apply", json={"version": target})
            assert answer.status_code == 202, answer.text
        end = recover(node)
        assert (node.data / "updates" / f"killed-at-{step}").exists()  # it did die there
        running = node.version()
        assert running == EXPECTED[step], (end, node.log())
        # current names a whole version, and it is the one running
        assert node.current() == running
        assert (node.opt / "versions" / running / ".complete").is_file()
        assert (node.opt / "versions" / OLD / ".complete").is_file()  # never deleted
        # the process answering was started from current (what every later boot runs)
        assert node.systemd.starts()[-1]["current"] == f"versions/{running}"
        assert end["history"], end  # every attempt leaves a record


@pytest.mark.parametrize("step", AGENT_STEPS)
def test_kill_9_of_the_agent_at_each_step_leaves_a_node_that_starts(
    tmp_path: Path, releases: Releases, template: Path, step: str
) -> None:
    kill_at(tmp_path, releases, template, step)
