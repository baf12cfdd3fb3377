"""A scheduled start is fleet time: the node starts when its own clock reads start_at plus
its measured offset, and one that arms after that instant starts at once and says so."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

import httpx

from node_agent.camera.lock import CameraLock
from node_agent.recorder.deadline import bound_at_ns, plan_start
from node_agent.recorder.service import Recorder
from node_agent.recorder.spec import Identity
from node_agent.schemas import ClockStatus, Manifest, Position, StartRequest, StopRequest
from node_agent.settings import CameraSettings, GateSettings
from node_agent.sync.settings import SyncSettings
from node_agent.telemetry.chrony import ClockMonitor
from tests.solo_agent import solo_agent

MS = 1_000_000
FPS = 30.0
# Offsets far larger than any stall a loaded machine causes, so a start on the wrong clock
# cannot pass for a late one; the stall allowed for a start is SLACK.
SHIFT = 300 * MS
SLACK = 200 * MS


def synced(offset_ns: int, **more: object) -> ClockStatus:
    return ClockStatus(source="chrony", synchronized=True, offset_ns=offset_ns, **more)


def test_the_deadline_moves_by_the_offset_of_a_synchronised_clock() -> None:
    start = 1_800_000_000_000_000_000
    plan = plan_start(start, start - 500 * MS, synced(40 * MS), correct=True)
    assert plan.deadline_ns == start + 40 * MS == plan.start_at_ns
    assert plan.offset_applied_ns == 40 * MS
    assert plan.late_ns(start + 39 * MS) == 0
    assert plan.late_ns(start + 52 * MS) == 12 * MS
    # Not corrected: by setting, or because the reading is not synchronised.
    assert plan_start(start, start - MS, synced(40 * MS), correct=False).deadline_ns == start
    unsynced = ClockStatus(source="chrony", synchronized=False, offset_ns=40 * MS)
    assert plan_start(start, start - MS, unsynced, correct=True).deadline_ns == start
    # A start "now" is never late, and one whose instant passed begins now.
    now = plan_start(None, start, synced(40 * MS), correct=True)
    assert (now.start_at_ns, now.late_ns(start + 9 * MS)) == (start, 0)
    passed = plan_start(start, start + 200 * MS, synced(-3 * MS), correct=True)
    assert passed.deadline_ns == start - 3 * MS and passed.start_at_ns == start + 200 * MS


def test_the_bound_widens_with_the_age_of_the_reading() -> None:
    clock = synced(MS, error_bound_ns=2 * MS, frequency_ppm=-20.0, skew_ppm=5.0, read_at_ns=0)
    assert bound_at_ns(clock, 0) == 2 * MS
    assert bound_at_ns(clock, 4_000_000_000) == 2 * MS + 100_000  # 4 s x 25 ppm
    assert bound_at_ns(synced(MS), 10) is None


def make_recorder(tmp_path: Path, clock: ClockMonitor, correct: bool = True) -> Recorder:
    cam = CameraSettings(
        source="synthetic",
        width=320,
        height=240,
        fps=FPS,
        bitrate_bps=1_000_000,
        bitrate_min_bps=500_000,
    )
    return Recorder(
        tmp_path,
        cam,
        Identity("node-l", "CAM_L", Position.left, "9.9.9"),
        clock,
        CameraLock(tmp_path / "camera.lock"),
        # Offsets of tens of ms are the point here (a clock chrony does not steer).
        gates=GateSettings(max_clock_error_ms=1000),
        max_schedule_ahead_s=60,
        sync=SyncSettings(correct_start_by_offset=correct),
    )


def record(rec: Recorder, start_at_ns: int, seconds_after: float = 0.4) -> tuple[int, Manifest]:
    """Start at ``start_at_ns`` (fleet time), stop a little after; (late_ns, manifest)."""
    started = rec.start(StartRequest(session_id="S1", command_id="a", start_at_ns=start_at_ns))
    deadline = time.monotonic() + 10
    while rec.status().first_frame_ns is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(seconds_after)
    m = asyncio.run(rec.stop(StopRequest(session_id="S1", command_id="b"))).manifest
    assert m is not None
    return started.late_ns, m


def test_a_fast_clock_starts_later_by_its_offset_on_its_own_clock(tmp_path: Path) -> None:
    monitor = ClockMonitor("/nonexistent/chronyc")
    monitor.latest = synced(SHIFT, error_bound_ns=SHIFT + MS, reference="10.42.0.1")
    rec = make_recorder(tmp_path, monitor)
    start_at = time.time_ns() + 700 * MS
    late, m = record(rec, start_at)
    assert late == 0 and m.start_late_ns == 0
    assert m.scheduled_start_ns == start_at
    assert m.start_deadline_ns == start_at + SHIFT
    # The synthetic camera's frame 0 is captured at the instant the start fires.
    assert 0 <= m.first_frame_ns - (start_at + SHIFT) < SLACK
    assert (m.clock_offset_ns, m.clock_reference) == (SHIFT, "10.42.0.1")
    assert m.clock_error_bound_ns is not None and m.clock_error_bound_ns >= SHIFT + MS
    assert m.first_frame_source == "capture"
    # Corrected by the offset, the first frame is at the fleet instant.
    assert 0 <= m.first_frame_ns - SHIFT - start_at < SLACK


def test_without_correction_the_offset_is_not_applied(tmp_path: Path) -> None:
    monitor = ClockMonitor("/nonexistent/chronyc")
    monitor.latest = synced(SHIFT)
    start_at = time.time_ns() + 500 * MS
    _, m = record(make_recorder(tmp_path, monitor, correct=False), start_at)
    assert m.start_deadline_ns == start_at
    assert 0 <= m.first_frame_ns - start_at < SLACK


def test_a_node_that_arms_after_the_instant_starts_at_once_and_says_so(tmp_path: Path) -> None:
    monitor = ClockMonitor("/nonexistent/chronyc")
    monitor.latest = synced(-10 * MS)
    rec = make_recorder(tmp_path, monitor)
    start_at = time.time_ns() - 200 * MS  # the command came too late
    before = time.time_ns()
    started = rec.start(StartRequest(session_id="S1", command_id="a", start_at_ns=start_at))
    assert started.late_ns >= 190 * MS
    assert any("after the scheduled instant" in w for w in started.warnings), started.warnings
    assert started.start_at_ns >= before  # begins now, not in the past
    time.sleep(0.4)
    m = asyncio.run(rec.stop(StopRequest(session_id="S1", command_id="b"))).manifest
    assert m is not None and m.start_late_ns == started.late_ns
    assert m.first_frame_ns >= before


def fake_chronyc(tmp_path: Path, system_time_s: str) -> Path:
    """A chronyc that prints one tracking line whose System time is ``system_time_s``
    (chrony's correction: negative when the local clock is fast)."""
    line = (
        f"0A2A0001,10.42.0.1,9,1795338045.486129546,{system_time_s},-0.000000117,"
        "0.000000068,-0.157,-0.144,0.720,0.000005978,0.000001151,0.1,Normal"
    )
    path = tmp_path / "bin" / "chronyc"
    path.parent.mkdir(parents=True)
    path.write_text(f"#!/bin/sh\necho '{line}'\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_an_agent_starts_at_start_at_plus_the_offset_chronyc_reports(tmp_path: Path) -> None:
    chronyc = fake_chronyc(tmp_path, "-0.300000000")  # this clock is 300 ms fast
    env = {
        "CAMFLEET_CHRONYC_PATH": str(chronyc),
        "CAMFLEET_GATES__MAX_CLOCK_OFFSET_MS": "1000",
        "CAMFLEET_GATES__MAX_CLOCK_ERROR_MS": "1000",
    }
    with solo_agent(tmp_path, **env) as agent:
        clock = agent.status()["clock"]
        assert clock["synchronized"] is True and clock["offset_ns"] == SHIFT
        start_at = time.time_ns() + 1500 * MS
        body = {"session_id": "S9", "command_id": "s9-a", "start_at_ns": start_at}
        started = agent.client.post("/api/v1/recording/start", json=body)
        assert started.status_code == 200, started.text
        assert started.json()["start_at_ns"] == start_at + SHIFT
        deadline = time.monotonic() + 15
        while agent.status()["recorder"]["first_frame_ns"] is None:
            assert time.monotonic() < deadline, "the recording never began"
            time.sleep(0.05)
        stop = {"session_id": "S9", "command_id": "s9-o"}
        stopped = agent.client.post("/api/v1/recording/stop", json=stop, timeout=httpx.Timeout(30))
        assert stopped.status_code == 200, stopped.text
        m = stopped.json()["manifest"]
    assert m["start_deadline_ns"] == start_at + SHIFT
    assert m["clock_offset_ns"] == SHIFT and m["clock_reference"] == "10.42.0.1"
    assert 0 <= m["first_frame_ns"] - (start_at + SHIFT) < SLACK
    assert m["start_late_ns"] == 0
