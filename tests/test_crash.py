"""kill -9 in the middle of a recording: the file keeps everything but the last fragment,
and the agent's next start writes an 'interrupted' manifest that matches the file."""

from __future__ import annotations

import hashlib
import json
import signal
import time

import av
import httpx
import pytest

from tests.conftest import RunningFleet

pytestmark = pytest.mark.slow

FPS = 30
GOP_S = 1.0  # one fragment per second


@pytest.mark.parametrize("trial", range(3))
def test_kill_9_mid_recording_loses_at_most_one_fragment(
    fleet_factory: RunningFleet, trial: int
) -> None:
    fleet = fleet_factory
    fleet.start_coordinator()
    agent = fleet.start_agent("CAM_C", "centre", CAMFLEET_CAMERA__GOP_S=str(GOP_S))
    fleet.wait_online(1)
    token = (fleet.root / "CAM_C" / "api_token").read_text().strip()
    base = f"http://127.0.0.1:{agent.port}"
    auth = {"Authorization": f"Bearer {token}"}
    with fleet.client() as c:
        session = c.post("/api/v1/sessions", json={"lead_ms": 200}).json()
    assert session["nodes"][0]["start"]["ok"], session
    time.sleep(2.0 + 0.7 * trial)  # a different point inside a fragment each trial
    status = httpx.get(f"{base}/api/v1/status", headers=auth).json()["recorder"]
    first_ns = status["first_frame_ns"]
    killed_ns = time.time_ns()
    fleet.kill(agent, signal.SIGKILL)
    recorded_s = (killed_ns - first_ns) / 1e9

    rec_dir = fleet.recordings_dir("CAM_C")
    video = next(rec_dir.glob("*.mp4"))
    manifest_path = rec_dir / f"{session['session_id']}_CAM_C.json"
    assert not manifest_path.exists()  # nothing finished it
    with av.open(str(video)) as container:
        times = [f.time for f in container.decode(video=0) if f.time is not None]
    frames = len(times)
    # The playable duration follows the timestamps: frames dropped under load leave gaps.
    playable_s = times[-1] - times[0] + 1 / FPS
    # everything written except at most one fragment plus 0.5 s
    assert frames >= (recorded_s - GOP_S - 0.5) * FPS, (frames, recorded_s)

    restarted = fleet.start_agent("CAM_C", "centre", CAMFLEET_CAMERA__GOP_S=str(GOP_S))
    manifest = json.loads(manifest_path.read_text())
    assert manifest["interrupted"] is True
    assert manifest["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
    assert manifest["frame_count"] == frames
    assert manifest["duration_s"] == pytest.approx(playable_s, abs=2 / FPS)
    assert manifest["first_frame_ns"] == first_ns
    # the agent says what it recovered, and the coordinator collects it
    status = httpx.get(f"http://127.0.0.1:{restarted.port}/api/v1/status", headers=auth).json()
    assert "recovered 1 interrupted recording" in status["recorder"]["last_error"]
    with fleet.client() as c:
        deadline = time.monotonic() + 10
        while True:
            listing = c.get("/api/v1/recordings").json()["recordings"]
            if listing:
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert listing[0]["manifest"]["interrupted"] is True
    assert listing[0]["sha256"] == manifest["sha256"]
