"""Fleet-wide field features through the coordinator, with real processes: gates with
all-or-nothing, the fleet self-test, Lock View and previews."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CAMERAS, RunningFleet

pytestmark = pytest.mark.slow


@pytest.fixture
def hot_right(fleet_factory: RunningFleet, tmp_path: Path) -> RunningFleet:
    """Three cameras; CAM_R's CPU reads 95 °C (a fake sysfs thermal zone)."""
    thermal = tmp_path / "thermal_zone0_temp"
    thermal.write_text("95000\n")
    fleet_factory.start_fleet(CAMERAS, {"CAM_R": {"CAMFLEET_GATES__THERMAL_PATH": str(thermal)}})
    return fleet_factory


def by_cam(session: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(n["cam_id"]): n for n in session["nodes"]}


def test_all_or_nothing_aborts_everywhere_when_one_gate_refuses(hot_right: RunningFleet) -> None:
    fleet = hot_right
    with fleet.client() as c:
        resp = c.post("/api/v1/sessions", json={"mode": "all_or_nothing", "lead_ms": 1500})
    assert resp.status_code == 201, resp.text
    session = resp.json()
    nodes = by_cam(session)
    assert session["state"] == "aborted" and session["mode"] == "all_or_nothing"
    assert nodes["CAM_R"]["start"]["status_code"] == 409
    assert "temperature: CPU at 95.0 °C" in nodes["CAM_R"]["start"]["error"]
    for cam in ("CAM_L", "CAM_C"):
        assert nodes[cam]["start"]["ok"] and nodes[cam]["abort"]["ok"], nodes[cam]
    time.sleep(2.0)  # past the start instant: nobody started
    for cam, _ in CAMERAS:
        assert list(fleet.recordings_dir(cam).glob("*.mp4")) == []


def test_best_effort_records_on_the_healthy_nodes(hot_right: RunningFleet) -> None:
    fleet = hot_right
    with fleet.client() as c:
        session = c.post("/api/v1/sessions", json={"lead_ms": 300}).json()
        nodes = by_cam(session)
        assert session["state"] == "recording"
        assert not nodes["CAM_R"]["start"]["ok"]
        time.sleep(1.0)
        stopped = c.post(f"/api/v1/sessions/{session['session_id']}/stop").json()
    files = {n["cam_id"]: n["file_name"] for n in stopped["nodes"] if n["file_name"]}
    assert sorted(files) == ["CAM_C", "CAM_L"]
    assert stopped["state"] == "stopped"


def test_fleet_selftest_reports_every_node(hot_right: RunningFleet) -> None:
    with hot_right.client() as c:
        resp = c.post("/api/v1/selftest", json={"duration_s": 1.5})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    results = {n["node_id"]: n for n in body["nodes"]}
    assert body["passed"] is False  # CAM_R is too hot
    for node_id in ("cam-l", "cam-c"):
        r = results[node_id]["result"]
        assert r["passed"], r["errors"]
        assert r["frames"] == r["decoded_frames"] > 0 and len(r["sha256"]) == 64
    hot = results["cam-r"]["result"]
    assert not hot["passed"] and any("95.0 °C" in e for e in hot["errors"])
    for cam, _ in CAMERAS:  # the clips were deleted
        assert not list(hot_right.recordings_dir(cam).glob("*.mp4"))
        assert not list(hot_right.recordings_dir(cam).glob(".selftest*"))


def test_lock_view_and_preview_through_the_coordinator(three_cameras: RunningFleet) -> None:
    fleet = three_cameras
    with fleet.client() as c:
        idle = c.get("/api/v1/nodes/cam-c/preview.jpg")
        assert idle.status_code == 200 and idle.content[:2] == b"\xff\xd8"
        assert c.get("/api/v1/nodes/nope/preview.jpg").status_code == 404
        session = c.post("/api/v1/sessions", json={"lead_ms": 300}).json()
        time.sleep(0.8)
        live = c.get("/api/v1/nodes/cam-l/preview.jpg")
        assert live.status_code == 200 and live.headers["content-type"] == "image/jpeg"
        shot = c.post(f"/api/v1/sessions/{session['session_id']}/lockview").json()
        assert sorted(n["file_name"] for n in shot["nodes"]) == [
            f"{session['session_id']}_{cam}_lockview.jpg" for cam in ("CAM_C", "CAM_L", "CAM_R")
        ]
        assert all(n["ok"] and n["size_bytes"] > 0 for n in shot["nodes"])
        c.post(f"/api/v1/sessions/{session['session_id']}/stop")
        recordings = c.get(
            "/api/v1/recordings", params={"session_id": session["session_id"]}
        ).json()["recordings"]
    assert len(recordings) == 3
    for r in recordings:
        assert (
            r["manifest"]["lockview_file"]
            == f"{session['session_id']}_{r['manifest']['cam_id']}_lockview.jpg"
        )
        assert (
            fleet.recordings_dir(r["manifest"]["cam_id"]) / r["manifest"]["lockview_file"]
        ).exists()
