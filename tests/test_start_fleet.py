"""A scheduled session across real processes whose clocks disagree by known offsets: each
agent reads its own (fake) chronyc, starts when its clock reads start_at + offset, and the
coordinator stores the offsets, bounds and references and corrects the skew by them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import RunningFleet
from tests.test_start_timing import fake_chronyc

pytestmark = pytest.mark.slow

MS = 1_000_000
# chrony's System time per camera: negative = the local clock is fast. The agents share one
# real clock, so these offsets are only what chrony says; what they change is when each
# agent starts on that clock, which the uncorrected first-frame times show.
SYSTEM_TIME = {"CAM_L": "-0.200000000", "CAM_R": "0.100000000"}
OFFSET_NS = {"CAM_L": 200 * MS, "CAM_R": -100 * MS}


def test_offsets_move_each_start_and_the_coordinator_corrects_the_skew(
    fleet_factory: RunningFleet, tmp_path: Path
) -> None:
    fleet = fleet_factory
    fleet.start_coordinator()
    for cam_id, position in (("CAM_L", "left"), ("CAM_R", "right")):
        chronyc = fake_chronyc(tmp_path / f"chrony-{cam_id}", SYSTEM_TIME[cam_id])
        fleet.start_agent(
            cam_id,
            position,
            CAMFLEET_CHRONYC_PATH=str(chronyc),
            CAMFLEET_GATES__MAX_CLOCK_OFFSET_MS="1000",
            CAMFLEET_GATES__MAX_CLOCK_ERROR_MS="1000",
        )
    fleet.wait_online(2)
    with fleet.client() as c:
        created = c.post("/api/v1/sessions", json={"name": "offsets", "lead_ms": 1500})
        assert created.status_code == 201, created.text
        session = created.json()
        assert [n["start"]["ok"] for n in session["nodes"]] == [True, True], session
        time.sleep(2.5)
        stopped = c.post(f"/api/v1/sessions/{session['session_id']}/stop")
        assert stopped.status_code == 200, stopped.text
        got = stopped.json()
        recordings = c.get("/api/v1/recordings").json()["recordings"]
    start_at = got["start_at_ns"]
    manifests = {r["manifest"]["cam_id"]: r["manifest"] for r in recordings}
    nodes = {n["cam_id"]: n for n in got["nodes"]}
    for cam_id, offset in OFFSET_NS.items():
        m = manifests[cam_id]
        assert m["scheduled_start_ns"] == start_at
        assert m["start_deadline_ns"] == start_at + offset
        assert m["first_frame_ns"] >= start_at + offset  # never early on its own clock
        assert m["clock_offset_ns"] == offset and m["clock_reference"] == "10.42.0.1"
        assert m["first_frame_source"] == "capture" and m["start_late_ns"] == 0
        assert nodes[cam_id]["clock_offset_ns"] == offset
        assert nodes[cam_id]["clock_reference"] == "10.42.0.1"
        assert nodes[cam_id]["clock_error_bound_ns"] == m["clock_error_bound_ns"]
    # Uncorrected, the first frames are 300 ms apart, as the offsets say; corrected, the
    # skew is what the schedulers added (far less than the offsets on a loaded machine).
    raw = manifests["CAM_L"]["first_frame_ns"] - manifests["CAM_R"]["first_frame_ns"]
    assert abs(raw - 300 * MS) < 150 * MS, raw
    assert got["skew_ms"] is not None and got["skew_ms"] < 150
    bounds = [m["clock_error_bound_ns"] for m in manifests.values()]
    if None in bounds:  # this chronyc's status carries no bound: the session says so
        assert got["skew_bound_ms"] is None
        assert any("no clock error bound" in w for w in got["skew_warnings"])
    else:
        corrected = sorted(
            (
                max(0, m["clock_error_bound_ns"] - abs(m["clock_offset_ns"]))
                for m in manifests.values()
            ),
            reverse=True,
        )
        assert got["skew_bound_ms"] == round((corrected[0] + corrected[1]) / 1e6, 4)
    assert got["frame_period_ms"] == round(1000 / fleet.fps, 3)
