"""The whole system as real processes: a synchronized session from start to checksummed files."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time

import av
import httpx
import pytest

from tests.conftest import CAMERAS, RunningFleet
from tests.pg import BOTH_DATABASES

pytestmark = pytest.mark.slow


def sha256_of(path: os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def decoded_frames(path: os.PathLike[str]) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def check_recording(fleet: RunningFleet, node: dict[str, object], min_duration_s: float) -> None:
    """The node's file is on disk, decodes, holds fps x duration frames and matches its sha256."""
    cam_id = str(node["cam_id"])
    path = fleet.recordings_dir(cam_id) / str(node["file_name"])
    session_id = path.name.split("_")[0]  # session ids have no underscores
    manifest = json.loads(
        (fleet.recordings_dir(cam_id) / f"{session_id}_{cam_id}.json").read_text()
    )
    assert manifest["sha256"] == sha256_of(path) == node["sha256"]
    assert manifest["size_bytes"] == path.stat().st_size
    frames = decoded_frames(path)
    assert frames == manifest["frame_count"]
    expected = fleet.fps * manifest["duration_s"]
    assert manifest["duration_s"] >= min_duration_s
    assert abs(frames + manifest["dropped_frames"] - expected) <= 2, (frames, expected)
    assert manifest["offloaded"] is False


@BOTH_DATABASES
def test_synchronized_session_records_three_checksummed_files(three_cameras: RunningFleet) -> None:
    fleet = three_cameras
    with fleet.client() as c:
        created = c.post("/api/v1/sessions", json={"name": "kick-off", "lead_ms": 800})
        assert created.status_code == 201, created.text
        session = created.json()
        assert session["state"] == "recording"
        assert [n["start"]["ok"] for n in session["nodes"]] == [True, True, True]
        time.sleep(0.8 + 3.0)
        stopped = c.post(f"/api/v1/sessions/{session['session_id']}/stop")
        assert stopped.status_code == 200, stopped.text
        result = stopped.json()
        listing = c.get("/api/v1/recordings", params={"session_id": session["session_id"]}).json()

    assert result["state"] == "stopped"
    assert sorted(n["cam_id"] for n in result["nodes"]) == sorted(c for c, _ in CAMERAS)
    for node in result["nodes"]:
        assert node["stop"]["ok"], node
        # A scheduled start never begins early, and the manifest says when it was due.
        assert node["first_frame_ns"] >= session["start_at_ns"]
        check_recording(fleet, node, min_duration_s=2.5)
    assert isinstance(result["skew_ms"], float)
    firsts = [n["corrected_first_frame_ns"] for n in result["nodes"]]
    assert result["skew_ms"] == pytest.approx((max(firsts) - min(firsts)) / 1e6, abs=1e-3)

    by_node = {r["node_id"]: r for r in listing["recordings"]}
    assert len(by_node) == 3
    for node in result["nodes"]:
        assert by_node[node["node_id"]]["sha256"] == node["sha256"]
        assert by_node[node["node_id"]]["manifest"]["scheduled_start_ns"] == session["start_at_ns"]


def test_dead_and_hung_nodes_do_not_hold_up_the_others(three_cameras: RunningFleet) -> None:
    fleet = three_cameras
    fleet.kill(fleet.agents["CAM_R"])  # dead: connection refused
    hung = fleet.agents["CAM_L"]
    os.killpg(hung.proc.pid, signal.SIGSTOP)  # hung: accepts nothing, answers nothing
    try:
        with fleet.client() as c:
            t0 = time.monotonic()
            resp = c.post("/api/v1/sessions", json={"name": "short-handed"})
            elapsed = time.monotonic() - t0
            assert resp.status_code == 201, resp.text
            session = resp.json()
            results = {n["cam_id"]: n["start"] for n in session["nodes"]}
            assert results["CAM_C"]["ok"] is True
            assert results["CAM_R"]["ok"] is False and "unreachable" in results["CAM_R"]["error"]
            assert results["CAM_L"]["ok"] is False and "within 2 s" in results["CAM_L"]["error"]
            # the per-node timeout is 2 s: the fan-out waits for no one longer than that
            assert elapsed < 2.0 + 1.0
            assert session["state"] == "recording"
            time.sleep(2.0)
            stopped = c.post(f"/api/v1/sessions/{session['session_id']}/stop").json()
    finally:
        os.killpg(hung.proc.pid, signal.SIGCONT)
    with_files = [n for n in stopped["nodes"] if n["file_name"]]
    assert [n["cam_id"] for n in with_files] == ["CAM_C"]
    check_recording(fleet, with_files[0], min_duration_s=1.0)


@BOTH_DATABASES
def test_recordings_survive_a_coordinator_restart(three_cameras: RunningFleet) -> None:
    fleet = three_cameras
    with fleet.client() as c:
        session = c.post("/api/v1/sessions", json={"lead_ms": 300}).json()
    assert all(n["start"]["ok"] for n in session["nodes"])
    time.sleep(1.5)
    assert fleet.coordinator is not None
    fleet.kill(fleet.coordinator)

    # While the coordinator is gone, every agent keeps recording.
    time.sleep(1.5)
    for cam_id, child in fleet.agents.items():
        token = (fleet.root / cam_id / "api_token").read_text().strip()
        status = httpx.get(
            f"http://127.0.0.1:{child.port}/api/v1/status",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert status["recorder"]["state"] == "recording"
        assert status["recorder"]["session_id"] == session["session_id"]

    fleet.start_coordinator()
    fleet.wait_online(3)
    with fleet.client() as c:
        stopped = c.post(f"/api/v1/sessions/{session['session_id']}/stop")
        assert stopped.status_code == 200, stopped.text
        result = stopped.json()
    assert result["state"] == "stopped"
    assert len([n for n in result["nodes"] if n["sha256"]]) == 3
    for node in result["nodes"]:
        check_recording(fleet, node, min_duration_s=2.9)


def test_a_restarted_node_keeps_its_identity_at_a_new_address(three_cameras: RunningFleet) -> None:
    fleet = three_cameras
    old = fleet.agents["CAM_L"]
    fleet.kill(old, signal.SIGTERM)
    # Same data folder, no node_id in the environment: the id kept on disk is used.
    node_id = fleet.root / "CAM_L" / "node_id"
    assert not node_id.exists()  # the tests set CAMFLEET_NODE_ID; now let the agent make one
    new = fleet.start_agent("CAM_L", "left", CAMFLEET_NODE_ID="")
    made = node_id.read_text().strip()
    fleet.kill(new, signal.SIGTERM)
    again = fleet.start_agent("CAM_L", "left", CAMFLEET_NODE_ID="")
    assert node_id.read_text().strip() == made
    assert again.port != old.port
    with fleet.client() as c:
        deadline = time.monotonic() + 10
        while True:
            nodes = {n["node_id"]: n for n in c.get("/api/v1/nodes").json()["nodes"]}
            if made in nodes and nodes[made]["online"]:
                break
            assert time.monotonic() < deadline, nodes
            time.sleep(0.1)
        assert nodes[made]["address"] == f"127.0.0.1:{again.port}"
        assert len(nodes) == 4  # cam-l (the configured id, now offline) and the made one
        session = c.post("/api/v1/sessions", json={"node_ids": [made], "lead_ms": 200}).json()
        assert [n["start"]["ok"] for n in session["nodes"]] == [True]
        time.sleep(0.5)
        stopped = c.post(f"/api/v1/sessions/{session['session_id']}/stop").json()
    assert (stopped["nodes"][0]["frame_count"] or 0) > 0, stopped
