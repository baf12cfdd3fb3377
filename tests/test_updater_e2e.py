"""Updates of a real node: the agent run by a systemd stand-in from
``current/venv/bin/camfleet``, real releases of camfleet from a release server on
loopback. A good release installs, restarts and passes its health check; one whose
agent does not start is rolled back; a recording holds an update off."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.updater_helpers import (
    BROKEN,
    NEW,
    OLD,
    Releases,
)
from tests.updater_node import UNIT, releases, running_node, template

__all__ = ["releases", "template"]  # the session fixtures
pytestmark = pytest.mark.slow


def test_a_good_release_installs_restarts_and_passes_its_health_check(
    tmp_path: Path, releases: Releases, template: Path
) -> None:
    with running_node(tmp_path, releases, template) as node:
        with node.client() as c:
            assert c.post("/api/v1/update/apply", json={}).status_code == 404  # an empty feed
            node.server.feed = b'[{"tag_name": "v9", "assets": ' + b"[" * 50
            assert "not JSON" in c.get("/api/v1/update/check").json()["error"]
            bad = c.post("/api/v1/update/apply", json={})
            assert bad.status_code == 502 and "not JSON" in bad.json()["detail"], bad.text
            assert c.post("/api/v1/update/apply", json={"version": "../x"}).status_code == 422
        node.server.feed = b"[]"
        node.server.publish(NEW, releases.assets(NEW), notes="faster start")
        node.server.drop_once = True  # the archive's first transfer breaks a third in
        with httpx.Client(base_url=f"http://127.0.0.1:{node.port}") as anonymous:
            for path in ("/api/v1/update/check", "/api/v1/update/status"):
                assert anonymous.get(path).status_code == 401
            assert anonymous.post("/api/v1/update/apply", json={}).status_code == 401
        with node.client() as c:
            check = c.get("/api/v1/update/check").json()
            assert check["current"] == OLD and check["available"] == NEW
            assert check["update_available"] and check["notes"] == "faster start"
            assert c.post("/api/v1/update/apply", json={"bogus": 1}).status_code == 422
            answer = c.post("/api/v1/update/apply", json={})
            assert answer.status_code == 202, answer.text
            assert answer.json()["target"] == NEW
            again = c.post("/api/v1/update/apply", json={})
            assert again.status_code == 409, again.text  # one update at a time
        end = node.wait_end()
        assert end["state"] == "done", end
        assert end["current"] == NEW and node.version() == NEW
        assert node.current() == NEW
        record = end["history"][-1]
        assert (record["version"], record["from_version"], record["result"]) == (
            NEW,
            OLD,
            "installed",
        )
        # the download resumed where the connection broke
        ranges = [r for path, r in node.server.requests if path.endswith(".tar.gz") and r]
        assert ranges and ranges[0] != "bytes=0-", node.server.requests
        calls = node.systemd.calls()
        # the finisher ran from the old version, in its own unit (the committed template)
        assert ["systemctl", "start", "--no-block", f"camfleet-update@{OLD}.service"] in calls
        assert ["systemctl", "restart", UNIT] in calls
        starts = node.systemd.starts()
        assert [s["current"] for s in starts] == [f"versions/{OLD}", f"versions/{NEW}"]
        assert (node.opt / "versions" / OLD / ".complete").exists()  # the previous one kept
        assert not list((node.opt / "versions").glob(".staging-*"))


def test_a_release_whose_agent_does_not_start_is_rolled_back(
    tmp_path: Path, releases: Releases, template: Path
) -> None:
    with running_node(
        tmp_path, releases, template, CAMFLEET_UPDATER__HEALTH_DEADLINE_S="6"
    ) as node:
        node.server.publish(BROKEN, releases.assets(BROKEN))
        with node.client() as c:
            assert c.post("/api/v1/update/apply", json={"version": BROKEN}).status_code == 202
        end = node.wait_end()
        assert end["state"] == "rolled_back", end
        assert node.version() == OLD and node.current() == OLD
        record = end["history"][-1]
        assert record["result"] == "rolled_back" and record["version"] == BROKEN
        assert "health check failed" in record["why"]
        starts = [s["current"] for s in node.systemd.starts()]
        assert starts == [f"versions/{OLD}", f"versions/{BROKEN}", f"versions/{OLD}"]


def test_apply_during_a_recording_is_409_and_with_retry_when_idle_it_applies_after_the_stop(
    tmp_path: Path, releases: Releases, template: Path
) -> None:
    with running_node(
        tmp_path, releases, template, CAMFLEET_UPDATER__RETRY_WHEN_IDLE="true"
    ) as node:
        node.server.publish(NEW, releases.assets(NEW))
        with node.client() as c:
            started = c.post(
                "/api/v1/recording/start", json={"session_id": "S1", "command_id": "s1-a"}
            )
            assert started.status_code == 200, started.text
            for _ in range(3):
                refused = c.post("/api/v1/update/apply", json={})
                assert refused.status_code == 409, refused.text
                assert "queued" in refused.json()["detail"]
            status = c.get("/api/v1/update/status").json()
            assert status["state"] == "queued" and status["queued"] is True
            time.sleep(1.5)  # the watch loop runs each second: it must hold off
            assert not (node.opt / "versions" / NEW).exists()
            assert not [p for p, _ in node.server.requests if "/download/" in p]
            stopped = c.post(
                "/api/v1/recording/stop", json={"session_id": "S1", "command_id": "s1-o"}
            )
            assert stopped.status_code == 200, stopped.text
            assert stopped.json()["manifest"] is not None
        end = node.wait_end()
        assert end["state"] == "done", end
        assert node.version() == NEW
        assert (node.data / "recordings").glob("S1_*.mp4")
