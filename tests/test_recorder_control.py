"""The recorder's control and policies: one lock over start and stop, an injected clock,
the measured bitrate, and the pure frame/disk/probation policies."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import av
import pytest

from node_agent.camera.lock import CameraLock
from node_agent.camera.protocol import CameraBackend, CapturedFrame
from node_agent.camera.synthetic import SyntheticCamera
from node_agent.recorder.counters import measured_bitrate_bps
from node_agent.recorder.policies import (
    FrameTimeline,
    RateWindow,
    probation_verdict,
    reserve_reached,
)
from node_agent.recorder.service import Recorder
from node_agent.recorder.spec import Identity
from node_agent.schemas import Position, RecorderState, StartRequest, StopRequest, StopResult
from node_agent.settings import CameraSettings, GateSettings
from node_agent.telemetry.chrony import ClockMonitor
from tests.waiting import wait_for

S = 1_000_000_000


class FakeClock:
    """Wall time follows the real clock plus an offset the test moves; monotonic time
    moves only when the test says so."""

    def __init__(self) -> None:
        self.wall_offset_ns = 0
        self.mono_ns = 1_000 * S

    def time_ns(self) -> int:
        return time.time_ns() + self.wall_offset_ns

    def monotonic_ns(self) -> int:
        return self.mono_ns

    def sleep(self, seconds: float) -> None:
        self.mono_ns += round(seconds * S)

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        self.sleep(timeout_s)
        return False


class ScriptedCamera:
    """A synthetic picture whose ``open`` can be held on an Event and whose frames come
    ``step`` periods apart (a camera that loses frames), delivered without pacing."""

    name = "scripted"

    def __init__(
        self, width: int, height: int, fps: float, gate: threading.Event | None, step: int
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self._picture = SyntheticCamera(width, height, fps, "CAM_T")
        self._gate = gate
        self._step = step
        self.opening = threading.Event()
        self._t0_wall = 0
        self._index = 0

    def open(self) -> None:
        self.opening.set()
        if self._gate is not None:
            assert self._gate.wait(30), "the test never let the camera open"
        self._picture.open()

    def begin(self, start_wall_ns: int, start_monotonic_ns: int) -> None:
        self._t0_wall, self._index = start_wall_ns, 0

    def read(self, timeout_s: float, cancel: threading.Event) -> CapturedFrame | None:
        if cancel.wait(0.005):
            return None
        capture_ns = self._t0_wall + round(self._index * S / self.fps)
        frame = self._picture.render(self._index, capture_ns)
        self._index += self._step
        return CapturedFrame(frame, capture_ns)

    def still(self) -> av.VideoFrame:
        return self._picture.still()

    def close(self) -> None:
        self._picture.close()


class Factory:
    """A backend factory handing out ScriptedCameras (the recorder's constructor takes it)."""

    def __init__(self, gate: threading.Event | None = None, step: int = 1) -> None:
        self.gate, self.step = gate, step
        self.made: list[ScriptedCamera] = []

    def __call__(
        self,
        source: str,
        width: int,
        height: int,
        fps: float,
        camera_id: str = "",
        *,
        device: str | None = None,
    ) -> CameraBackend:
        cam = ScriptedCamera(width, height, fps, self.gate, self.step)
        self.made.append(cam)
        return cam


def make(
    tmp_path: Path, factory: Factory, clock: FakeClock | None = None, **cam: object
) -> Recorder:
    base: dict[str, object] = {"source": "synthetic", "bitrate_min_bps": 200_000}
    if "profiles" not in cam:
        base |= {"width": 320, "height": 240, "fps": 30.0, "bitrate_bps": 2_000_000}
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    return Recorder(
        rec_dir,
        CameraSettings(**(base | cam)),
        Identity("node-1", "CAM_T", Position.left, "9.9.9"),
        ClockMonitor("/nonexistent/chronyc"),
        CameraLock(tmp_path / "camera.lock"),
        gates=GateSettings(clock_policy="warn", thermal_path=tmp_path / "no-thermal"),
        max_schedule_ahead_s=60,
        clock=clock,
        backend_factory=factory,
    )


def test_a_stop_while_the_camera_opens_stops_that_recording(tmp_path: Path) -> None:
    gate = threading.Event()
    factory = Factory(gate)
    rec = make(tmp_path, factory)
    start_at = time.time_ns() + 5 * S  # armed, not started: the stop must cancel it
    started: list[object] = []
    starter = threading.Thread(
        target=lambda: started.append(
            rec.start(StartRequest(session_id="S1", command_id="start-1", start_at_ns=start_at))
        )
    )
    starter.start()
    wait_for(
        "the camera to start opening",
        lambda: bool(factory.made) and factory.made[0].opening.is_set(),
    )

    stopped: list[StopResult | BaseException] = []

    def send_stop() -> None:
        try:
            stopped.append(asyncio.run(rec.stop(StopRequest(session_id="S1", command_id="stop-1"))))
        except BaseException as err:  # a NotFound here is the bug this test is about
            stopped.append(err)

    stopper = threading.Thread(target=send_stop)
    stopper.start()
    time.sleep(0.3)
    assert stopped == [], f"the stop answered before the arming finished: {stopped}"
    gate.set()  # the camera opens now
    starter.join(20)
    stopper.join(20)
    assert len(started) == 1 and not isinstance(started[0], BaseException)
    assert len(stopped) == 1 and isinstance(stopped[0], StopResult), stopped
    assert stopped[0].session_id == "S1" and stopped[0].state == "cancelled"
    wait_for("the recorder to be idle", lambda: rec.state == RecorderState.idle)
    assert rec.lock.owner is None
    assert list(rec.directory.glob("*.mp4")) == []
    # The stop is remembered by its command id like any other.
    again = asyncio.run(rec.stop(StopRequest(session_id="S1", command_id="stop-1")))
    assert again == stopped[0]


def test_the_recorder_stamps_and_measures_on_its_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = make(tmp_path, Factory(), clock)
    result = rec.start(StartRequest(session_id="S1", command_id="c1"))
    assert abs(result.armed_at_ns - time.time_ns()) < 5 * S
    assert rec.status().measured_bitrate_bps is None or rec.status().frames > 0
    wait_for("frames", lambda: rec.status().frames >= 10)
    job = rec.active_job()
    assert job is not None and job.counters.first_frame_ns is not None
    # Ten seconds after the first frame by the injected clock: the rate is bytes*8/10.
    clock.wall_offset_ns = job.counters.first_frame_ns + 10 * S - time.time_ns()
    before = job.writer.sink.size_bytes
    measured = rec.status().measured_bitrate_bps
    after = job.writer.sink.size_bytes
    assert measured is not None
    assert before * 8 // 10 - 8 <= measured <= after * 8 // 10 + 8
    asyncio.run(rec.stop(StopRequest(session_id="S1", command_id="s1")))
    assert rec.status().measured_bitrate_bps is None  # idle


def test_probation_ends_by_the_injected_clock_and_leaves_a_lossy_profile(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    two = [
        {"width": 320, "height": 240, "fps": 30, "codec": "h264", "bitrate_bps": 1_000_000},
        {"width": 160, "height": 120, "fps": 30, "codec": "h264", "bitrate_bps": 500_000},
    ]
    # Every frame comes three periods after the one before: two of three are lost.
    rec = make(tmp_path, Factory(step=3), clock, profiles=two, probation_s=30.0)
    rec.start(StartRequest(session_id="S1", command_id="c1"))
    wait_for("frames", lambda: rec.status().frames >= 5)
    assert rec.profiles.active == 0  # 30 s of probation have not passed on the clock
    clock.sleep(31)
    wait_for("the verdict", lambda: rec.profiles.active == 1)
    assert any("dropped 6" in n and "in the first 30 s" in n for n in rec.status().profile_notes)
    asyncio.run(rec.stop(StopRequest(session_id="S1", command_id="s1")))


# -- pure policies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("captures_ms", "pts", "dropped"),
    [
        ([0, 33.3, 66.7, 100], [0, 1, 2, 3], 0),
        ([0, 33.3, 133.3], [0, 1, 4], 2),
        ([0, 10, 20], [0, 1, 2], 0),  # early frames never repeat or go back
        ([1000, 1000, 1033.3], [0, 1, 2], 0),
    ],
)
def test_frame_timeline_places_frames_and_counts_the_gaps(
    captures_ms: list[float], pts: list[int], dropped: int
) -> None:
    timeline = FrameTimeline(30.0)
    assert [timeline.place(round(ms * 1_000_000)) for ms in captures_ms] == pts
    assert timeline.dropped == dropped


def test_rate_window_reports_once_a_second() -> None:
    window = RateWindow(start_ns=0)
    rates = [window.tick(i * S // 30) for i in range(1, 31)]
    assert rates[:-1] == [None] * 29 and rates[-1] == pytest.approx(30.0)


def test_the_disk_reserve_is_seconds_at_the_bitrate() -> None:
    assert reserve_reached(2_000_001, 4.0, 4_000_000) is None  # 4 s at 4 Mb/s = 2 MB
    why = reserve_reached(1_999_999, 4.0, 4_000_000)
    assert why is not None and "disk reserve reached" in why and "4 s at 4 Mb/s" in why


def test_probation_fails_only_above_the_drop_ratio() -> None:
    assert probation_verdict(95, 5, 0.1, 2.0, 29.0, 30.0) is None
    verdict = probation_verdict(50, 50, 0.1, 2.0, 15.0, 30.0)
    assert verdict is not None and "dropped 50%" in verdict and "15.0 fps of 30" in verdict
    assert probation_verdict(0, 0, 0.1, 2.0, 0.0, 30.0) is None


def test_measured_bitrate_is_bits_written_per_second_since_the_first_frame() -> None:
    assert measured_bitrate_bps(1_000_000, None, 5 * S) is None
    assert measured_bitrate_bps(1_000_000, 5 * S, 5 * S) is None
    assert measured_bitrate_bps(1_000_000, 1 * S, 3 * S) == 4_000_000
