"""Timelapse pure parts: schedule, backoff, names, retention plan, disk state, reload plan."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from node_agent.backoff import backoff_s
from node_agent.naming import still_path
from node_agent.settings import AgentSettings
from node_agent.timelapse.reload import flatten, plan_reload
from node_agent.timelapse.schedule import next_capture_time
from node_agent.timelapse.schemas import DiskState, TimelapseRenderRequest
from node_agent.timelapse.settings import TimelapseSettings, fit_within
from node_agent.timelapse.storage import DayUsage, disk_state, plan_day_deletions

S = 1_000_000_000

# -- schedule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "after", "grace", "expected"),
    [
        (1000, -1, 0, (0, 1000, 0)),  # the first slot is due at once
        (1000 + 3, 0, 0, (1, 1000 + 60, 0)),  # right after slot 0: slot 1
        (1000 + 60, 0, 0, (1, 1060, 0)),  # exactly on time
        (1000 + 61, 0, 0, (2, 1120, 1)),  # 1 ns past slot 1 with no grace: missed
        (1000 + 61, 0, 30, (1, 1060, 0)),  # within grace: taken late
        (1000 + 200, 0, 30, (3, 1180, 2)),  # slots 1 and 2 passed; 3 is 20 late, within grace
        (1000 + 200, 5, 30, (6, 1360, 0)),  # never an earlier slot than after + 1
        (500, -1, 0, (0, 1000, 0)),  # before t0: slot 0 at t0
    ],
)
def test_next_capture_time_table(
    now: int, after: int, grace: int, expected: tuple[int, int, int]
) -> None:
    slot = next_capture_time(1000, 60, now, after, grace)
    assert (slot.index, slot.at_ns, slot.missed) == expected


@settings(max_examples=500, deadline=None)
@given(
    t0=st.integers(0, 10**15),
    interval=st.integers(1, 10**12),
    elapsed=st.integers(-(10**12), 10**14),
    after=st.integers(-1, 10**6),
    grace_frac=st.floats(0, 0.99),
)
def test_next_capture_time_properties(
    t0: int, interval: int, elapsed: int, after: int, grace_frac: float
) -> None:
    grace = int(interval * grace_frac)
    now = t0 + elapsed
    slot = next_capture_time(t0, interval, now, after, grace)
    assert slot.at_ns == t0 + slot.index * interval  # always on the grid: no drift
    assert slot.index > after
    assert slot.missed == slot.index - (after + 1)
    if slot.missed:
        # every passed-over slot, the last one included, was more than grace overdue
        assert t0 + (slot.index - 1) * interval < now - grace
        assert slot.at_ns >= now - grace
    else:
        assert slot.index == after + 1


@settings(max_examples=200, deadline=None)
@given(
    interval=st.integers(10**6, 10**11),
    work=st.lists(st.floats(0, 0.49), min_size=1, max_size=200),
)
def test_a_loop_that_works_less_than_half_an_interval_never_drifts(
    interval: int, work: list[float]
) -> None:
    # Each capture wakes on time and then works for up to half an interval: the n-th
    # capture is still scheduled at exactly t0 + n * interval, with no slot missed.
    t0, now, last = 7 * S, 7 * S, -1
    for n, fraction in enumerate(work):
        slot = next_capture_time(t0, interval, now, last, interval // 2)
        assert (slot.index, slot.at_ns, slot.missed) == (n, t0 + n * interval, 0)
        now = max(now, slot.at_ns) + int(interval * fraction)
        last = slot.index


def test_next_capture_time_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="interval"):
        next_capture_time(0, 0, 0)
    with pytest.raises(ValueError, match="grace"):
        next_capture_time(0, 10, 0, grace_ns=-1)


# -- backoff ---------------------------------------------------------------------------------------


def test_backoff_doubles_from_five_seconds_up_to_five_minutes() -> None:
    rng = random.Random(7)
    delays = [backoff_s(n, 5.0, 300.0, jitter="add", rng=rng) for n in range(1, 11)]
    for delay, base in zip(delays, [5, 10, 20, 40, 80, 160], strict=False):
        assert base <= delay < base + 1
    assert delays[6:] == [300.0] * 4


@settings(max_examples=300, deadline=None)
@given(
    failures=st.integers(1, 10_000),
    seed=st.integers(0, 2**32),
    base=st.floats(0.1, 60),
    cap=st.floats(60, 3600),
)
def test_backoff_is_within_its_bounds(failures: int, seed: int, base: float, cap: float) -> None:
    delay = backoff_s(failures, base, cap, jitter="add", rng=random.Random(seed))
    exact = base * 2.0 ** min(failures - 1, 30)
    assert 0 < delay <= cap
    assert delay == cap or exact <= delay < exact + 1


def test_backoff_counts_failures_from_one() -> None:
    with pytest.raises(ValueError):
        backoff_s(0, 5.0, 300.0, rng=random.Random())


# -- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (dt.datetime(2026, 2, 16, 14, 30, 5), "2026/02/16/143005.jpg"),
        (dt.datetime(2026, 2, 16, 0, 0, 0), "2026/02/16/000000.jpg"),
        (dt.datetime(2025, 12, 31, 23, 59, 59, 999_999), "2025/12/31/235959.jpg"),
        (
            dt.datetime(2026, 7, 1, 9, 8, 7, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2026/07/01/090807.jpg",  # the local fields, as given
        ),
    ],
)
def test_still_path(t: dt.datetime, expected: str) -> None:
    assert still_path(t).as_posix() == expected


@given(st.datetimes(min_value=dt.datetime(1000, 1, 1)))
def test_still_paths_sort_like_their_times(t: dt.datetime) -> None:
    later = t + dt.timedelta(seconds=1) if t.year < 9999 or t.month < 12 else t
    assert still_path(t).as_posix() <= still_path(later).as_posix()
    assert str(still_path(t).parent) == f"{t:%Y/%m/%d}"


# -- retention -------------------------------------------------------------------------------------

TODAY = dt.date(2026, 3, 10)


def days_back(*offsets: int, size: int = 0) -> list[DayUsage]:
    return [DayUsage(TODAY - dt.timedelta(days=o), size) for o in offsets]


@pytest.mark.parametrize(
    ("offsets", "retention", "expected_offsets"),
    [
        ((0, 1, 2), 30, ()),
        ((40, 31, 30, 29, 1, 0), 30, (40, 31, 30)),  # 30 days kept: today and 29 before it
        ((5, 3, 1, 0), 1, (5, 3, 1)),  # keep only today
        ((0,), 1, ()),  # today is never deleted
        ((-1, -5), 1, ()),  # nor a day after today (a clock that was wrong)
    ],
)
def test_plan_day_deletions_by_age(
    offsets: tuple[int, ...], retention: int, expected_offsets: tuple[int, ...]
) -> None:
    planned = plan_day_deletions(days_back(*offsets), TODAY, retention)
    assert planned == sorted(TODAY - dt.timedelta(days=o) for o in expected_offsets)


def test_plan_day_deletions_frees_the_disk_oldest_first() -> None:
    days = days_back(5, 4, 3, 2, 1, 0, size=10)
    # 95 of 100 bytes used, target 70 %: 3 old days (30 bytes) bring it to 65 %.
    planned = plan_day_deletions(days, TODAY, 30, used_bytes=95, total_bytes=100, target_percent=70)
    assert planned == [TODAY - dt.timedelta(days=o) for o in (5, 4, 3)]
    # Below the target nothing is deleted for space.
    assert plan_day_deletions(days, TODAY, 30, 60, 100, 70) == []
    # Even far above it, today stays.
    everything = plan_day_deletions(days, TODAY, 30, 100, 100, 1)
    assert TODAY not in everything and len(everything) == 5


@settings(max_examples=300, deadline=None)
@given(
    offsets=st.sets(st.integers(-3, 400), max_size=60),
    retention=st.integers(1, 400),
    sizes=st.integers(0, 1000),
    used=st.integers(0, 10**6),
    target=st.one_of(st.none(), st.floats(1, 100)),
)
def test_plan_day_deletions_properties(
    offsets: set[int], retention: int, sizes: int, used: int, target: float | None
) -> None:
    days = days_back(*offsets, size=sizes)
    planned = plan_day_deletions(days, TODAY, retention, used, 10**6, target)
    past = sorted(d.day for d in days if d.day < TODAY)
    assert all(d < TODAY for d in planned)
    assert planned == sorted(planned) and len(set(planned)) == len(planned)
    # Whole days, oldest first: what is deleted is always a prefix of the past days.
    assert planned == past[: len(planned)]
    # Every day older than the retention window is deleted.
    assert all(d in planned for d in past if (TODAY - d).days >= retention)


# -- disk state, sizes, settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "state"),
    [(0, DiskState.ok), (84.99, DiskState.ok), (85, DiskState.warning), (89.9, DiskState.warning),
     (90, DiskState.full), (100, DiskState.full)],
)  # fmt: skip
def test_disk_state(used: float, state: DiskState) -> None:
    assert disk_state(used, 85, 90) == state


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((1920, 1080), (1920, 1080), (1920, 1080)),
        ((3840, 2160), (1920, 1080), (1920, 1080)),
        ((4056, 3040), (1920, 1080), (1440, 1080)),  # aspect kept, even sides
        ((320, 240), (1920, 1080), (320, 240)),  # never scaled up
    ],
)
def test_fit_within(size: tuple[int, int], box: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit_within(*size, *box) == expected


def test_still_size_defaults_to_the_camera_within_1080p() -> None:
    assert TimelapseSettings().still_size(3840, 2160) == (1920, 1080)
    assert TimelapseSettings(width=640, height=480).still_size(3840, 2160) == (640, 480)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"warn_percent": 95, "stop_percent": 90}, "warn_percent"),
        ({"width": 640}, "both"),
        ({"interval_s": 0}, "interval_s"),
        ({"jpeg_quality": 101}, "jpeg_quality"),
        ({"intervall_s": 5}, "intervall_s"),  # unknown keys are refused
    ],
)
def test_timelapse_settings_refuse_bad_values(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TimelapseSettings.model_validate(values)


def test_timelapse_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMFLEET_TIMELAPSE__INTERVAL_S", "12.5")
    monkeypatch.setenv("CAMFLEET_TIMELAPSE__CLEANUP_ENABLED", "true")
    s = AgentSettings()
    assert s.timelapse.interval_s == 12.5 and s.timelapse.cleanup_enabled
    assert s.timelapse.jpeg_quality == 85 and s.timelapse.stop_percent == 90


@pytest.mark.parametrize("day", ["2026-02-30", "2026-13-01", "yesterday", "2026-2-3", ""])
def test_render_request_wants_a_calendar_day(day: str) -> None:
    with pytest.raises(ValidationError):
        TimelapseRenderRequest(day=day)


# -- reload plan -----------------------------------------------------------------------------------


def test_flatten_names_every_leaf() -> None:
    assert flatten({"a": 1, "b": {"c": 2, "d": {"e": 3}}, "f": {}}) == {
        "a": 1,
        "b.c": 2,
        "b.d.e": 3,
        "f": {},
    }


def test_plan_reload_splits_what_reloads_from_what_needs_a_restart() -> None:
    base = AgentSettings(api_token=SecretStr("a" * 24))
    new = base.model_copy(
        update={
            "timelapse": base.timelapse.model_copy(
                update={"interval_s": 5.0, "jpeg_quality": 70, "width": 640, "height": 480}
            ),
            "camera": base.camera.model_copy(update={"source": "synthetic"}),
            "api_token": SecretStr("b" * 24),
        }
    )
    plan = plan_reload(base.model_dump(), new.model_dump())
    assert plan.apply == ["timelapse.interval_s", "timelapse.jpeg_quality"]
    assert plan.restart == ["api_token", "camera.source", "timelapse.height", "timelapse.width"]
    assert plan_reload(base.model_dump(), base.model_dump()).apply == []
