"""Sessions survive crashes, with real processes: whatever dies mid-recording, the session
is settled with what the nodes report when they are back, manifests and skew included."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from bench.fakenode import FakeNode
from tests.conftest import RunningFleet
from tests.pg import BOTH_DATABASES

pytestmark = pytest.mark.slow


def wait_session(
    fleet: RunningFleet, sid: str, state: str, timeout_s: float = 25.0
) -> dict[str, Any]:
    """Poll the session until it reaches ``state``; fail with the last answer otherwise."""
    deadline = time.monotonic() + timeout_s
    with fleet.client() as c:
        while True:
            session: dict[str, Any] = c.get(f"/api/v1/sessions/{sid}").json()
            if session["state"] == state:
                return session
            if time.monotonic() > deadline:
                raise AssertionError(f"{session}\n{fleet.logs()}")
            time.sleep(0.2)


def session_recordings(fleet: RunningFleet, sid: str) -> list[dict[str, Any]]:
    with fleet.client() as c:
        return list(c.get("/api/v1/recordings", params={"session_id": sid}).json()["recordings"])


@BOTH_DATABASES
def test_a_session_left_open_by_a_killed_coordinator_ends_at_its_restart(
    fleet_factory: RunningFleet,
) -> None:
    fleet = fleet_factory
    fleet.start_fleet([("CAM_L", "left"), ("CAM_C", "centre")])
    with fleet.client() as c:
        session = c.post("/api/v1/sessions", json={"lead_ms": 300}).json()
    sid = session["session_id"]
    assert all(n["start"]["ok"] for n in session["nodes"]), session
    time.sleep(1.5)
    assert fleet.coordinator is not None
    fleet.kill(fleet.coordinator, signal.SIGKILL)
    for cam_id in ("CAM_L", "CAM_C"):
        fleet.kill(fleet.agents[cam_id], signal.SIGTERM)  # they finish their files
    for cam_id in ("CAM_L", "CAM_C"):
        assert list(fleet.recordings_dir(cam_id).glob(f"{sid}_{cam_id}.json"))
    fleet.start_agents([("CAM_L", "left"), ("CAM_C", "centre")])
    fleet.start_coordinator()

    ended = wait_session(fleet, sid, "stopped")
    assert ended["end_reason"] == "coordinator restarted"
    assert ended["skew_ms"] is not None
    deadline = time.monotonic() + 10
    while len(recordings := session_recordings(fleet, sid)) < 2:
        assert time.monotonic() < deadline, recordings
        time.sleep(0.2)
    assert sorted(r["manifest"]["cam_id"] for r in recordings) == ["CAM_C", "CAM_L"]


def test_an_agent_stopped_under_a_running_coordinator_ends_its_session(
    fleet_factory: RunningFleet,
) -> None:
    fleet = fleet_factory
    fleet.start_coordinator()
    fleet.start_agent("CAM_C", "centre")
    fleet.wait_online(1)
    with fleet.client() as c:
        session = c.post("/api/v1/sessions", json={"lead_ms": 300}).json()
    sid = session["session_id"]
    assert session["nodes"][0]["start"]["ok"], session
    time.sleep(1.5)
    fleet.kill(fleet.agents["CAM_C"], signal.SIGTERM)
    assert wait_session(fleet, sid, "recording", 5)["end_reason"] is None  # held open, not lost
    fleet.start_agent("CAM_C", "centre")

    ended = wait_session(fleet, sid, "stopped")
    assert ended["end_reason"] == "agents stopped"
    deadline = time.monotonic() + 10
    while not (recordings := session_recordings(fleet, sid)):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert recordings[0]["manifest"]["cam_id"] == "CAM_C"
    assert recordings[0]["manifest"]["stop_reason"] != ""


def start_and_stop_on_a_fake_agent(fleet: RunningFleet, extra: dict[str, Any]) -> None:
    fleet.start_coordinator()
    with FakeNode(node_id="newer-1", extra=extra).running() as node:
        assert node.join(fleet.url, fleet.fleet_token).status_code == 200
        fleet.wait_online(1, timeout_s=5)
        with fleet.client() as c:
            session = c.post("/api/v1/sessions", json={"lead_ms": 300}).json()
            assert session["nodes"][0]["start"]["ok"], session
            time.sleep(0.5)
            stopped = c.post(f"/api/v1/sessions/{session['session_id']}/stop").json()
        assert stopped["nodes"][0]["stop"]["ok"], stopped
        assert "POST /api/v1/recording/stop" in node.calls


def test_the_fake_agent_itself_speaks_the_contract(fleet_factory: RunningFleet) -> None:
    """The control for the next test: the same fake agent without extra fields works."""
    start_and_stop_on_a_fake_agent(fleet_factory, {})


def test_session_answers_extra_fields(fleet_factory: RunningFleet) -> None:
    """A newer agent's answers carry fields this coordinator does not know: it keeps working
    (node online, start and stop ok)."""
    start_and_stop_on_a_fake_agent(fleet_factory, {"future_field": 1})
