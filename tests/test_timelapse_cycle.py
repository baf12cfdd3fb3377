"""The daily timelapse cycle: the day's window (pure), and whole days on a fake clock.

The days run with the synthetic camera writing real stills (160x120), the real renderer
in its low-priority child process (PyAV), and the real backup (rsync over ssh to a
throwaway sshd on loopback); only time is fake, so a day takes about a second.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from node_agent.camera.lock import CameraLock
from node_agent.camera.protocol import CameraError
from node_agent.camera.synthetic import SyntheticCamera
from node_agent.clock import SystemClock
from node_agent.config.service import _invalid as config_invalid
from node_agent.dashcam.settings import UploadSettings
from node_agent.naming import video_name
from node_agent.settings import AgentSettings, load_agent_settings
from node_agent.timelapse import storage
from node_agent.timelapse.backup import RsyncBackup
from node_agent.timelapse.cycle import (
    BACKUP_FAILED,
    VIDEO_CREATED,
    VIDEO_CREATION_FAILED,
    DailyCycle,
)
from node_agent.timelapse.dayplan import POLAR_DAY, POLAR_NIGHT, day_plan, expected_photos
from node_agent.timelapse.errors import TimelapseFailure
from node_agent.timelapse.metrics import TimelapseCollector
from node_agent.timelapse.render import render_in_child
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.schemas import CycleState
from node_agent.timelapse.settings import TimelapseSettings
from tests.notify_receiver import Receiver
from tests.solo_agent import solo_agent
from tests.sshd import Sshd, running_sshd, upload_settings
from tests.waiting import wait_for

S = 1_000_000_000


def plan_settings(**values: Any) -> TimelapseSettings:
    return TimelapseSettings.model_validate(values)


# -- the day's window (pure) -------------------------------------------------------------------

# Published sunrise and sunset (local clock time, HH:MM) for a few places and days.
SUN_TABLE = [
    # London, midsummer and midwinter
    (51.5074, -0.1278, "Europe/London", dt.date(2026, 6, 21), "04:43", "21:21"),
    (51.5074, -0.1278, "Europe/London", dt.date(2026, 12, 21), "08:04", "15:53"),
    # Sydney, New Year's Day (southern summer, UTC+11)
    (-33.8688, 151.2093, "Australia/Sydney", dt.date(2026, 1, 1), "05:47", "20:09"),
    # New York on the day its clocks spring forward (sunrise already in EDT)
    (40.7128, -74.0060, "America/New_York", dt.date(2026, 3, 8), "07:19", "18:55"),
]


def _minutes(t: dt.datetime) -> float:
    return t.hour * 60 + t.minute + t.second / 60


@pytest.mark.parametrize(("lat", "lon", "tz", "day", "rise", "fall"), SUN_TABLE)
def test_the_sun_window_matches_published_sunrise_and_sunset_within_a_minute(
    lat: float, lon: float, tz: str, day: dt.date, rise: str, fall: str
) -> None:
    s = plan_settings(window="sun", latitude=lat, longitude=lon, timezone=tz, interval_s=60)
    plan = day_plan(day, s)
    assert plan.start is not None and plan.end is not None
    assert plan.start.date() == day == plan.end.date()
    for got, published in ((plan.start, rise), (plan.end, fall)):
        hh, mm = map(int, published.split(":"))
        # published times are rounded to the minute: within a minute of hh:mm(:30)
        assert abs(_minutes(got) - (hh * 60 + mm + 0.5)) <= 1.0, (got, published)
    assert plan.expected_photos == expected_photos(plan.start, plan.end, 60)
    assert plan.today_fields()["start_time"] == f"{plan.start:%H:%M:%S}"


def test_offsets_move_the_sun_window() -> None:
    base = dict(window="sun", latitude=51.5074, longitude=-0.1278, timezone="Europe/London")
    plain = day_plan(dt.date(2026, 6, 21), plan_settings(**base))
    moved = day_plan(
        dt.date(2026, 6, 21),
        plan_settings(**base, sunrise_offset_min=30, sunset_offset_min=-45),
    )
    assert plain.start is not None and moved.start is not None
    assert plain.end is not None and moved.end is not None
    assert abs((moved.start - plain.start).total_seconds() - 30 * 60) <= 1
    assert abs((moved.end - plain.end).total_seconds() + 45 * 60) <= 1


def test_polar_day_captures_the_whole_day_and_polar_night_nothing() -> None:
    tromso = dict(window="sun", latitude=69.65, longitude=18.96, timezone="Europe/Oslo")
    summer = day_plan(dt.date(2026, 6, 21), plan_settings(**tromso, interval_s=60))
    assert summer.note == POLAR_DAY and summer.captures
    assert summer.start is not None and summer.end is not None
    assert (summer.start.hour, summer.start.minute) == (0, 0)
    assert summer.end.date() == dt.date(2026, 6, 22) and summer.end.hour == 0
    assert summer.expected_photos == 24 * 60
    winter = day_plan(dt.date(2026, 12, 21), plan_settings(**tromso, interval_s=60))
    assert winter.note == POLAR_NIGHT and not winter.captures
    assert winter.expected_photos == 0 and winter.start is None
    assert winter.today_fields() == {
        "date": "2026-12-21",
        "expected_photos": 0,
        "start_time": None,
        "end_time": None,
        "interval_seconds": 60.0,
    }


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        (dt.date(2026, 3, 28), 4),  # an ordinary night
        (dt.date(2026, 3, 29), 3),  # 02:00 -> 03:00: an hour less
        (dt.date(2026, 10, 25), 5),  # 03:00 -> 02:00: an hour more
    ],
)
def test_a_fixed_window_across_a_clock_change_is_as_long_as_it_really_is(
    day: dt.date, hours: int
) -> None:
    s = plan_settings(
        window="fixed", start_time="01:00", end_time="05:00", timezone="Europe/Berlin"
    )
    plan = day_plan(day, s)
    assert plan.start is not None and plan.end is not None
    assert (plan.end.timestamp() - plan.start.timestamp()) == hours * 3600
    assert plan.expected_photos == hours * 60
    assert plan.today_fields()["start_time"] == "01:00:00"
    assert plan.today_fields()["end_time"] == "05:00:00"


@pytest.mark.parametrize(
    ("interval_s", "expected"),
    [(60, 10), (600, 1), (420, 2), (599, 2), (601, 1), (0.5, 1200), (7, 86)],
)
def test_expected_photos_count_the_slots_before_the_end(interval_s: float, expected: int) -> None:
    s = plan_settings(window="fixed", start_time="10:00", end_time="10:10", interval_s=interval_s)
    assert day_plan(dt.date(2026, 5, 4), s).expected_photos == expected


def test_no_window_plans_nothing() -> None:
    plan = day_plan(dt.date(2026, 5, 4), plan_settings())
    assert not plan.captures and plan.expected_photos == 0 and plan.window == "none"


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"window": "sun"}, ["timelapse.latitude", "timelapse.longitude"]),
        ({"window": "sun", "latitude": 50}, ["timelapse.longitude"]),
        ({"window": "fixed", "start_time": "07:00"}, ["timelapse.end_time"]),
        (
            {"window": "fixed", "start_time": "18:00", "end_time": "07:00"},
            ["timelapse.end_time", "timelapse.start_time"],
        ),
        ({"timezone": "Mars/Olympus"}, ["timelapse.timezone"]),
        ({"window": "fixed", "start_time": "25:00", "end_time": "26:00"}, ["start_time"]),
    ],
)
def test_window_settings_are_refused_naming_the_keys(
    values: dict[str, Any], names: list[str]
) -> None:
    with pytest.raises(ValidationError) as err:
        AgentSettings.model_validate({"timelapse": values})
    text = str(err.value)
    for name in names:
        assert name in text, text
    # what PUT /api/v1/config answers with it: a 422 naming the same keys
    refusal = config_invalid(err.value)
    assert refusal.status_code == 422
    for name in names:
        assert name in refusal.message, refusal.message


DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_the_agent_example_loads_with_and_without_its_window_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (DEPLOY / "agent.example.yaml").read_text()
    monkeypatch.setenv("CAMFLEET_FLEET_TOKEN", "a-fleet-token-for-the-example-test")
    monkeypatch.setenv("CAMFLEET_AGENT_CONFIG", str(DEPLOY / "agent.example.yaml"))
    assert load_agent_settings().timelapse.window == "none"
    # switched on: the window's commented lines as a user would uncomment them
    lines = []
    for line in text.splitlines():
        for key in ("latitude", "longitude", "timezone", "backup", "host", "user"):
            if line.lstrip().startswith(f"# {key}:") and line.startswith("  #"):
                line = line.replace("# ", "", 1)
        if line.lstrip().startswith(("#   dest_path", "#   ssh_key")):
            line = line.replace("#", " ", 1)
        lines.append(line.replace("window: none ", "window: sun  "))
    on = tmp_path / "agent.yaml"
    on.write_text("\n".join(lines))
    monkeypatch.setenv("CAMFLEET_AGENT_CONFIG", str(on))
    tl = load_agent_settings().timelapse
    assert (tl.window, tl.latitude, tl.longitude, tl.timezone) == (
        "sun",
        52.52,
        13.405,
        "Europe/Berlin",
    )
    assert tl.backup is not None and tl.backup.dest_path == "/data/timelapse"
    assert day_plan(dt.date(2026, 6, 21), tl).expected_photos > 900


# -- whole days on a fake clock ----------------------------------------------------------------


class DayClock:
    """Wall and monotonic clocks that jump to each deadline at once.

    Only one thread waits on it at a time (the cycle, or the capture run while the cycle
    waits on the run's thread). A wait past ``park_at`` parks until the event is set.
    """

    def __init__(self, wall: dt.datetime, park_at: dt.datetime) -> None:
        self.start_ns = 10**12
        self.now_ns = self.start_ns
        self.wall0_ns = int(wall.timestamp() * S)
        self.park_ns = int(park_at.timestamp() * S)
        self.parked = threading.Event()

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
        if self.time_ns() + step > self.park_ns:
            self.parked.set()
            return event.wait()
        self.now_ns += step
        time.sleep(0)
        return event.is_set()


class Recorder:
    """``publish`` and ``on_event`` for the tests: everything they were told, in order."""

    def __init__(self, clock: DayClock | None = None) -> None:
        self.clock = clock
        self.published: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str]] = []

    def publish(
        self,
        *,
        status: str,
        today: dict[str, Any] | None,
        last_video: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        at = None if self.clock is None else self.clock.time_ns()
        self.published.append(
            {"status": status, "today": today, "last_video": last_video, "error": error, "at": at}
        )

    def on_event(self, kind: str, message: str, level: str) -> None:
        self.events.append((kind, message, level))

    def states(self) -> list[str]:
        out: list[str] = []
        for p in self.published:
            if not out or out[-1] != p["status"]:
                out.append(p["status"])
        return out


def local(day: dt.date, hh: int, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm, ss)).astimezone()


DAY1 = dt.date(2026, 5, 4)
DAY2 = DAY1 + dt.timedelta(days=1)


def make_cycle(
    tmp_path: Path,
    clock: DayClock | SystemClock,
    rec: Recorder,
    backup: Any = None,
    factory: Any = None,
    **values: Any,
) -> tuple[Timelapse, DailyCycle]:
    settings = TimelapseSettings.model_validate(
        {"window": "fixed", "start_time": "10:00", "end_time": "10:10", "interval_s": 60} | values
    )
    timelapse = Timelapse(
        settings,
        source="synthetic",
        camera_width=160,
        camera_height=120,
        camera_fps=30.0,
        cam_id="CAM_T",
        data_dir=tmp_path,
        lock=CameraLock(tmp_path / "camera.lock"),
        clock=clock,
        rng=random.Random(1),
        **({"backend_factory": factory} if factory else {}),
    )
    cycle = DailyCycle(
        timelapse,
        lambda: timelapse.settings,
        clock,
        publish=rec.publish,
        on_event=rec.on_event,
        backup=backup,
    )
    timelapse.cycle = cycle
    return timelapse, cycle


@pytest.fixture
def cycles() -> Iterator[list[DailyCycle]]:
    started: list[DailyCycle] = []
    yield started
    for c in started:
        c.stop()


def run_until_parked(cycle: DailyCycle, clock: DayClock, started: list[DailyCycle]) -> None:
    started.append(cycle)
    cycle.start()
    assert clock.parked.wait(60), f"the cycle did not reach the park time; at {cycle.state}"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_whole_day_waits_captures_renders_backs_up_and_rests(
    tmp_path: Path, sshd: Sshd, cycles: list[DailyCycle]
) -> None:
    nas = tmp_path / "nas"
    nas.mkdir()
    target = upload_settings(sshd, nas)
    clock = DayClock(local(DAY1, 9, 55), park_at=local(DAY2, 9, 0))
    rec = Recorder()
    backup = RsyncBackup(target, data_dir=tmp_path, cam_id="CAM_T")
    timelapse, cycle = make_cycle(tmp_path, clock, rec, backup=backup)
    run_until_parked(cycle, clock, cycles)

    assert rec.states() == [
        "waiting",
        "capturing",
        "creating_video",
        "backing_up",
        "idle",
        "waiting",
    ]
    first = rec.published[0]
    assert first["today"] == {
        "date": DAY1.isoformat(),
        "expected_photos": 10,
        "start_time": "10:00:00",
        "end_time": "10:10:00",
        "interval_seconds": 60.0,
    }
    # the stills: one per slot of the window, none at or after its end
    stills = storage.day_stills(timelapse.folder, DAY1)
    assert [p.name for p in stills] == [f"10{m:02d}00.jpg" for m in range(10)]
    # the video: really rendered, one frame per still
    video = timelapse.folder / "videos" / "timelapse_CAM_T_20260504.mp4"
    assert frames_in(video) == len(stills) == 10
    idle = next(p for p in rec.published if p["status"] == "idle")
    assert idle["last_video"] == {
        "date": DAY1.isoformat(),
        "filename": video.name,
        "duration_seconds": round(10 / 24, 3),
        "photos_used": 10,
        "backed_up": True,
    }
    # the NAS holds the same bytes
    copy = nas / "CAM_T" / "videos" / video.name
    assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(video.read_bytes()).digest()
    assert [e[0] for e in rec.events] == [VIDEO_CREATED, "backup_done"]
    # the next day is planned and waited for
    assert rec.published[-1]["today"]["date"] == DAY2.isoformat()
    status = timelapse.status()
    assert status.cycle is not None and status.cycle.state == CycleState.waiting
    assert status.cycle.today is not None and status.cycle.today.expected_photos == 10
    assert status.cycle.last_video_backed_up is True
    assert status.cycle.last_render_cpu_s is not None and status.cycle.last_render_cpu_s > 0
    assert status.last_video is not None and status.last_video.frames == 10
    assert not timelapse.running  # the camera is given back outside the window


def test_a_failed_render_ends_the_day_in_error_and_the_next_day_runs(
    tmp_path: Path, cycles: list[DailyCycle]
) -> None:
    clock = DayClock(local(DAY1, 9, 59), park_at=local(DAY2 + dt.timedelta(days=1), 9, 0))
    rec = Recorder()
    timelapse, cycle = make_cycle(tmp_path, clock, rec, end_time="10:03")
    blocker = timelapse.folder / "videos"
    timelapse.folder.mkdir(parents=True)
    blocker.write_text("a file where the videos folder goes")

    def on_event(kind: str, message: str, level: str) -> None:
        rec.on_event(kind, message, level)
        if kind == VIDEO_CREATION_FAILED:
            assert cycle.state == CycleState.error
            blocker.unlink()  # someone fixes it; the next day's video must work

    cycle._on_event = on_event
    run_until_parked(cycle, clock, cycles)

    kinds = [(k, level) for k, _, level in rec.events]
    assert kinds == [(VIDEO_CREATION_FAILED, "ERROR"), (VIDEO_CREATED, "INFO")]
    reason = rec.events[0][1]
    assert "2026-05-04" in reason and "videos folder" in reason, reason
    errors = [p for p in rec.published if p["status"] == "error"]
    assert errors and errors[0]["error"] == reason
    assert rec.states() == [
        "waiting", "capturing", "creating_video", "error",
        "waiting", "capturing", "creating_video", "idle",
        "waiting",
    ]  # fmt: skip
    assert frames_in(timelapse.folder / "videos" / "timelapse_CAM_T_20260505.mp4") == 3


def test_a_failed_backup_ends_the_day_in_error_and_the_next_day_runs(
    tmp_path: Path, cycles: list[DailyCycle]
) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("not a key; ssh never gets that far\n")
    key.chmod(0o600)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = upload_settings_for(key, port, tmp_path / "nas")
    backup = RsyncBackup(target, data_dir=tmp_path, cam_id="CAM_T")
    clock = DayClock(local(DAY1, 9, 59), park_at=local(DAY2, 10, 30))
    rec = Recorder()
    timelapse, cycle = make_cycle(tmp_path, clock, rec, backup=backup, end_time="10:02")
    run_until_parked(cycle, clock, cycles)

    assert rec.states() == [
        "waiting", "capturing", "creating_video", "backing_up", "error",
        "waiting", "capturing", "creating_video", "backing_up", "error",
    ]  # fmt: skip
    failed = [m for k, m, _ in rec.events if k == BACKUP_FAILED]
    assert len(failed) == 2 and "cannot reach the backup target" in failed[0], failed
    last = rec.published[-1]
    assert last["last_video"]["backed_up"] is False
    assert last["last_video"]["date"] == DAY2.isoformat()
    status = timelapse.status()
    assert status.cycle is not None and status.cycle.error == failed[1]
    assert status.cycle.last_video_backed_up is False


class UnpluggedCamera(SyntheticCamera):
    """A camera that is never there: every open fails."""

    def open(self) -> None:
        raise CameraError("no camera on the CSI port")


def unplugged(
    source: str, width: int, height: int, fps: float, cam_id: str = "", *, device: object = None
) -> UnpluggedCamera:
    return UnpluggedCamera(width, height, fps, cam_id)


def test_a_day_without_a_camera_ends_at_the_window_and_in_error(
    tmp_path: Path, cycles: list[DailyCycle]
) -> None:
    clock = DayClock(local(DAY1, 9, 59), park_at=local(DAY2, 9, 0))
    rec = Recorder(clock)
    timelapse, cycle = make_cycle(
        tmp_path, clock, rec, factory=unplugged, end_time="10:30", backoff_max_s=3600
    )
    run_until_parked(cycle, clock, cycles)
    # The reopen backoff (5, 10, ... 1280 s) runs past 10:30; the run still ends there.
    assert rec.states() == ["waiting", "capturing", "creating_video", "error", "waiting"]
    rendering = next(p for p in rec.published if p["status"] == "creating_video")
    assert rendering["at"] == int(local(DAY1, 10, 30).timestamp()) * S
    status = timelapse.status()
    assert not status.running and status.failures >= 5
    assert status.last_error is not None and "no camera on the CSI port" in status.last_error
    assert [(k, lvl) for k, _, lvl in rec.events] == [(VIDEO_CREATION_FAILED, "ERROR")]
    assert "no timelapse stills for 2026-05-04" in rec.events[0][1]


def upload_settings_for(key: Path, port: int, dest: Path) -> UploadSettings:
    known = key.parent / "known_hosts"
    known.touch()
    return UploadSettings.model_validate(
        {
            "host": "127.0.0.1",
            "user": "nobody",
            "port": port,
            "dest_path": str(dest),
            "ssh_key": key,
            "known_hosts": known,
            "connect_timeout_s": 2.0,
        }
    )


def test_a_sun_window_day_takes_the_stills_it_expected(
    tmp_path: Path, cycles: list[DailyCycle]
) -> None:
    clock = DayClock(local(DAY1, 0, 30), park_at=local(DAY2, 0, 30))
    rec = Recorder()
    timelapse, cycle = make_cycle(
        tmp_path,
        clock,
        rec,
        window="sun",
        latitude=51.5074,
        longitude=-0.1278,
        interval_s=1800,
    )
    run_until_parked(cycle, clock, cycles)
    today = rec.published[0]["today"]
    plan = day_plan(DAY1, timelapse.settings)
    assert plan.start is not None and plan.end is not None
    assert today["start_time"] == f"{plan.start:%H:%M:%S}"
    assert today["end_time"] == f"{plan.end:%H:%M:%S}"
    stills = storage.day_stills(timelapse.folder, DAY1)
    assert len(stills) == today["expected_photos"] == plan.expected_photos > 20
    assert rec.states()[:4] == ["waiting", "capturing", "creating_video", "idle"]
    first = dt.datetime.strptime(stills[0].stem, "%H%M%S").time()
    assert first == plan.start.astimezone().time()


def test_a_restart_after_the_window_renders_the_day_it_missed(
    tmp_path: Path, cycles: list[DailyCycle]
) -> None:
    # a day captured earlier (by a run that crashed before its video)
    clock = DayClock(local(DAY1, 9, 59), park_at=local(DAY1, 10, 1, 30))
    rec = Recorder()
    timelapse, cycle = make_cycle(tmp_path, clock, rec, end_time="10:02")
    run_until_parked(cycle, clock, cycles)
    cycle.stop()
    assert len(storage.day_stills(timelapse.folder, DAY1)) == 2
    # the agent comes back at 18:00
    later = DayClock(local(DAY1, 18, 0), park_at=local(DAY2, 9, 0))
    rec2 = Recorder()
    timelapse2, cycle2 = make_cycle(tmp_path, later, rec2, end_time="10:02")
    run_until_parked(cycle2, later, cycles)
    assert rec2.states() == ["creating_video", "idle", "waiting"]
    assert frames_in(timelapse2.folder / "videos" / "timelapse_CAM_T_20260504.mp4") == 2


def test_the_metrics_show_the_running_cycles_expected_and_taken_stills(
    tmp_path: Path, cycles: list[DailyCycle]
) -> None:
    # halfway through the 10:00-10:10 window at one still a minute: 6 of 10 taken
    clock = DayClock(local(DAY1, 9, 59), park_at=local(DAY1, 10, 5, 30))
    timelapse, cycle = make_cycle(tmp_path, clock, Recorder())
    run_until_parked(cycle, clock, cycles)
    status = timelapse.status()  # what the agent's /metrics and status file read
    assert status.cycle is not None and status.cycle.state == CycleState.capturing
    assert status.cycle.today is not None and status.cycle.today.expected_photos == 10
    assert status.captures_today == len(storage.day_stills(timelapse.folder, DAY1)) == 6
    registry = CollectorRegistry()
    registry.register(TimelapseCollector(timelapse.status, "node-t", "CAM_T"))
    text = generate_latest(registry).decode()
    ids = 'cam_id="CAM_T",node="node-t"'
    assert f"camfleet_timelapse_photos_expected_today{{{ids}}} 10.0" in text, text
    assert f"camfleet_timelapse_photos_today{{{ids}}} 6.0" in text, text
    assert f"camfleet_timelapse_running{{{ids}}} 1.0" in text, text


def test_no_capture_window_leaves_the_expected_stills_out_of_the_metrics(tmp_path: Path) -> None:
    clock = DayClock(local(DAY1, 9, 59), park_at=local(DAY2, 9, 0))
    timelapse, _ = make_cycle(tmp_path, clock, Recorder())
    timelapse.cycle = None  # a timelapse without a window has no daily cycle
    registry = CollectorRegistry()
    registry.register(TimelapseCollector(timelapse.status, "node-t", "CAM_T"))
    text = generate_latest(registry).decode()
    assert "camfleet_timelapse_photos_expected_today{" not in text
    assert 'camfleet_timelapse_photos_today{cam_id="CAM_T",node="node-t"} 0.0' in text


def test_the_render_child_runs_niced_with_one_thread(tmp_path: Path) -> None:
    folder = tmp_path / "timelapse"
    day_dir = folder / "2026" / "05" / "04"
    day_dir.mkdir(parents=True)
    for i in range(12):
        Image.new("RGB", (64, 48), (i * 20, 90, 200 - i * 10)).save(day_dir / f"1000{i:02d}.jpg")
    ours = os.nice(0)
    done = render_in_child(folder, DAY1, 24, "CAM_T", nice=5, threads=1)
    assert done.video.frames == 12 and done.cpu_s > 0
    assert frames_in(folder / done.video.file_name) == 12
    assert done.niceness == min(19, ours + 5)  # the child's, not this process's
    assert os.nice(0) == ours
    # a day without stills: the child's own reason comes back
    with pytest.raises(TimelapseFailure, match="no timelapse stills for 2026-05-06"):
        render_in_child(folder, dt.date(2026, 5, 6), 24, "CAM_T")


# -- in a real agent process -------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_started_by_hand_before_the_window_becomes_the_window_s_run(
    tmp_path: Path, cycles: list[DailyCycle]
) -> None:
    # On the real clock (two threads wait on it: the run and the cycle), a window of 3 s
    # opening 2 s after a start by hand at a still a second.
    now = dt.datetime.now().astimezone()
    start = (now + dt.timedelta(seconds=3)).replace(microsecond=0)
    end = start + dt.timedelta(seconds=3)
    if end.date() != now.date():
        pytest.skip("too close to midnight for a window of today")
    rec = Recorder()
    timelapse, cycle = make_cycle(
        tmp_path,
        SystemClock(),
        rec,
        start_time=f"{start:%H:%M:%S}",
        end_time=f"{end:%H:%M:%S}",
        interval_s=1,
    )
    timelapse.start()  # by hand, before the window
    cycles.append(cycle)
    cycle.start()
    wait_for("the day's video", lambda: rec.states()[-1:] == ["idle"], timeout_s=60)
    assert rec.states() == ["waiting", "capturing", "creating_video", "idle"]
    assert not timelapse.running  # ended with the window: the camera is free again
    stills = storage.day_stills(timelapse.folder, start.date())
    taken = [dt.datetime.combine(start.date(), dt.time.fromisoformat(
        f"{p.stem[:2]}:{p.stem[2:4]}:{p.stem[4:6]}")).astimezone() for p in stills]  # fmt: skip
    assert taken[0] < start, "the stills taken before the window are the day's too"
    # no slot at or after the end: at most the slots from the start by hand to the end
    assert len(stills) <= (end - now).total_seconds() + 1
    video = timelapse.folder / video_name("CAM_T", start.date())
    assert frames_in(video) == len(stills)
    assert [k for k, _, _ in rec.events] == [VIDEO_CREATED]


def test_an_agent_with_a_window_runs_its_day_and_shows_it_in_the_status(
    tmp_path: Path,
) -> None:
    now = dt.datetime.now().astimezone()
    # An agent takes 2 s to come up on an idle machine, 9 s beside the full suite.
    start = now + dt.timedelta(seconds=10)
    end = start + dt.timedelta(seconds=3)
    if end.date() != now.date():
        pytest.skip("too close to midnight for a window of today")
    receiver = Receiver()
    env = {
        "CAMFLEET_STATUS_FILE": str(tmp_path / "run" / "status.json"),
        "CAMFLEET_NOTIFICATIONS__WEBHOOK_URL": f"{receiver.url}/hook",
        "CAMFLEET_NOTIFICATIONS__MIN_LEVEL": "INFO",  # the spec's optional "Video created"
        "CAMFLEET_TIMELAPSE__WINDOW": "fixed",
        "CAMFLEET_TIMELAPSE__START_TIME": f"{start:%H:%M:%S}",
        "CAMFLEET_TIMELAPSE__END_TIME": f"{end:%H:%M:%S}",
        "CAMFLEET_TIMELAPSE__INTERVAL_S": "1",
    }
    with receiver, solo_agent(tmp_path, **env) as agent:
        up_in_time = dt.datetime.now().astimezone() < start - dt.timedelta(seconds=0.5)
        seen: list[str] = []
        deadline = time.monotonic() + 60
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = agent.client.get("/api/v1/timelapse").json()
            state = body["cycle"]["state"]
            if not seen or seen[-1] != state:
                seen.append(state)
            if state == "idle" and body["last_video"] is not None:
                break
            time.sleep(0.05)
        assert "capturing" in seen and seen[-1] == "idle", seen
        today = body["cycle"]["today"]
        assert (today["start_time"], today["end_time"]) == (
            f"{start:%H:%M:%S}",
            f"{end:%H:%M:%S}",
        )
        assert today["expected_photos"] == 3
        # On the real clock a loaded machine may open the camera late and lose a slot;
        # the exact count is the fake-clock tests' business.
        assert 1 <= body["last_video"]["frames"] == body["captures_today"] <= 3
        if up_in_time:
            assert seen[0] == "waiting", seen
        assert body["cycle"]["last_render_cpu_s"] > 0
        assert not body["running"]
        # The cycle's steps and the captures reach the status file (served as /status)...
        doc = agent.client.get("/status").json()
        assert doc["status"] == "idle" and doc["device_id"] == "cam-c"
        assert doc["today"]["expected_photos"] == 3
        assert doc["today"]["photos_captured"] == body["captures_today"]
        assert doc["last_capture"]["success"] is True
        video = body["last_video"]["file_name"]
        assert doc["last_video"]["filename"] == Path(video).name
        assert doc["last_video"]["photos_used"] == body["captures_today"]
        # ...and the video made is told to the webhook, once.
        (told,) = receiver.wait_for(1, timeout_s=20)
        assert told.path == "/hook" and told.body["level"] == "INFO"
        assert told.body["device_id"] == "cam-c"
        assert told.body["message"].startswith(f"timelapse video {video}:"), told.body
