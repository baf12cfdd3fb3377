"""The retention planner is a pure function: properties over any files, flags and free space."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from node_agent.storage.retention import (
    RecordingFile,
    oldest_first,
    plan_deletions,
    target_free_bytes,
)

GB = 1_000_000_000


@st.composite
def recording_files(draw: st.DrawFn) -> list[RecordingFile]:
    n = draw(st.integers(0, 40))
    files = []
    for i in range(n):
        has_manifest = draw(st.booleans())
        files.append(
            RecordingFile(
                name=f"S{i}_CAM_C_20260101_{i:06d}.mp4",
                size_bytes=draw(st.integers(0, 5 * GB)),
                # few distinct ages, so ties (broken by name) happen often
                started_ns=draw(st.integers(0, 20)) * 1_000_000_000,
                offloaded=draw(st.booleans()),
                active=draw(st.integers(0, 9)) == 0,
                manifest=f"S{i}_CAM_C.json" if has_manifest else None,
                companions=(f"S{i}_CAM_C_lockview.jpg",) if draw(st.booleans()) else (),
                companion_bytes=draw(st.integers(0, 100_000)),
            )
        )
    return files


disks = st.tuples(st.integers(0, 200 * GB), st.integers(1, 200 * GB)).map(
    lambda t: (min(t), max(t))  # free <= total
)
percents = st.floats(min_value=0.1, max_value=100, allow_nan=False)


@settings(max_examples=500, deadline=None)
@given(recording_files(), disks, percents, st.booleans(), st.integers(0, 50 * GB))
def test_a_plan_never_holds_unoffloaded_active_or_manifestless_footage(
    files: list[RecordingFile],
    disk: tuple[int, int],
    percent: float,
    after_confirm: bool,
    min_free: int,
) -> None:
    free, total = disk
    plan = plan_deletions(files, free, total, percent, after_confirm, min_free)
    by_name = {f.name: f for f in files}
    for d in plan:
        f = by_name[d.name]
        assert f.offloaded and not f.active and f.manifest is not None
        assert d.manifest == f.manifest and d.companions == f.companions
        assert d.total_bytes == f.size_bytes + f.companion_bytes
    assert len({d.name for d in plan}) == len(plan)


@settings(max_examples=500, deadline=None)
@given(recording_files(), disks, percents, st.booleans(), st.integers(0, 50 * GB))
def test_a_plan_is_oldest_first_and_a_prefix_of_the_deletable(
    files: list[RecordingFile],
    disk: tuple[int, int],
    percent: float,
    after_confirm: bool,
    min_free: int,
) -> None:
    free, total = disk
    plan = plan_deletions(files, free, total, percent, after_confirm, min_free)
    keys = [(d.started_ns, d.name) for d in plan]
    assert keys == sorted(keys)
    deletable = [f.name for f in oldest_first(files) if f.deletable]
    # nothing younger is deleted while an older deletable recording is kept
    assert [d.name for d in plan] == deletable[: len(plan)]
    if after_confirm:
        assert len(plan) == len(deletable)


@settings(max_examples=500, deadline=None)
@given(recording_files(), disks, percents, st.integers(0, 50 * GB))
def test_a_plan_stops_as_soon_as_the_target_is_reached(
    files: list[RecordingFile], disk: tuple[int, int], percent: float, min_free: int
) -> None:
    free, total = disk
    plan = plan_deletions(files, free, total, percent, False, min_free)
    target = target_free_bytes(total, percent, min_free)
    freed = sum(d.total_bytes for d in plan)
    if plan:
        # without its last deletion the plan would not have reached the target
        assert free + freed - plan[-1].total_bytes < target
    deletable = sum(1 for f in files if f.deletable)
    if free + freed < target:
        assert len(plan) == deletable  # short of the target only when nothing is left to delete
    if free >= target:
        assert plan == []


def test_planner_table() -> None:
    def rec(name: str, age: int, size: int, offloaded: bool = True, active: bool = False):
        return RecordingFile(name, size, age, offloaded, active, f"{name}.json")

    files = [
        rec("c", 3, 100),
        rec("a", 1, 100, offloaded=False),
        rec("b", 2, 100),
        rec("d", 4, 100, active=True),
        rec("e", 5, 100),
    ]
    # 1000-byte disk, 100 free, aiming at 30 % (300): two deletions reach it
    assert [d.name for d in plan_deletions(files, 100, 1000, 30)] == ["b", "c"]
    assert [d.name for d in plan_deletions(files, 100, 1000, 25)] == ["b", "c"]
    assert [d.name for d in plan_deletions(files, 100, 1000, 20)] == ["b"]
    assert plan_deletions(files, 300, 1000, 30) == []
    # not enough deletable footage: everything deletable, never "a" or "d"
    assert [d.name for d in plan_deletions(files, 0, 1000, 90)] == ["b", "c", "e"]
    assert [d.name for d in plan_deletions(files, 900, 1000, 1, True)] == ["b", "c", "e"]
    # the recorder's need in bytes beats a lower percentage
    assert [d.name for d in plan_deletions(files, 100, 1000, 1, min_free_bytes=250)] == ["b", "c"]
    # ages a float cannot tell apart are still put in exact order, then by name
    big = 2**61
    close = [rec("z", big + 1, 10), rec("y", big, 10), rec("x", big + 1, 10)]
    assert [d.name for d in plan_deletions(close, 0, 1000, 90)] == ["y", "x", "z"]
    orphan = RecordingFile("f", 100, 0, True, False, None)
    assert plan_deletions([orphan], 0, 1000, 50) == []
