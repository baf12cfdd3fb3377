"""The status file: the spec's merge rule, atomic rewrites, outside fields, the day rollover,
and the fields a real timelapse's captures and failures leave in it.

The atomicity and outside-program tests run the other side in a separate process (a
Python child reading or writing the same file), as a real reader or writer would. The
rollover runs on a fake clock; the capture tests run a real ``Timelapse`` (synthetic
camera, real JPEG files) on the fake clock of tests/test_timelapse.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from node_agent.camera.lock import CameraLock
from node_agent.camera.protocol import CameraBackend, CameraError
from node_agent.camera.synthetic import SyntheticCamera
from node_agent.schemas import RecorderState
from node_agent.settings import AgentSettings
from node_agent.statusfile.schemas import AgentStatus, StatusDocument
from node_agent.statusfile.service import (
    ERROR_STREAK,
    StatusFileService,
    StatusSources,
    derive_status,
    seconds_to_next_day,
)
from node_agent.statusfile.writer import merge_fields, read_status, update_status
from node_agent.timelapse.events import TimelapseEvent
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.schemas import TimelapseState, TimelapseStatus, TimelapseVideo
from node_agent.timelapse.settings import TimelapseSettings
from tests.test_timelapse import FakeClock
from tests.waiting import wait_for

S = 1_000_000_000
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on tmpfs, where the status file lives in production (/run); the test's
    own folder where mounting is not permitted (the same code, slower fsyncs)."""
    mount = tmp_path / "run"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    yield mount
    if done.returncode == 0:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def tl_status(**changes: Any) -> TimelapseStatus:
    """A timelapse status as ``Timelapse.status()`` gives it, stopped, with ``changes``."""
    base: dict[str, Any] = {
        "running": False,
        "state": TimelapseState.stopped,
        "interval_s": 30.0,
        "jpeg_quality": 85,
        "width": 160,
        "height": 120,
        "directory": "/nowhere",
        "captures_today": 0,
        "captures_total": 0,
        "skipped": 0,
        "skipped_disk_full": 0,
        "missed": 0,
        "failures": 0,
        "consecutive_failures": 0,
        "cleanup_enabled": False,
        "retention_days": 30,
        "deleted_days": 0,
        "gap_tracking": False,
    }
    return TimelapseStatus.model_validate(base | changes)


class Parts:
    """What the service reads, set by the test."""

    def __init__(self, tmp: Path) -> None:
        self.timelapse = tl_status()
        self.recorder = RecorderState.idle
        self.temperature: float | None = 47.3
        self.recorder_error: str | None = None
        self.sources = StatusSources(
            device_id="cam-t",
            timelapse=lambda: self.timelapse,
            recorder_state=lambda: self.recorder,
            temperature_c=lambda: self.temperature,
            disk_path=tmp,
            started_monotonic=time.monotonic(),
            recorder_error=lambda: self.recorder_error,
        )


class WallClock:
    """A wall clock the test sets; a wait goes up to ``limit_ns`` at once, then parks."""

    def __init__(self, wall: dt.datetime) -> None:
        self.now_ns = int(wall.timestamp() * S)
        self.limit_ns: int | None = None
        self.waits: list[float] = []

    def time_ns(self) -> int:
        return self.now_ns

    def monotonic_ns(self) -> int:
        return self.now_ns

    def sleep(self, seconds: float) -> None:
        self.now_ns += round(seconds * S)

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        self.waits.append(timeout_s)
        step = round(timeout_s * S)
        if event.is_set() or self.limit_ns is None or self.now_ns + step > self.limit_ns:
            return event.wait()  # parked until poked or stopped
        self.now_ns += step
        return False


def local(year: int, month: int, day: int, hour: int, minute: int, second: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second).astimezone()


# -- the merge rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "fields", "after"),
    [
        ({}, {"status": "idle"}, {"status": "idle"}),
        ({"status": "idle"}, {"status": "capturing"}, {"status": "capturing"}),
        # a dict merges one level into an existing dict ...
        (
            {"today": {"date": "2026-02-08", "expected_photos": 750}},
            {"today": {"photos_captured": 3}},
            {"today": {"date": "2026-02-08", "expected_photos": 750, "photos_captured": 3}},
        ),
        # ... only one level: a nested dict inside it is replaced
        ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"c": 5}}}, {"a": {"b": {"c": 5}}}),
        # anything else replaces: a dict over a scalar, a scalar over a dict, lists
        ({"a": 1}, {"a": {"x": 1}}, {"a": {"x": 1}}),
        ({"a": {"x": 1}}, {"a": None}, {"a": None}),
        ({"errors": ["one"]}, {"errors": ["two"]}, {"errors": ["two"]}),
        ({"keep": True}, {}, {"keep": True}),
    ],
)
def test_the_spec_merge_rule(
    before: dict[str, Any], fields: dict[str, Any], after: dict[str, Any]
) -> None:
    assert merge_fields(json.loads(json.dumps(before)), fields) == after


def test_update_status_merges_into_the_file_and_stamps_updated_at(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    update_status(path, status="waiting", today={"date": "2026-02-08"})
    written = update_status(path, today={"expected_photos": 750})
    on_disk = json.loads(path.read_text())
    assert on_disk == written
    assert on_disk["status"] == "waiting"
    assert on_disk["today"] == {"date": "2026-02-08", "expected_photos": 750}
    stamp = dt.datetime.fromisoformat(on_disk["updated_at"])
    assert stamp.tzinfo is not None  # local time with its offset
    assert abs((dt.datetime.now().astimezone() - stamp).total_seconds()) < 5
    assert path.stat().st_mode & 0o777 == 0o644  # other users' programs read it
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("content", [None, b"", b'{"status": "capt', b"[1, 2]", b"\xff\xfe"])
def test_read_status_is_empty_when_missing_or_half_readable(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "status.json"
    if content is not None:
        path.write_bytes(content)
    assert read_status(path) == {}


def test_in_process_writers_never_lose_each_others_fields(run_dir: Path) -> None:
    path = run_dir / "status.json"

    def writer(name: str) -> None:
        for i in range(150):
            update_status(path, **{name: i}, today={name: i})

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc = read_status(path)
    # Without the lock a read-merge-rename would drop another writer's last fields.
    assert {f"w{n}": 149 for n in range(4)}.items() <= doc.items()
    assert doc["today"] == {f"w{n}": 149 for n in range(4)}


READER = textwrap.dedent(
    """
    import json, os, sys, time
    path, stop = sys.argv[1], sys.argv[2]
    reads = bad = missing = 0
    seen = set()
    while not os.path.exists(stop):
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            missing += 1
            continue
        try:
            doc = json.loads(data)
            assert isinstance(doc, dict) and len(doc["padding"]) == 20000
            seen.add(doc["rewrite"])
        except Exception:
            bad += 1
        reads += 1
    print(json.dumps({"reads": reads, "bad": bad, "missing": missing, "seen": len(seen)}))
    """
)


def test_a_reader_in_another_process_never_sees_a_half_written_file(
    tmp_path: Path, run_dir: Path
) -> None:
    path = run_dir / "status.json"
    parts = Parts(tmp_path)
    service = StatusFileService(path, parts.sources)
    # Another program's big field, kept by every rewrite: each rewrite writes ~20 kB, so a
    # non-atomic write would be caught half done.
    update_status(path, padding="x" * 20000, rewrite=-1)
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.2)  # the reader is up and looping
        for i in range(1000):
            parts.timelapse = tl_status(captures_today=i)
            assert service.publish(rewrite=i)
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=30)
    result = json.loads(out)
    assert result["bad"] == 0 and result["missing"] == 0, result
    assert result["reads"] >= 200, result  # it really read while the rewrites went on
    assert result["seen"] >= 20, result  # ... and saw many different rewrites
    doc = read_status(path)
    assert doc["rewrite"] == 999 and doc["today"]["photos_captured"] == 999
    assert service.writes == 1000 and service.failures == 0


OUTSIDE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from node_agent.statusfile.writer import update_status
    update_status(
        sys.argv[1],
        last_backup_time="2026-02-08T23:10:00+01:00",
        last_video={"youtube_url": "https://youtu.be/abc123"},
        today={"weather": "sunny"},
    )
    """
)


def test_fields_another_program_writes_survive_the_next_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    parts = Parts(tmp_path)
    parts.timelapse = tl_status(
        last_video=TimelapseVideo(
            day="2026-02-07",
            file_name="videos/timelapse_CAM_T_20260207.mp4",
            frames=750,
            skipped_stills=0,
            fps=24,
            width=160,
            height=120,
            duration_s=31.25,
            size_bytes=1000,
            encoder="libx264",
            rendered_ns=5,
        )
    )
    service = StatusFileService(path, parts.sources)
    assert service.write_now()
    subprocess.run([sys.executable, "-c", OUTSIDE, str(path), str(ROOT)], check=True, timeout=60)
    parts.timelapse = parts.timelapse.model_copy(update={"captures_today": 12})
    assert service.write_now()
    doc = read_status(path)
    assert doc["last_backup_time"] == "2026-02-08T23:10:00+01:00"
    assert doc["today"]["weather"] == "sunny" and doc["today"]["photos_captured"] == 12
    assert doc["last_video"] == {
        "date": "2026-02-07",
        "filename": "timelapse_CAM_T_20260207.mp4",
        "duration_seconds": 31.25,
        "photos_used": 750,
        "backed_up": False,
        "youtube_url": "https://youtu.be/abc123",
    }
    # The daily cycle's hook: the backup is done.
    assert service.publish(status=AgentStatus.backing_up, last_video={"backed_up": True})
    doc = read_status(path)
    assert doc["status"] == "backing_up"
    assert doc["last_video"]["backed_up"] is True
    assert doc["last_video"]["youtube_url"] == "https://youtu.be/abc123"
    StatusDocument.model_validate(doc)  # what GET /status documents


def test_the_document_has_the_spec_fields(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    parts = Parts(tmp_path)
    parts.recorder = RecorderState.recording
    service = StatusFileService(path, parts.sources)
    assert service.write_now()
    doc = read_status(path)
    assert doc["device_id"] == "cam-t"
    assert doc["status"] == "capturing" and doc["recording"] is True
    assert doc["cpu_temperature_celsius"] == 47.3
    assert 0 <= doc["disk_percent"] <= 100 and doc["disk_free_bytes"] > 0
    assert doc["uptime_seconds"] >= doc["agent_uptime_seconds"] >= 0
    assert doc["today"] == {
        "date": dt.date.today().isoformat(),
        "photos_captured": 0,
        "expected_photos": None,
        "start_time": None,
        "end_time": None,
        "interval_seconds": 30.0,
    }
    assert doc["errors"] == []
    assert "last_capture" not in doc and "last_video" not in doc  # nothing to say yet
    parts.recorder = RecorderState.idle
    parts.temperature = None  # no thermal zone: null, not a stale value
    service.write_now()
    doc = read_status(path)
    assert doc["recording"] is False and doc["status"] == "idle"
    assert doc["cpu_temperature_celsius"] is None


@pytest.mark.parametrize(
    ("phase", "timelapse", "recording", "expected"),
    [
        (None, {}, False, AgentStatus.idle),
        (None, {}, True, AgentStatus.capturing),
        (None, {"running": True, "state": TimelapseState.capturing}, False, AgentStatus.capturing),
        (AgentStatus.waiting, {}, False, AgentStatus.waiting),
        (
            AgentStatus.waiting,
            {"running": True, "state": TimelapseState.capturing},
            False,
            AgentStatus.capturing,
        ),
        (AgentStatus.creating_video, {}, False, AgentStatus.creating_video),
        (AgentStatus.backing_up, {}, True, AgentStatus.backing_up),
        (AgentStatus.uploading, {}, False, AgentStatus.uploading),
        (AgentStatus.error, {}, False, AgentStatus.error),
        (
            None,
            {
                "running": True,
                "state": TimelapseState.reconnecting,
                "consecutive_failures": ERROR_STREAK - 1,
            },
            False,
            AgentStatus.capturing,
        ),
        (
            AgentStatus.creating_video,
            {
                "running": True,
                "state": TimelapseState.reconnecting,
                "consecutive_failures": ERROR_STREAK,
            },
            False,
            AgentStatus.error,
        ),
        (None, {"running": True, "state": TimelapseState.disk_full}, False, AgentStatus.error),
    ],
)
def test_the_status_value(
    phase: AgentStatus | None,
    timelapse: dict[str, Any],
    recording: bool,
    expected: AgentStatus,
) -> None:
    assert derive_status(phase, tl_status(**timelapse), recording) == expected


def test_publish_keeps_a_phase_until_the_next_and_refuses_unknown_ones(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    service = StatusFileService(path, Parts(tmp_path).sources)
    service.publish(
        status="waiting",
        today={"expected_photos": 750, "start_time": "07:15:00", "end_time": "17:30:00"},
    )
    service.write_now()  # an ordinary rewrite keeps the phase and the plan
    doc = read_status(path)
    assert doc["status"] == "waiting"
    assert doc["today"]["expected_photos"] == 750 and doc["today"]["start_time"] == "07:15:00"
    service.publish(status=None, error="backup failed: NAS unreachable", source="backup")
    doc = read_status(path)
    assert doc["status"] == "idle"
    assert doc["errors"][-1]["message"] == "backup failed: NAS unreachable"
    assert doc["errors"][-1]["source"] == "backup"
    with pytest.raises(ValueError):
        service.publish(status="sleeping")


def test_errors_are_bounded_and_a_recorder_error_is_added_once(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    parts = Parts(tmp_path)
    service = StatusFileService(path, parts.sources, max_errors=5)
    for i in range(8):
        service.note_error("timelapse", f"failure {i}")
    parts.recorder_error = "encoder stalled"
    service.write_now()
    service.write_now()
    errors = read_status(path)["errors"]
    assert [e["message"] for e in errors] == [
        "failure 4",
        "failure 5",
        "failure 6",
        "failure 7",
        "encoder stalled",
    ]


# -- the day rollover -------------------------------------------------------------------------


def test_seconds_to_next_day() -> None:
    at = local(2026, 2, 8, 23, 59, 58)
    assert seconds_to_next_day(int(at.timestamp() * S)) == pytest.approx(2.0)
    noon = local(2026, 2, 8, 12, 0, 0)
    expected = (local(2026, 2, 9, 0, 0, 0) - noon).total_seconds()
    assert seconds_to_next_day(int(noon.timestamp() * S)) == pytest.approx(expected)


def test_today_and_errors_restart_when_the_local_date_changes(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    clock = WallClock(local(2026, 2, 8, 23, 59, 58))
    parts = Parts(tmp_path)
    parts.timelapse = tl_status(captures_today=342)
    service = StatusFileService(path, parts.sources, clock=clock)
    service.publish(today={"expected_photos": 750, "start_time": "07:15:00"})
    service.note_error("timelapse", "capture failed: sensor timed out")
    service.on_timelapse_event(TimelapseEvent("capture", detail="2026/02/08/235957.jpg"))
    service.write_now()
    update_status(path, today={"weather": "clear"})  # another program's field of the day
    before = read_status(path)
    assert before["today"]["date"] == "2026-02-08" and before["today"]["weather"] == "clear"
    assert len(before["errors"]) == 1

    clock.now_ns += 5 * S  # 00:00:03 the next day; the timelapse counted afresh
    parts.timelapse = tl_status(captures_today=0)
    assert service.write_now()
    after = read_status(path)
    assert after["today"] == {
        "date": "2026-02-09",
        "photos_captured": 0,
        "expected_photos": None,
        "start_time": None,
        "end_time": None,
        "interval_seconds": 30.0,
    }
    assert after["errors"] == []
    assert after["last_capture"]["filename"] == "2026/02/08/235957.jpg"  # kept: the last one


def test_the_writer_thread_rewrites_at_midnight_without_a_poke(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    clock = WallClock(local(2026, 2, 8, 23, 59, 0))
    service = StatusFileService(path, Parts(tmp_path).sources, clock=clock, interval_s=0)
    clock.limit_ns = int(local(2026, 2, 9, 0, 0, 1).timestamp() * S)  # one wake, then parked
    service.start()
    try:
        deadline = time.monotonic() + 10
        while read_status(path).get("today", {}).get("date") != "2026-02-09":
            assert time.monotonic() < deadline, read_status(path)
            time.sleep(0.01)
    finally:
        service.stop()
    assert clock.waits[0] == pytest.approx(60.05)  # slept until just after midnight
    assert service.writes >= 2


# -- a real timelapse's captures and failures -------------------------------------------------


class BrokenCamera(SyntheticCamera):
    """Opens, then every still fails as a sensor that stopped answering."""

    def still(self) -> av.VideoFrame:
        raise CameraError("the sensor did not answer")


def real_timelapse(
    tmp_path: Path, clock: FakeClock, service: StatusFileService, broken: bool = False
) -> tuple[Timelapse, threading.Semaphore]:
    """A real timelapse whose observer is the service; the semaphore counts its captures
    and failures."""
    captures = threading.Semaphore(0)

    def observer(event: TimelapseEvent) -> None:
        service.on_timelapse_event(event)
        if event.kind in ("capture", "failure"):
            captures.release()

    def factory(
        source: str,
        width: int,
        height: int,
        fps: float,
        camera_id: str = "",
        *,
        device: str | None = None,
    ) -> CameraBackend:
        return (BrokenCamera if broken else SyntheticCamera)(width, height, fps, camera_id)

    tl = Timelapse(
        TimelapseSettings(interval_s=1.0, backoff_base_s=1.0),
        source="synthetic",
        camera_width=160,
        camera_height=120,
        camera_fps=30.0,
        cam_id="CAM_T",
        data_dir=tmp_path,
        lock=CameraLock(tmp_path / "camera.lock"),
        backend_factory=factory,
        clock=clock,
        rng=random.Random(1),
        observer=observer,
    )
    return tl, captures


def wait_captures(captures: threading.Semaphore, n: int) -> None:
    for _ in range(n):
        assert captures.acquire(timeout=30)


def service_for(tmp_path: Path, clock: FakeClock, holder: list[Timelapse]) -> StatusFileService:
    sources = StatusSources(
        device_id="cam-t",
        timelapse=lambda: holder[0].status(),
        recorder_state=lambda: RecorderState.idle,
        temperature_c=lambda: None,
        disk_path=tmp_path,
        started_monotonic=time.monotonic(),
    )
    return StatusFileService(tmp_path / "run" / "status.json", sources, clock=clock)


def test_the_fields_after_a_capture(tmp_path: Path) -> None:
    clock = FakeClock(limit_s=2.5)  # stills at 0, 1 and 2 s of fake time
    holder: list[Timelapse] = []
    service = service_for(tmp_path, clock, holder)
    tl, captures = real_timelapse(tmp_path, clock, service)
    holder.append(tl)
    tl.start()
    try:
        wait_captures(captures, 3)
        assert service.write_now()  # what the writer thread does after the poke
        doc = read_status(tmp_path / "run" / "status.json")
    finally:
        tl.stop()
    capture = doc["last_capture"]
    assert capture["success"] is True
    assert capture["filename"] == "2026/03/10/143002.jpg"
    assert (tl.folder / capture["filename"]).is_file()
    assert capture["duration_ms"] > 0
    taken = dt.datetime.fromisoformat(capture["time"])
    assert taken == dt.datetime(2026, 3, 10, 14, 30, 2).astimezone()
    assert doc["status"] == "capturing" and doc["recording"] is False
    assert doc["today"]["date"] == "2026-03-10" and doc["today"]["photos_captured"] == 3
    assert doc["today"]["interval_seconds"] == 1.0
    assert doc["errors"] == []
    service.write_now()  # after the stop: nothing runs
    assert read_status(service.path)["status"] == "idle"  # type: ignore[arg-type]


def test_a_stop_from_another_part_reaches_the_file_at_once(tmp_path: Path) -> None:
    # The battery's monitor and the daily cycle stop the timelapse from their own
    # threads, not through a request: the file must not wait for its 60 s rewrite (on
    # this fake clock the writer would wait for ever).
    clock = FakeClock(limit_s=2.5)
    holder: list[Timelapse] = []
    service = service_for(tmp_path, clock, holder)
    tl, captures = real_timelapse(tmp_path, clock, service)
    holder.append(tl)
    path = tmp_path / "run" / "status.json"
    service.start()
    try:
        tl.start()
        wait_captures(captures, 3)
        wait_for("capturing", lambda: read_status(path)["status"] == "capturing")
        writes = service.writes
        stopper = threading.Thread(target=tl.stop)  # as power's asyncio.to_thread does
        stopper.start()
        stopper.join(30)
        wait_for("idle", lambda: read_status(path)["status"] == "idle")
        assert service.writes > writes
        tl.start()  # a resume: the file says so before any capture of the new run
        wait_for("capturing again", lambda: read_status(path)["status"] == "capturing")
    finally:
        tl.stop()
        service.stop()


def test_the_fields_after_failed_captures(tmp_path: Path) -> None:
    clock = FakeClock(limit_s=60)
    holder: list[Timelapse] = []
    service = service_for(tmp_path, clock, holder)
    tl, captures = real_timelapse(tmp_path, clock, service, broken=True)
    holder.append(tl)
    tl.start()
    try:
        wait_captures(captures, ERROR_STREAK)
        assert service.write_now()
        doc = read_status(tmp_path / "run" / "status.json")
    finally:
        tl.stop()
    capture = doc["last_capture"]
    assert capture["success"] is False
    assert capture["filename"] is None and capture["duration_ms"] is None
    assert len(doc["errors"]) >= ERROR_STREAK
    assert all(e["source"] == "timelapse" for e in doc["errors"])
    assert "the sensor did not answer" in doc["errors"][-1]["message"]
    assert doc["status"] == "error"  # three camera failures in a row
    assert doc["today"]["photos_captured"] == 0


# -- failures of the file itself --------------------------------------------------------------


def test_a_write_failure_is_counted_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    service = StatusFileService(blocker / "status.json", Parts(tmp_path).sources)
    with caplog.at_level(logging.ERROR, logger="node_agent.statusfile.service"):
        for _ in range(3):
            assert service.write_now() is False
        service.on_timelapse_event(TimelapseEvent("failure", detail="capture failed"))
        assert service.publish(status="waiting") is False
    assert service.failures == 4
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "cannot write the status file" in errors[0].getMessage()
    blocker.unlink()  # the folder can be made now: it works again, errors kept
    assert service.write_now()
    assert read_status(blocker / "status.json")["errors"][0]["message"] == "capture failed"


def test_a_switched_off_file_is_a_no_op(tmp_path: Path) -> None:
    service = StatusFileService(None, Parts(tmp_path).sources)
    service.start()
    service.poke()
    assert service.publish(status="waiting") is False
    service.stop()
    assert service.read() == {} and service.writes == 0 and service.failures == 0


def test_the_setting_is_on_by_default_and_empty_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAMFLEET_STATUS_FILE")  # the suite's own, for in-process agents
    assert AgentSettings(data_dir=tmp_path).status_file == Path("/run/camfleet/status.json")
    assert AgentSettings(data_dir=tmp_path, status_file="").status_file is None
    assert AgentSettings(data_dir=tmp_path, status_file=None).status_file is None
    monkeypatch.setenv("CAMFLEET_STATUS_FILE", "")
    assert AgentSettings(data_dir=tmp_path).status_file is None
    monkeypatch.setenv("CAMFLEET_STATUS_FILE", str(tmp_path / "s.json"))
    assert AgentSettings(data_dir=tmp_path).status_file == tmp_path / "s.json"
