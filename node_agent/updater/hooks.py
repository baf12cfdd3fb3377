"""Fault injection for the crash tests: ``CAMFLEET_UPDATER_KILL_AT=<step>`` makes the
process that reaches that step SIGKILL itself, once (a file in the updates folder
remembers it), so a test can prove that a kill -9 at any step leaves a node that starts.
Unset (always, outside tests) it does nothing."""

from __future__ import annotations

import os
import signal
from pathlib import Path

VARIABLE = "CAMFLEET_UPDATER_KILL_AT"
STEPS = (
    "downloading",  # half the archive on disk
    "installing",  # the staging folder half built
    "installed",  # versions/<v> whole, no marker yet
    "pending",  # the marker written, no finisher launched
    "switched",  # current points at the new version, the old agent still runs
    "restarted",  # the new agent started, not yet checked
    "checked",  # healthy, not yet committed
    "rolling_back",  # current points at the old version again, not yet restarted
)


def checkpoint(updates_dir: Path, step: str) -> None:
    """Die here if the test asked for it (once per step)."""
    if os.environ.get(VARIABLE) != step:
        return
    flag = updates_dir / f"killed-at-{step}"
    if flag.exists():
        return
    updates_dir.mkdir(parents=True, exist_ok=True)
    flag.touch()
    os.kill(os.getpid(), signal.SIGKILL)
