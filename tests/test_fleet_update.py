"""The coordinator's fleet update against real updating nodes: one node at a time, never
a recording node, and a run that stops at the first failure (a release rolled back).

Two agents run from their own install roots through the systemd stand-in of
``tests/updater_node.py`` (real releases of this tree, a release server each on
loopback); the coordinator is a real process they joined."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningFleet
from tests.updater_helpers import BROKEN, NEW, OLD, Releases
from tests.updater_node import releases, running_node, template

__all__ = ["releases", "template"]  # the session fixtures
pytestmark = pytest.mark.slow


def wait_run(fleet: RunningFleet, timeout_s: float = 240) -> dict[str, Any]:
    end = time.monotonic() + timeout_s
    run: dict[str, Any] = {}
    with fleet.client() as c:
        while time.monotonic() < end:
            run = c.get("/api/v1/fleet/update").json()
            if run["state"] != "running":
                return run
            time.sleep(0.5)
    raise AssertionError(f"the fleet update did not end within {timeout_s} s: {run}")


def outcomes(run: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {n["node_id"]: (n["outcome"], n["version"]) for n in run["nodes"]}


def test_one_node_at_a_time_never_a_recording_one_and_stop_at_the_first_failure(
    tmp_path: Path,
    releases: Releases,
    template: Path,
    fleet_factory: RunningFleet,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app import cli

    fleet = fleet_factory
    fleet.coordinator_env = {"CAMFLEET_UPDATE_NODE_TIMEOUT_S": "120"}
    fleet.start_coordinator()
    link = {
        "CAMFLEET_COORDINATOR_URL": fleet.url,
        "CAMFLEET_FLEET_TOKEN": fleet.fleet_token,
        "CAMFLEET_HEARTBEAT_INTERVAL_S": "0.5",
        "CAMFLEET_JOIN_BACKOFF_MAX_S": "1",
        "CAMFLEET_UPDATER__HEALTH_DEADLINE_S": "8",
    }
    with (
        running_node(
            tmp_path / "l",
            releases,
            template,
            True,
            **link,
            CAMFLEET_NODE_ID="cam-l",
            CAMFLEET_CAM_ID="CAM_L",
        ) as left,
        running_node(
            tmp_path / "r",
            releases,
            template,
            True,
            **link,
            CAMFLEET_NODE_ID="cam-r",
            CAMFLEET_CAM_ID="CAM_R",
        ) as right,
    ):
        fleet.wait_online(2)
        for node in (left, right):
            node.server.publish(NEW, releases.assets(NEW))
        with right.client() as c:
            started = c.post(
                "/api/v1/recording/start", json={"session_id": "S1", "command_id": "s1-a"}
            )
            assert started.status_code == 200, started.text

        # 1. To NEW by name: CAM_L is updated; CAM_R records and is left alone
        with fleet.client() as c:
            begun = c.post("/api/v1/fleet/update", json={"version": NEW})
            assert begun.status_code == 202, begun.text
            assert [n["node_id"] for n in begun.json()["nodes"]] == ["cam-l", "cam-r"]
            again = c.post("/api/v1/fleet/update", json={})
            assert again.status_code == 409 and "still running" in again.json()["detail"]
        run = wait_run(fleet)
        assert run["state"] == "done", run
        assert outcomes(run) == {"cam-l": ("updated", NEW), "cam-r": ("skipped", OLD)}
        assert "recording" in run["nodes"][1]["detail"]
        assert left.version() == NEW and left.current() == NEW
        assert right.version() == OLD and right.current() == OLD
        # CAM_R was never asked to install anything while it recorded
        assert not [p for p, _ in right.server.requests if "/download/" in p]
        assert right.progress()["history"] == []

        with right.client() as c:
            stopped = c.post(
                "/api/v1/recording/stop", json={"session_id": "S1", "command_id": "s1-o"}
            )
            assert stopped.status_code == 200, stopped.text

        # 2. The newest release (the first node's feed says BROKEN): CAM_L rolls it back,
        # the run stops there and CAM_R is not touched. Through the CLI, which follows it.
        for node in (left, right):
            node.server.publish(BROKEN, releases.assets(BROKEN))
        base = ["--url", fleet.url, f"--token={fleet.operator_token}"]
        assert cli.main([*base, "fleet", "update", "--json"]) == 1
        run = json.loads(capsys.readouterr().out)
        assert run["state"] == "failed" and run["target"] == BROKEN, run
        assert run["stopped_at"] == "cam-l"
        assert outcomes(run) == {"cam-l": ("failed", NEW), "cam-r": ("not_started", None)}
        assert "rolled_back" in run["nodes"][0]["detail"]
        assert left.version() == NEW and left.current() == NEW
        assert left.history()[-1]["result"] == "rolled_back"
        assert right.version() == OLD and right.current() == OLD
        assert not [p for p, _ in right.server.requests if "/download/" in p]
