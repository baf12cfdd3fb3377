"""kill -9 of the finisher at each of its steps leaves a node that starts the old or the
new version (see test_updater_crash.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_updater_crash import FINISHER_STEPS, kill_at
from tests.updater_helpers import Releases
from tests.updater_node import releases, template

__all__ = ["releases", "template"]  # the session fixtures
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("step", FINISHER_STEPS)
def test_kill_9_of_the_finisher_at_each_step_leaves_a_node_that_starts(
    tmp_path: Path, releases: Releases, template: Path, step: str
) -> None:
    kill_at(tmp_path, releases, template, step)
