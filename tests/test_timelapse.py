"""The timelapse runner in-process: real stills from the synthetic camera, real files.

Schedules and backoff run on an injected fake clock where the test is about the
sequence (collisions, retention, disk, backoff, reload); the drift and time-out tests
run on the real clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import os
import random
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from common.http import install_error_handlers
from node_agent.camera.lock import CameraBusy, CameraLock
from node_agent.camera.protocol import CameraBackend, CameraError
from node_agent.camera.synthetic import SyntheticCamera
from node_agent.errors import AgentError
from node_agent.timelapse.errors import NoStills, TimelapseConflict
from node_agent.timelapse.events import TimelapseEvent, fan_out
from node_agent.timelapse.metrics import TimelapseCollector
from node_agent.timelapse.routes import make_router
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.schedule import seconds_to_ns
from node_agent.timelapse.schemas import DiskState, TimelapseState
from node_agent.timelapse.settings import TimelapseSettings

S = 1_000_000_000
# A fixed local wall time for the fake clock: stills are named 2026/03/10/143000.jpg, ...
WALL = dt.datetime(2026, 3, 10, 14, 30, 0).astimezone()
DAY = WALL.date()


class FakeClock:
    """Monotonic and wall clocks that jump to each deadline at once.

    A wait that would go past ``limit_s`` (seconds of fake time) parks until the event
    is set (a stop or a reload), so a test decides how far a run gets.
    """

    def __init__(self, limit_s: float = float("inf")) -> None:
        self.start_ns = 10**12
        self.now_ns = self.start_ns
        self.wall0_ns = int(WALL.timestamp() * S)
        self.limit_ns = self.start_ns + (10**18 if limit_s == float("inf") else int(limit_s * S))

    def monotonic_ns(self) -> int:
        return self.now_ns

    def time_ns(self) -> int:
        return self.wall0_ns + (self.now_ns - self.start_ns)

    def sleep(self, seconds: float) -> None:
        self.now_ns += round(seconds * S)

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        step = round(timeout_s * S)
        if self.now_ns + step > self.limit_ns:
            return event.wait()  # parked until a stop or a reload
        self.now_ns += step
        time.sleep(0)  # let the test thread run
        return event.is_set()

    def at(self, seconds: float) -> int:
        """The monotonic instant ``seconds`` of fake time after the start."""
        return self.start_ns + seconds_to_ns(seconds)


class Events:
    """An observer that keeps every event with the (fake or real) time it came."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.items: list[tuple[int, TimelapseEvent]] = []
        self._cv = threading.Condition()
        self._clock = clock

    def __call__(self, event: TimelapseEvent) -> None:
        now = self._clock.monotonic_ns() if self._clock else time.monotonic_ns()
        with self._cv:
            self.items.append((now, event))
            self._cv.notify_all()

    def of(self, *kinds: str) -> list[TimelapseEvent]:
        with self._cv:
            return [e for _, e in self.items if e.kind in kinds]

    def wait_for(self, pred: Callable[[Events], bool], timeout_s: float = 30) -> None:
        with self._cv:
            ok = self._cv.wait_for(lambda: pred(self), timeout_s)
        assert ok, f"timed out; events: {[e for _, e in self.items][-20:]}"


def make_timelapse(
    tmp_path: Path,
    clock: FakeClock | None = None,
    events: Events | None = None,
    factory: Callable[..., CameraBackend] | None = None,
    lock: CameraLock | None = None,
    **settings: object,
) -> Timelapse:
    extra = {"backend_factory": factory} if factory else {}
    return Timelapse(
        TimelapseSettings.model_validate({"interval_s": 1.0} | settings),
        source="synthetic",
        camera_width=160,
        camera_height=120,
        camera_fps=30.0,
        cam_id="CAM_T",
        data_dir=tmp_path,
        lock=lock or CameraLock(tmp_path / "camera.lock"),
        clock=clock,
        rng=random.Random(1),
        observer=events,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def stopper() -> Iterator[list[Timelapse]]:
    """Timelapses a test started; each is stopped after it, even on failure."""
    started: list[Timelapse] = []
    yield started
    for tl in started:
        tl.stop()


def still_names(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))


def slots(events: Events) -> list[TimelapseEvent]:
    return events.of("capture", "skip")


# -- schedule -----------------------------------------------------------------------------------


class SlowCamera(SyntheticCamera):
    """A synthetic camera whose stills take 30 ms, like a real sensor's capture request."""

    def still(self) -> av.VideoFrame:
        time.sleep(0.03)
        return super().still()


@pytest.mark.slow
def test_a_hundred_captures_at_200_ms_do_not_drift(
    tmp_path: Path, stopper: list[Timelapse]
) -> None:
    events = Events()
    tl = make_timelapse(
        tmp_path,
        events=events,
        factory=lambda src, w, h, fps, cam="", device=None: SlowCamera(w, h, fps, cam),
        interval_s=0.2,
    )
    stopper.append(tl)
    tl.start()
    events.wait_for(lambda ev: len(slots(ev)) >= 100, timeout_s=60)
    tl.stop()
    taken = slots(events)[:100]
    indices = [e.index or 0 for e in taken]
    assert indices[0] == 0 and all(b > a for a, b in itertools.pairwise(indices))
    # A slot the machine stalled past (a loaded CI core) is skipped and counted, never
    # lost silently; a loop that drifted would miss one in every few, not one or two.
    missed = sum(b - a - 1 for a, b in itertools.pairwise(indices))
    assert missed <= 2, indices
    assert tl.status().missed >= missed
    t0 = taken[0].scheduled_ns
    assert t0 is not None
    for e in taken:  # the n-th capture is scheduled at t0 + n * 200 ms, exactly
        assert e.scheduled_ns == t0 + (e.index or 0) * 200_000_000
    late_ms = [((e.fired_ns or 0) - (e.scheduled_ns or 0)) / 1e6 for e in taken]
    assert min(late_ms) >= 0  # never early
    # No cumulative drift: lateness does not grow with n. A loop that slept 200 ms
    # after each capture would be 30 ms (the camera) later for every still taken, ~0.6 s
    # by the end; here the last 20 are no later than the first 20 (allowing for noise).
    first, last = statistics.median(late_ms[:20]), statistics.median(late_ms[-20:])
    assert last - first < 10, (first, last)
    assert max(late_ms) < 100  # bounded by the grace (half an interval), whatever n
    slope_ms_per_slot = statistics.linear_regression(indices, late_ms).slope
    assert abs(slope_ms_per_slot) * 100 < 10
    captured = events.of("capture")
    assert captured and all((e.duration_s or 0) >= 0.03 for e in captured)
    # one still a second is kept (names are per second); the other slots are skips
    status = tl.status()
    assert status.captures_total == len(captured) == len(still_names(tl.folder))
    assert status.captures_total + status.skipped + status.missed >= 100


def test_an_existing_still_is_not_overwritten_and_is_counted(
    tmp_path: Path, stopper: list[Timelapse]
) -> None:
    clock = FakeClock(limit_s=2.5)  # slots at 0, 1 and 2 s
    events = Events(clock)
    tl = make_timelapse(tmp_path, clock, events)
    day = tl.folder / "2026" / "03" / "10"
    day.mkdir(parents=True)
    (day / "143000.jpg").write_bytes(b"an earlier still")
    stopper.append(tl)
    tl.start()
    events.wait_for(lambda ev: len(slots(ev)) >= 3)
    status = tl.stop()
    assert (day / "143000.jpg").read_bytes() == b"an earlier still"
    assert [e.detail for e in slots(events)] == [
        "exists",
        "2026/03/10/143001.jpg",
        "2026/03/10/143002.jpg",
    ]
    assert (status.skipped, status.captures_total, status.captures_today) == (1, 2, 3)
    with Image.open(day / "143001.jpg") as img:
        assert img.format == "JPEG" and img.size == (160, 120)
    assert status.last_capture_file == "2026/03/10/143002.jpg"
    assert not list(tmp_path.rglob(".*tmp*"))  # stills are written atomically


def test_a_reload_restarts_the_interval_from_the_last_still(
    tmp_path: Path, stopper: list[Timelapse]
) -> None:
    clock = FakeClock(limit_s=15)  # slots at 0 and 10 s, then parked before 20
    events = Events(clock)
    tl = make_timelapse(tmp_path, clock, events, interval_s=10.0)
    stopper.append(tl)
    tl.start()
    events.wait_for(lambda ev: len(slots(ev)) >= 2)
    changed = tl.apply(TimelapseSettings(interval_s=3.0, jpeg_quality=50, width=640, height=480))
    assert changed == ["interval_s", "jpeg_quality"]  # the size needs a restart
    events.wait_for(lambda ev: len(slots(ev)) >= 3)
    assert [e.scheduled_ns for e in slots(events)] == [clock.at(0), clock.at(10), clock.at(13)]
    assert tl.status().interval_s == 3.0 and tl.width == 160


# -- storage ------------------------------------------------------------------------------------


def make_days(folder: Path, *days_back: int) -> list[dt.date]:
    days = [DAY - dt.timedelta(days=n) for n in days_back]
    for d in days:
        where = folder / f"{d:%Y/%m/%d}"
        where.mkdir(parents=True, exist_ok=True)
        (where / "120000.jpg").write_bytes(b"x" * 100)
    return days


def test_retention_deletes_the_oldest_whole_days_never_today(
    tmp_path: Path, stopper: list[Timelapse], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(limit_s=0.5)  # one slot, at 0
    events = Events(clock)
    tl = make_timelapse(tmp_path, clock, events, cleanup_enabled=True, retention_days=30)
    days = make_days(tl.folder, 45, 40, 31, 30, 29, 1, 0)
    (tl.folder / "notes").mkdir()
    (tl.folder / "2026" / "02" / "30").mkdir(parents=True)  # not a date: left alone
    stopper.append(tl)
    caplog.set_level(logging.INFO, logger="node_agent.timelapse")
    tl.start()
    events.wait_for(lambda ev: len(ev.of("capture")) >= 1)
    status = tl.stop()
    left = {p.relative_to(tl.folder).as_posix() for p in tl.folder.glob("*/*/*")}
    kept = {f"{d:%Y/%m/%d}" for d in days[4:]}  # 29 and 1 days ago, and today
    assert left == kept | {"2026/02/30"}
    assert (tl.folder / "notes").is_dir()
    assert not (tl.folder / "2026" / "01").exists()  # its only day went; so did the month
    assert status.deleted_days == 4
    assert len(still_names(tl.folder / f"{DAY:%Y/%m/%d}")) == 2  # today's old one and the new
    assert "deleted the stills of 2026-01-24" in caplog.text


def test_clean_up_is_off_by_default(tmp_path: Path) -> None:
    tl = make_timelapse(tmp_path, FakeClock())
    make_days(tl.folder, 400, 0)
    assert tl.clean_now() == []
    assert len(still_names(tl.folder)) == 2
    on = make_timelapse(tmp_path, FakeClock(), cleanup_enabled=True, retention_days=7)
    assert on.clean_now() == [DAY - dt.timedelta(days=400)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for the test (root only), unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("mount(8) is not installed")
    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def fill_to(where: Path, percent: float) -> Path:
    usage = shutil.disk_usage(where)
    filler = where / "filler.bin"
    filler.write_bytes(b"\0" * max(0, int(usage.total * percent / 100) - usage.used))
    return filler


def test_stills_stop_at_the_disk_threshold_and_resume_below_it(
    small_disk: Path, stopper: list[Timelapse], caplog: pytest.LogCaptureFixture
) -> None:
    filler = fill_to(small_disk, 86)
    clock = FakeClock()
    events = Events(clock)
    tl = make_timelapse(
        small_disk,
        clock,
        events,
        width=640,
        height=480,
        jpeg_quality=95,
        directory=small_disk / "timelapse",
    )
    stopper.append(tl)
    tl.start()
    events.wait_for(lambda ev: len([e for e in ev.of("skip") if e.detail == "disk_full"]) >= 3)
    running = tl.status()
    tl.stop()
    kinds = [e.kind if e.kind == "capture" else e.detail for e in slots(events)]
    first_full = kinds.index("disk_full")
    assert first_full >= 1 and "capture" not in kinds[first_full:]  # nothing after the stop line
    assert running.state == TimelapseState.disk_full
    assert running.disk is not None and running.disk.state == DiskState.full
    assert running.disk.used_percent >= 90
    assert running.skipped_disk_full >= 3 and running.failures == 0
    assert running.captures_total == len(still_names(tl.folder)) == first_full
    assert "approaching the 90 % limit" in caplog.text
    assert caplog.text.count("no stills are written") == 1  # once per change, not per slot

    filler.unlink()
    before = running.captures_total
    events2 = Events(clock)
    again = make_timelapse(small_disk, clock, events2, directory=small_disk / "timelapse")
    stopper.append(again)
    again.start()
    events2.wait_for(lambda ev: len(ev.of("capture")) >= 1)
    status = again.stop()
    assert status.disk is not None and status.disk.state == DiskState.ok
    assert len(still_names(tl.folder)) == before + status.captures_total


# -- the camera failing -------------------------------------------------------------------------


class FlakyScript:
    """A camera's life: stills work, then it disconnects and is gone for several reopens."""

    def __init__(self, clock: FakeClock, fail_stills: dict[int, int]) -> None:
        self.clock = clock
        self.fail_stills = fail_stills  # still number -> reopens that fail after it
        self.gone_left = 0
        self.stills = 0
        self.opens: list[int] = []

    def factory(
        self, src: str, w: int, h: int, fps: float, cam: str = "", device: str | None = None
    ) -> CameraBackend:
        return FlakyCamera(self, w, h, fps, cam)


class FlakyCamera(SyntheticCamera):
    """The synthetic camera, failing when its script says so."""

    def __init__(self, script: FlakyScript, w: int, h: int, fps: float, cam: str) -> None:
        super().__init__(w, h, fps, cam)
        self.script = script

    def open(self) -> None:
        self.script.opens.append(self.script.clock.monotonic_ns())
        if self.script.gone_left > 0:
            self.script.gone_left -= 1
            raise CameraError("no camera on the bus")
        super().open()

    def still(self) -> av.VideoFrame:
        n = self.script.stills
        self.script.stills += 1
        if n in self.script.fail_stills:
            self.script.gone_left = self.script.fail_stills[n]
            raise CameraError("camera disconnected")
        return super().still()


def test_reconnect_backoff_is_5_10_20_doubling_to_300_s(
    tmp_path: Path, stopper: list[Timelapse], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(limit_s=3600)
    events = Events(clock)
    # Still 2 fails and the camera is gone for 7 reopens; still 5 fails once more.
    script = FlakyScript(clock, fail_stills={2: 7, 5: 0})
    tl = make_timelapse(tmp_path, clock, events, factory=script.factory, interval_s=60.0)
    stopper.append(tl)
    tl.start()
    events.wait_for(lambda ev: len(ev.of("backoff")) >= 9 and len(ev.of("open")) >= 3)
    tl.stop()
    backoffs = [(t, e) for t, e in events.items if e.kind == "backoff"]
    delays = [e.delay_s or 0 for _, e in backoffs]
    for delay, base in zip(delays[:6], [5, 10, 20, 40, 80, 160], strict=True):
        assert base <= delay < base + 1  # doubling, plus at most 1 s of jitter
    assert delays[6:8] == [300.0, 300.0]  # capped
    assert 5 <= delays[8] < 6  # a still succeeded in between: back to 5 s
    assert [e.failures for _, e in backoffs] == [1, 2, 3, 4, 5, 6, 7, 8, 1]
    # Each reopen came exactly its backoff after the failure (fake time is exact).
    for (failed_at, event), opened_at in zip(backoffs, script.opens[1:], strict=False):
        assert opened_at == failed_at + seconds_to_ns(event.delay_s or 0)
    assert "reopening the camera in 5." in caplog.text
    status = tl.status()
    assert status.failures == 9 and status.missed > 0
    assert status.last_error is not None and "camera disconnected" in status.last_error


def test_gap_tracking_lists_missed_and_late_stills(
    tmp_path: Path, stopper: list[Timelapse], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(limit_s=7.5)
    events = Events(clock)
    script = FlakyScript(clock, fail_stills={1: 0})  # the still at 1 s fails once
    tl = make_timelapse(
        tmp_path, clock, events, factory=script.factory, gap_tracking=True, late_after_s=0.1
    )
    stopper.append(tl)
    tl.start()
    events.wait_for(lambda ev: len(ev.of("capture")) >= 3)  # at 0 s, then 6 and 7 s
    status = tl.stop()
    delay = events.of("backoff")[0].delay_s or 0
    assert 5 < delay < 6  # the camera is back at 1 + delay s: slots 2-5 passed meanwhile
    failed, passed, late = status.gaps
    assert (failed.kind, failed.slots, failed.reason) == (
        "missed",
        1,
        "camera: camera disconnected",
    )
    assert failed.scheduled_ns == clock.wall0_ns + 1 * S
    assert (passed.kind, passed.slots) == ("missed", 4)
    assert passed.scheduled_ns == clock.wall0_ns + 2 * S
    assert passed.reason == "camera: capture failed: camera disconnected"
    # slot 6 was due at 6 s and taken when the camera came back, within half an interval
    assert late.kind == "late" and late.late_ms == pytest.approx((delay - 5) * 1000, abs=0.01)
    assert status.missed == 4 and status.failures == 1
    assert caplog.text.count("timelapse gap:") == 3


def test_a_start_interval_lasts_for_that_run_only(tmp_path: Path, stopper: list[Timelapse]) -> None:
    tl = make_timelapse(tmp_path, FakeClock(limit_s=0.5), interval_s=60.0)
    stopper.append(tl)
    assert tl.start(interval_s=5.0).interval_s == 5.0
    assert tl.stop().running is False
    assert tl.start().interval_s == 60.0


class HangingCamera(SyntheticCamera):
    """A camera whose still() never returns until the camera is closed."""

    def __init__(self, w: int, h: int, fps: float, cam: str) -> None:
        super().__init__(w, h, fps, cam)
        self.released = threading.Event()

    def still(self) -> av.VideoFrame:
        self.released.wait(20)
        raise CameraError("the capture was abandoned")

    def close(self) -> None:
        self.released.set()
        super().close()


def test_a_hung_camera_times_out_and_the_timelapse_goes_on(
    tmp_path: Path, stopper: list[Timelapse]
) -> None:
    made: list[SyntheticCamera] = []

    def factory(
        src: str, w: int, h: int, fps: float, cam: str = "", device: str | None = None
    ) -> CameraBackend:
        camera = HangingCamera(w, h, fps, cam) if not made else SyntheticCamera(w, h, fps, cam)
        made.append(camera)
        return camera

    events = Events()
    tl = make_timelapse(
        tmp_path,
        events=events,
        factory=factory,
        interval_s=0.5,
        capture_timeout_s=0.3,
        backoff_base_s=0.1,
        backoff_max_s=0.2,
    )
    stopper.append(tl)
    t0 = time.monotonic()
    tl.start()
    events.wait_for(lambda ev: len(ev.of("capture")) >= 1, timeout_s=10)
    status = tl.stop()
    failure = events.of("failure")[0]
    assert "did not answer (still) within 0.3 s" in failure.detail
    assert status.captures_total >= 1 and status.failures == 1
    assert time.monotonic() - t0 < 5  # the hang cost one time-out and a short backoff
    assert isinstance(made[0], HangingCamera) and made[0].released.is_set()
    deadline = time.monotonic() + 5
    while any(t.name == "timelapse-still" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the abandoned capture thread never ended"
        time.sleep(0.02)


# -- the camera lock ----------------------------------------------------------------------------


def test_the_timelapse_holds_the_camera_lock_for_its_whole_run(
    tmp_path: Path, stopper: list[Timelapse]
) -> None:
    lock = CameraLock(tmp_path / "camera.lock")
    lock.acquire("recording S1")
    tl = make_timelapse(tmp_path, FakeClock(limit_s=0.5), lock=lock)
    stopper.append(tl)
    with pytest.raises(TimelapseConflict, match="recording S1"):
        tl.start()
    lock.release()

    tl.start()
    with pytest.raises(TimelapseConflict, match="already running"):
        tl.start()
    with pytest.raises(CameraBusy, match="busy: timelapse"):
        lock.acquire("recording S2")  # what the recorder's start meets
    other = CameraLock(tmp_path / "camera.lock")  # another process, in effect
    with pytest.raises(CameraBusy, match=r"timelapse \(pid"):
        other.acquire("a camera tool")
    tl.stop()
    with lock.held("recording S3"):
        assert lock.owner == "recording S3"


# -- render -------------------------------------------------------------------------------------


def test_a_day_of_stills_renders_into_an_mp4_with_one_frame_each(
    tmp_path: Path, stopper: list[Timelapse]
) -> None:
    clock = FakeClock(limit_s=11.5)  # 12 stills: 14:30:00 .. 14:30:11
    events = Events(clock)
    tl = make_timelapse(tmp_path, clock, events)
    stopper.append(tl)
    tl.start()
    events.wait_for(lambda ev: len(ev.of("capture")) >= 12)
    tl.stop()
    day = tl.folder / f"{DAY:%Y/%m/%d}"
    (day / "235959.jpg").write_bytes(b"not a jpeg")  # a damaged still is left out
    video = tl.render(DAY, 6.0)
    assert (video.frames, video.skipped_stills, video.width, video.height) == (12, 1, 160, 120)
    assert video.duration_s == 2.0 and video.file_name == "videos/timelapse_CAM_T_20260310.mp4"
    path = tl.folder / video.file_name
    assert path.stat().st_size == video.size_bytes
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 6
        assert sum(1 for _ in container.decode(video=0)) == 12
    assert tl.status().last_video == video
    with pytest.raises(NoStills, match="2026-03-09"):
        tl.render(DAY - dt.timedelta(days=1), 6.0)


# -- routes and metrics -------------------------------------------------------------------------


class Api:
    """The timelapse router in an app of its own, called through httpx's ASGI transport."""

    def __init__(self, tl: Timelapse) -> None:
        self.app = FastAPI()
        install_error_handlers(self.app, AgentError)
        self.app.include_router(make_router(tl))

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://agent") as c:
                return await c.request(method, url, **kwargs)  # type: ignore[arg-type]

        return asyncio.run(go())

    def get(self, url: str) -> httpx.Response:
        return self.request("GET", url)

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", url, **kwargs)


def test_routes_answer_bad_input_with_a_readable_4xx(
    tmp_path: Path, stopper: list[Timelapse]
) -> None:
    tl = make_timelapse(tmp_path, interval_s=0.2)
    stopper.append(tl)
    client = Api(tl)
    if True:
        none_yet = client.get("/api/v1/timelapse/latest.jpg")
        assert none_yet.status_code == 404 and "no timelapse still yet" in none_yet.json()["detail"]
        assert client.post("/api/v1/timelapse/start", json={"intervall_s": 1}).status_code == 422
        assert client.post("/api/v1/timelapse/start", json={"interval_s": 0}).status_code == 422
        started = client.post("/api/v1/timelapse/start")
        assert started.status_code == 200 and started.json()["running"] is True
        again = client.post("/api/v1/timelapse/start", json={})
        assert again.status_code == 409
        assert again.json() == {
            "detail": "the timelapse is already running; stop it first "
            "(POST /api/v1/timelapse/stop) to start it again",
            "code": "timelapse_conflict",
        }
        deadline = time.monotonic() + 10
        while client.get("/api/v1/timelapse").json()["captures_total"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        latest = client.get("/api/v1/timelapse/latest.jpg")
        assert latest.status_code == 200 and latest.headers["content-type"] == "image/jpeg"
        assert latest.content[:2] == b"\xff\xd8"

        bad_day = client.post("/api/v1/timelapse/render", json={"day": "2026-02-30"})
        assert bad_day.status_code == 422
        assert "2026-02-30 is not a calendar day" in bad_day.json()["detail"]
        assert client.post("/api/v1/timelapse/render", json={"day": "today"}).status_code == 422
        no_fps = client.post("/api/v1/timelapse/render", json={"day": "2026-01-01", "fps": 0})
        assert no_fps.status_code == 422 and "fps" in no_fps.json()["detail"]
        empty = client.post("/api/v1/timelapse/render", json={"day": "1999-01-01"})
        assert empty.status_code == 404
        assert empty.json()["detail"] == "no timelapse stills for 1999-01-01 on this node"

        stopped = client.post("/api/v1/timelapse/stop")
        assert stopped.status_code == 200 and stopped.json()["running"] is False
        assert client.post("/api/v1/timelapse/stop").status_code == 200  # idempotent
        today = dt.date.today().isoformat()
        rendered = client.post("/api/v1/timelapse/render", json={"day": today, "fps": 2})
        assert rendered.status_code == 200, rendered.text
        assert client.get("/api/v1/timelapse").json()["last_video"] == rendered.json()


def test_metrics_pass_promtool(tmp_path: Path, stopper: list[Timelapse]) -> None:
    clock = FakeClock(limit_s=1.5)
    events = Events(clock)
    tl = make_timelapse(tmp_path, clock, events)
    stopper.append(tl)
    tl.start()
    events.wait_for(lambda ev: len(ev.of("capture")) >= 2)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TimelapseCollector(tl.status, "node-t", "CAM_T"))
    text = generate_latest(registry).decode()
    tl.stop()
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (apt-get install prometheus; .ci/run does it)")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ids = 'cam_id="CAM_T",node="node-t"'
    assert f"camfleet_timelapse_running{{{ids}}} 1.0" in text
    assert f"camfleet_timelapse_captures_total{{{ids}}} 2.0" in text
    assert f'camfleet_timelapse_skipped_total{{{ids},reason="exists"}} 0.0' in text
    assert f"camfleet_timelapse_failures_total{{{ids}}} 0.0" in text
    values = {m.name: s.value for m in text_string_to_metric_families(text) for s in m.samples}
    assert values["camfleet_timelapse_last_capture_timestamp_seconds"] == (clock.wall0_ns + S) / S
    assert values["camfleet_timelapse_interval_seconds"] == 1.0


def test_fan_out_tells_every_observer_even_after_one_that_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    told: list[tuple[str, str]] = []

    def broken(event: TimelapseEvent) -> None:
        raise RuntimeError("an observer's bug")

    both = fan_out(
        lambda e: told.append(("a", e.kind)), broken, lambda e: told.append(("b", e.kind))
    )
    with caplog.at_level(logging.ERROR):
        both(TimelapseEvent("capture"))
    assert told == [("a", "capture"), ("b", "capture")]
    assert "an observer's bug" in caplog.text
