"""kill -9 of the coordinator mid-offload, trial after trial at random points: no file is
ever confirmed to a node without a complete, verified copy in the archive, and the next
offload (of a restarted coordinator) completes what was left."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from app.demo import stop_all
from node_agent.schemas import Manifest
from tests.conftest import RunningFleet
from tests.offload_helpers import (
    archive_dir,
    check_nothing_confirmed_without_a_copy,
    node_manifest,
    offload,
    plant,
    sha256_of,
    wait_known,
)

pytestmark = pytest.mark.slow

TRIALS = 10
SIZE = 3_000_000
PACE = 6_000_000  # bytes/s per transfer: a file takes half a second, so kills land inside
CAMS = ("CAM_L", "CAM_R")


def _cut_parts(root: Path) -> int:
    """``.part`` files a kill left part-way."""
    return sum(1 for p in root.glob("*/.*.part") if 0 < p.stat().st_size < SIZE + 100)


def test_a_coordinator_killed_mid_offload_never_confirms_without_a_verified_copy(
    tmp_path: Path,
) -> None:
    rng = random.Random(20261208)  # the kill points, the same on every run
    fleet = RunningFleet(
        root=tmp_path,
        coordinator_env={
            "CAMFLEET_OFFLOAD_MAX_BYTES_PER_S": str(PACE),
            "CAMFLEET_OFFLOAD_RETRY_BASE_S": "0.2",
            "CAMFLEET_OFFLOAD_RETRY_MAX_S": "0.5",
        },
    )
    planted: dict[str, list[Manifest]] = {cam: [] for cam in CAMS}
    cut, confirmed_seen = 0, 0
    try:
        fleet.start_fleet([(CAMS[0], "left"), (CAMS[1], "right")])
        for trial in range(TRIALS):
            session_id = f"K{trial}"
            for j, cam in enumerate(CAMS):
                planted[cam].append(plant(fleet, cam, session_id, SIZE + trial * 10 + j))
            if fleet.coordinator is None or fleet.coordinator.proc.poll() is not None:
                fleet.start_coordinator()
            with fleet.client() as c:
                wait_known(c, len(CAMS), session_id)
                assert c.post("/api/v1/offload", json={}).status_code == 202
            time.sleep(rng.uniform(0.0, 1.2))
            assert fleet.coordinator is not None
            fleet.kill(fleet.coordinator)
            cut += _cut_parts(archive_dir(fleet))
            confirmed_seen = check_nothing_confirmed_without_a_copy(fleet, planted)

        fleet.start_coordinator()
        with fleet.client() as c:
            # A job left running by a killed coordinator is marked interrupted at start.
            jobs = c.get("/api/v1/offload").json()["jobs"]
            assert len(jobs) == TRIALS
            assert {j["state"] for j in jobs} <= {"interrupted", "done", "failed"}
            assert any(j["state"] == "interrupted" for j in jobs)
            job = offload(c, {}, timeout_s=120)
        assert job["state"] == "done", job
        assert check_nothing_confirmed_without_a_copy(fleet, planted) == TRIALS * len(CAMS)
    finally:
        stop_all(fleet.children())
    # The trials did cut files mid-stream, and did confirm some before a kill.
    assert cut >= 3, cut
    assert confirmed_seen > 0
    for cam, manifests in planted.items():
        for m in manifests:
            assert node_manifest(fleet, cam, m)["offloaded"] is True
            assert sha256_of(archive_dir(fleet) / m.session_id / m.file_name) == m.sha256
    assert not list(archive_dir(fleet).glob("*/.*.part"))
