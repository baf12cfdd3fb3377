"""The live view end to end: a real agent (synthetic camera) recording while a viewer reads
its live view through a real coordinator, and the watchdog turning the view off."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.mjpeg import MjpegParser
from tests.conftest import RunningFleet
from tests.liveview_helpers import wait_for, watch

FPS = 15.0
LIVE = "/api/v1/nodes/cam-c/live.mjpg"


def agent_client(fleet: RunningFleet) -> httpx.Client:
    token = (fleet.root / "CAM_C" / "api_token").read_text().strip()
    return httpx.Client(
        base_url=f"http://127.0.0.1:{fleet.agents['CAM_C'].port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def start_one(fleet: RunningFleet, cpu_stat: Path, **extra: str) -> None:
    fleet.fps = FPS
    fleet.start_coordinator()
    fleet.start_agent(
        "CAM_C",
        "centre",
        CAMFLEET_CAMERA__WIDTH="640",
        CAMFLEET_CAMERA__HEIGHT="360",
        CAMFLEET_CAMERA__BITRATE_BPS="1000000",
        CAMFLEET_LIVEVIEW__CPU_STAT_PATH=str(cpu_stat),
        CAMFLEET_LIVEVIEW__CHECK_INTERVAL_S="0.2",
        **extra,
    )
    fleet.wait_online(1)


@pytest.fixture
def cpu_stat(tmp_path: Path) -> Path:
    """A /proc/stat the test controls: unchanged, it reads as no CPU use at all."""
    path = tmp_path / "stat"
    path.write_text("cpu  1000 0 1000 8000 0 0 0 0 0 0\n")
    return path


def start(agent: httpx.Client, session: str) -> None:
    answer = agent.post(
        "/api/v1/recording/start", json={"session_id": session, "command_id": f"{session}-a"}
    )
    assert answer.status_code == 200, answer.text


def stop(agent: httpx.Client, session: str) -> dict[str, Any]:
    answer = agent.post(
        "/api/v1/recording/stop", json={"session_id": session, "command_id": f"{session}-o"}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["manifest"])


def wait_recording(agent: httpx.Client) -> None:
    def frames() -> bool:
        return int(agent.get("/api/v1/status").json()["recorder"]["frames"]) > 0

    wait_for(frames, what="the recording's first frame")


def on_schedule(m: dict[str, Any]) -> None:
    """As the recorder's own tests: every frame slot is a frame or a counted drop."""
    assert abs(m["frame_count"] + m["dropped_frames"] - FPS * m["duration_s"]) <= 1, m


def test_viewing_through_the_coordinator_keeps_the_recording_on_schedule(
    fleet_factory: RunningFleet, cpu_stat: Path
) -> None:
    start_one(
        fleet_factory,
        cpu_stat,
        CAMFLEET_LIVEVIEW__FPS="5",
        # This test machine is shared: the watchdog must not trip on its neighbours.
        CAMFLEET_LIVEVIEW__MIN_ENCODE_FPS_RATIO="0.3",
        CAMFLEET_LIVEVIEW__MAX_DROPPED_FRAMES="1000",
    )
    with agent_client(fleet_factory) as agent, fleet_factory.client() as op:
        # Idle: the synthetic camera streams for the view without holding the camera.
        idle = watch(op, LIVE, frames=2)
        assert idle.status == 200 and idle.content_type.startswith("multipart/x-mixed-replace")
        assert idle.size() == (640, 360)

        # The same recording without a viewer, then with one.
        start(agent, "LV-ALONE")
        wait_recording(agent)
        threading.Event().wait(4.0)  # the recording's length, not a synchronisation
        alone = stop(agent, "LV-ALONE")

        start(agent, "LV-WATCHED")
        wait_recording(agent)
        seen = watch(op, LIVE, seconds=4.0)
        during = agent.get("/api/v1/status").json()
        watched = stop(agent, "LV-WATCHED")
        metrics = agent.get("/metrics").text

    assert seen.status == 200 and not seen.ended
    assert len(seen.frames) >= 8, len(seen.frames)  # 5 fps for 4 s, with slack
    assert all(f.startswith(b"\xff\xd8") and f.endswith(b"\xff\xd9") for f in seen.frames)
    assert seen.size(len(seen.frames) // 2) == (640, 360)
    live = during["liveview"]
    assert live["source"] == "recording" and live["frames_served"] >= len(seen.frames)
    served = [ln for ln in metrics.splitlines() if ln.startswith("camfleet_liveview_frames_served")]
    assert served and float(served[0].rsplit(" ", 1)[1]) >= len(seen.frames) + len(idle.frames)

    for m in (alone, watched):
        on_schedule(m)
    # Watching costs the recording no more than the camera's own drop allowance (5 %).
    slots = watched["frame_count"] + watched["dropped_frames"]
    assert watched["dropped_frames"] <= alone["dropped_frames"] + 0.05 * slots, (alone, watched)


def test_the_watchdog_turns_the_view_off_and_says_why(
    fleet_factory: RunningFleet, cpu_stat: Path
) -> None:
    start_one(
        fleet_factory,
        cpu_stat,
        CAMFLEET_LIVEVIEW__MAX_CPU_PERCENT="80",
        CAMFLEET_LIVEVIEW__SUSTAIN_S="0.5",
        # Only the (injected) CPU reading turns it off here, not this shared machine's load.
        CAMFLEET_LIVEVIEW__MIN_ENCODE_FPS_RATIO="0.3",
        CAMFLEET_LIVEVIEW__MAX_DROPPED_FRAMES="1000",
    )
    stop_busy = threading.Event()

    def busy_cpu() -> None:  # /proc/stat as on a node whose CPU is fully taken
        busy = 1000
        while not stop_busy.wait(0.1):
            busy += 100
            cpu_stat.write_text(f"cpu  {busy} 0 1000 8000 0 0 0 0 0 0\n")

    with agent_client(fleet_factory) as agent, fleet_factory.client() as op:
        start(agent, "LV-HOT")
        wait_recording(agent)
        first = watch(op, LIVE, frames=2)
        assert first.status == 200 and len(first.frames) == 2
        burner = threading.Thread(target=busy_cpu, daemon=True)
        burner.start()
        try:
            ended = watch(op, LIVE, timeout_s=30)
        finally:
            stop_busy.set()
            burner.join()
        assert ended.status == 200 and ended.ended
        assert ended.final is not None and "turned itself off: CPU at 100 %" in ended.final

        refused = op.get(LIVE)
        assert refused.status_code == 503
        assert "CPU at 100 %" in refused.json()["detail"]
        assert "let in again" in refused.json()["detail"]

        status = agent.get("/api/v1/status").json()["liveview"]
        assert status["state"] == "cooling" and "CPU at 100 %" in status["off_reason"]

        def coordinator_knows() -> bool:  # the poller's cached status carries it too
            node = op.get("/api/v1/nodes/cam-c").json()
            return "CPU at 100 %" in str(node)

        wait_for(coordinator_knows, what="the coordinator's status of cam-c to show the reason")
        stop(agent, "LV-HOT")


def test_viewer_cap_and_a_browser_leaving_closes_the_nodes_stream(
    fleet_factory: RunningFleet, cpu_stat: Path
) -> None:
    fleet_factory.coordinator_env["CAMFLEET_LIVEVIEW_MAX_VIEWERS"] = "1"
    start_one(fleet_factory, cpu_stat)
    with agent_client(fleet_factory) as agent, fleet_factory.client() as op:

        def agent_clients() -> int:
            return int(agent.get("/api/v1/status").json()["liveview"]["clients"])

        with op.stream("GET", LIVE) as first:
            assert first.status_code == 200
            pieces = first.iter_bytes()  # kept: dropping it would close the stream
            next(pieces)  # a frame is on its way
            second = op.get(LIVE)
            assert second.status_code == 503
            assert "liveview_max_viewers" in second.json()["detail"]
            assert agent_clients() == 1
        wait_for(lambda: agent_clients() == 0, what="the node's stream to be closed")
        again = watch(op, LIVE, frames=1)
        assert again.status == 200 and len(again.frames) == 1


def test_an_idle_camera_that_is_not_synthetic_is_a_409_with_why(
    fleet_factory: RunningFleet, cpu_stat: Path
) -> None:
    start_one(fleet_factory, cpu_stat, CAMFLEET_CAMERA__SOURCE="v4l2")
    with fleet_factory.client() as op:
        answer = op.get(LIVE)
    assert answer.status_code == 409
    assert "not recording" in answer.json()["detail"]


def test_an_open_view_does_not_hold_the_agents_shutdown(
    fleet_factory: RunningFleet, cpu_stat: Path
) -> None:
    start_one(fleet_factory, cpu_stat)
    child = fleet_factory.agents["CAM_C"]
    with agent_client(fleet_factory) as agent:
        start(agent, "LV-SIGTERM")
        wait_recording(agent)
        with agent.stream("GET", "/api/v1/live.mjpg") as resp:
            assert resp.status_code == 200
            parser = MjpegParser(1 << 22)
            pieces = resp.iter_bytes()
            while not parser.feed(next(pieces)):
                pass
            t0 = time.monotonic()
            os.killpg(child.proc.pid, signal.SIGTERM)
            final = None
            for chunk in pieces:
                final = next((p.body for p in parser.feed(chunk) if not p.is_jpeg), final)
        child.proc.wait(15)
        took = time.monotonic() - t0
    assert final == b"the agent is shutting down"
    assert took < 10, f"the agent took {took:.1f} s to stop with a viewer open"
    manifest = fleet_factory.recordings_dir("CAM_C") / "LV-SIGTERM_CAM_C.json"
    assert manifest.exists()  # the recording was finished on the way out
