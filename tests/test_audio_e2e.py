"""The start beep, Lock View's tone and the audio toggle with a coordinator and three real
agents on loopback, each with a fake ``aplay`` on its PATH that stamps when it was run."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.supervise import stop_all
from tests.conftest import CAMERAS, RunningFleet
from tests.fakebin import FakeBin
from tests.test_audio import APLAY_CHECKS_WAV

pytestmark = pytest.mark.slow

START_TONE = "tone-1000hz-200ms-v050.wav"
LOCKVIEW_TONE = "tone-1500hz-120ms-v050.wav"
# The beep's exec instant against start_at, on a loaded 2-core machine shared with others.
MAX_LATE_MS = 30.0
COOL, HOT = "40000", "95000"  # millidegrees, as sysfs has them


class AudioFleet:
    """The running fleet, each camera's fake aplay and thermal zone."""

    def __init__(self, fleet: RunningFleet) -> None:
        self.fleet = fleet
        self.bins = {cam: FakeBin(fleet.root / f"bin-{cam}") for cam, _ in CAMERAS}
        for b in self.bins.values():
            b.add("aplay", script=APLAY_CHECKS_WAV)

    def thermal(self, cam: str) -> Path:
        return self.fleet.root / f"thermal-{cam}"

    def env(self, cam: str) -> dict[str, str]:
        """The camera's fake aplay on PATH and its thermal zone (written cool)."""
        self.thermal(cam).write_text(COOL)
        return {
            "PATH": self.bins[cam].env()["PATH"],
            "CAMFLEET_GATES__THERMAL_PATH": str(self.thermal(cam)),
            "CAMFLEET_GATES__CLOCK_POLICY": "warn",  # no chronyd behind these agents
        }

    def start_agent(self, cam: str, position: str) -> None:
        self.fleet.start_agent(cam, position, **self.env(cam))

    def start(self) -> None:
        """The coordinator and the three cameras, started at once."""
        self.fleet.start_fleet(CAMERAS, {cam: self.env(cam) for cam, _ in CAMERAS})

    def agent(self, cam: str) -> httpx.Client:
        token = (self.fleet.root / cam / "api_token").read_text().strip()
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.fleet.agents[cam].port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )

    def tones(self, cam: str, name: str) -> list[dict[str, object]]:
        return [c for c in self.bins[cam].calls("aplay") if str(c["argv"][-1]).endswith(name)]


def wait_for(cond: object, timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not reached"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def audio_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AudioFleet]:
    running = RunningFleet(root=tmp_path_factory.mktemp("audio"))
    fleet = AudioFleet(running)
    try:
        fleet.start()
        yield fleet
    finally:
        stop_all(running.children())


def test_the_start_beeps_once_on_cam_c_after_every_node_armed_at_start_at(
    audio_fleet: AudioFleet,
) -> None:
    f = audio_fleet
    with f.fleet.client() as c:
        created = c.post("/api/v1/sessions", json={"name": "beep", "lead_ms": 1500})
        assert created.status_code == 201, created.text
        session = created.json()
    sid, start_at = session["session_id"], session["start_at_ns"]
    by_cam = {n["cam_id"]: n for n in session["nodes"]}
    assert all(n["start"]["ok"] for n in by_cam.values())
    assert by_cam["CAM_C"]["beep"]["ok"] and by_cam["CAM_C"]["beep"]["command_id"] == f"beep-{sid}"
    assert by_cam["CAM_L"]["beep"] is None and by_cam["CAM_R"]["beep"] is None

    wait_for(lambda: f.tones("CAM_C", START_TONE), what="the start tone")
    # Each node's StartResult, answered again for the same command id: when it armed.
    armed = {}
    for cam, _ in CAMERAS:
        with f.agent(cam) as a:
            again = a.post(
                "/api/v1/recording/start",
                json={"session_id": sid, "command_id": f"start-{sid}", "start_at_ns": start_at},
            )
            assert again.status_code == 200, again.text
            armed[cam] = again.json()["armed_at_ns"]
    with f.agent("CAM_C") as a:
        audio = a.get("/api/v1/audio").json()
    (record,) = [t for t in audio["last_tones"] if t["kind"] == "start"]
    assert record["reason"] == f"session {sid}" and record["exit_code"] == 0

    # The beep reached CAM_C only after every node had armed, and played at start_at.
    assert record["requested_at_ns"] > max(armed.values())
    (call,) = f.tones("CAM_C", START_TONE)
    late_ms = (int(str(call["t_ns"])) - start_at) / 1e6
    spawn_ms = (record["played_at_ns"] - start_at) / 1e6
    margin_ms = (start_at - record["requested_at_ns"]) / 1e6
    print(
        f"\nbeep: aplay ran {late_ms:.2f} ms after start_at (spawned at +{spawn_ms:.3f} ms); "
        f"the beep arrived {margin_ms:.0f} ms before start_at, "
        f"{(record['requested_at_ns'] - max(armed.values())) / 1e6:.1f} ms after the last arm"
    )
    assert spawn_ms >= 0 and late_ms < MAX_LATE_MS, late_ms

    # Lock View: its own tone on every camera that recorded.
    with f.fleet.client() as c:
        lv = c.post(f"/api/v1/sessions/{sid}/lockview")
        assert lv.status_code == 200, lv.text
    for cam, _ in CAMERAS:
        wait_for(lambda cam=cam: f.tones(cam, LOCKVIEW_TONE), what=f"{cam}'s Lock View tone")
    with f.fleet.client() as c:
        assert c.post(f"/api/v1/sessions/{sid}/stop").status_code == 200
    assert len(f.tones("CAM_C", START_TONE)) == 1  # once per start, on CAM_C only
    assert not f.tones("CAM_L", START_TONE) and not f.tones("CAM_R", START_TONE)


def test_a_node_that_refuses_the_start_means_no_beep_at_all(audio_fleet: AudioFleet) -> None:
    f = audio_fleet
    before = len(f.tones("CAM_C", START_TONE))
    f.thermal("CAM_L").write_text(HOT)  # CAM_L's temperature gate refuses
    try:
        with f.fleet.client() as c:
            created = c.post("/api/v1/sessions", json={"name": "no-beep", "lead_ms": 1000})
            assert created.status_code == 201, created.text
            session = created.json()
            by_cam = {n["cam_id"]: n for n in session["nodes"]}
            assert by_cam["CAM_L"]["start"]["status_code"] == 409
            assert "temperature" in by_cam["CAM_L"]["start"]["error"]
            assert by_cam["CAM_C"]["start"]["ok"] and by_cam["CAM_R"]["start"]["ok"]
            assert all(n["beep"] is None for n in session["nodes"])
            # The coordinator answered after its beep phase: CAM_C never got one to schedule.
            with f.agent("CAM_C") as a:
                tones = a.get("/api/v1/audio").json()["last_tones"]
            assert not [t for t in tones if t["reason"] == f"session {session['session_id']}"]
            assert c.post(f"/api/v1/sessions/{session['session_id']}/stop").status_code == 200
    finally:
        f.thermal("CAM_L").write_text(COOL)
    assert len(f.tones("CAM_C", START_TONE)) == before


def test_the_audio_toggle_is_refused_while_recording_and_survives_a_restart(
    audio_fleet: AudioFleet,
) -> None:
    f = audio_fleet
    with f.fleet.client() as c:
        on = c.put("/api/v1/audio", json={"enabled": True})
        assert on.status_code == 200, on.text
        assert on.json()["ok"] == 3
        for cam, _ in CAMERAS:
            overrides = json.loads((f.fleet.root / cam / "overrides.json").read_text())
            assert overrides == {"camera": {"audio": True}}
        session = c.post("/api/v1/sessions", json={"lead_ms": 300, "beep": False}).json()
        sid = session["session_id"]
        assert all(n["beep"] is None for n in session["nodes"])
        off = c.put("/api/v1/audio", json={"enabled": False}).json()
        assert off["ok"] == 0 and {n["status_code"] for n in off["nodes"]} == {409}
        assert "stop the recording" in off["nodes"][0]["error"]
        for cam, _ in CAMERAS:
            with f.agent(cam) as a:
                wait_for(
                    lambda a=a: a.get("/api/v1/status").json()["recorder"]["frames"] >= 10,
                    what=f"{cam} recording",
                )
        stopped = c.post(f"/api/v1/sessions/{sid}/stop").json()
    # No sound card here: each recording has its video and says why it has no audio.
    for node in stopped["nodes"]:
        assert node["stop"]["ok"] and node["frame_count"]
        manifest = json.loads(
            (f.fleet.recordings_dir(node["cam_id"]) / f"{sid}_{node['cam_id']}.json").read_text()
        )
        assert manifest["audio_track"] is False and "audio input" in manifest["audio_note"]

    f.fleet.kill(f.fleet.agents["CAM_R"])
    f.start_agent("CAM_R", "right")
    with f.agent("CAM_R") as a:
        assert a.get("/api/v1/audio").json()["track"] is True
    with f.fleet.client() as c:
        assert c.put("/api/v1/audio", json={"enabled": False}).json()["ok"] == 3
    with f.agent("CAM_R") as a:
        assert a.get("/api/v1/audio").json()["track"] is False
    assert os.path.exists(f.fleet.root / "CAM_R" / "overrides.json")
