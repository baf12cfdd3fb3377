"""Offload with real processes: a recorded three-camera session into the archive, verified
and confirmed; a node that goes away mid-file; a corrupted byte; two offloads of one file.

Footage for the failure cases is planted on a real agent's disk (random bytes and a
manifest, as the recorder leaves them) so files are a few MB without minutes of encoding;
the coordinator paces transfers so a kill lands mid-file.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.demo import stop_all
from node_agent.schemas import Manifest
from tests.conftest import RunningFleet
from tests.offload_helpers import (
    archive_dir,
    check_nothing_confirmed_without_a_copy,
    node_id_of,
    node_manifest,
    offload,
    plant,
    sha256_of,
    wait_job,
    wait_known,
)
from tests.pg import BOTH_DATABASES

pytestmark = pytest.mark.slow

# A transfer is paced at the coordinator, but the node writes ahead into the sockets'
# buffers (several MB on loopback): a file cut mid-way must be larger than that.
SIZE = 16_000_000
PACE = 8_000_000  # bytes/s: a 16 MB file takes 2 s


@pytest.fixture(scope="module")
def paced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """A coordinator that paces every transfer, and one agent (CAM_C)."""
    running = RunningFleet(
        root=tmp_path_factory.mktemp("offload"),
        coordinator_env={
            "CAMFLEET_OFFLOAD_MAX_BYTES_PER_S": str(PACE),
            "CAMFLEET_OFFLOAD_IDLE_TIMEOUT_S": "1",
            "CAMFLEET_OFFLOAD_RETRY_BASE_S": "0.2",
            "CAMFLEET_OFFLOAD_RETRY_MAX_S": "1",
            "CAMFLEET_OFFLOAD_MAX_ATTEMPTS": "30",
        },
    )
    try:
        running.start_coordinator()
        running.start_agent("CAM_C", "centre")
        running.wait_online(1)
        yield running
    finally:
        stop_all(running.children())


def _wait_attempts(c: httpx.Client, job_id: str, at_least: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        files = c.get(f"/api/v1/offload/{job_id}").json()["files"]
        if files and files[0]["attempts"] >= at_least:
            return
        assert time.monotonic() < deadline, files
        time.sleep(0.05)


def _wait_bytes(c: httpx.Client, job_id: str, at_least: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        job = c.get(f"/api/v1/offload/{job_id}").json()
        if job["bytes_done"] >= at_least or job["state"] != "running":
            return dict(job)
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


@BOTH_DATABASES
def test_three_camera_session_is_archived_verified_and_confirmed(
    three_cameras: RunningFleet,
) -> None:
    fleet = three_cameras
    with fleet.client() as c:
        session = c.post("/api/v1/sessions", json={"name": "offload", "lead_ms": 300}).json()
        sid = session["session_id"]
        time.sleep(1.0)
        assert all(n["ok"] for n in c.post(f"/api/v1/sessions/{sid}/lockview").json()["nodes"])
        time.sleep(1.0)
        stopped = c.post(f"/api/v1/sessions/{sid}/stop").json()
        assert all(n["stop"]["ok"] for n in stopped["nodes"]), stopped
        known = wait_known(c, 3, sid)
        job = offload(c, {"session_id": sid})
        assert job["state"] == "done", job
        assert job["counts"] == {"confirmed": 3}
        assert job["bytes_done"] == job["bytes_total"] == sum(r["size_bytes"] for r in known)
        listing = c.get("/api/v1/recordings", params={"session_id": sid}).json()["recordings"]
        metrics = c.get("/metrics").text

        for rec in listing:
            m = rec["manifest"]
            folder = archive_dir(fleet) / sid
            copy = folder / rec["file_name"]
            assert sha256_of(copy) == m["sha256"] == rec["sha256"]
            assert (folder / f"{sid}_{m['cam_id']}.json").is_file()
            assert m["lockview_file"] and (folder / m["lockview_file"]).is_file()
            on_node = node_manifest_of(fleet, m)
            assert on_node["offloaded"] is True, on_node
            assert on_node["offloaded_to"].startswith("coordinator:")
            assert on_node["offloaded_to"].endswith(str(copy))
            assert rec["archive_state"] == "confirmed" and rec["offloaded"] is True
            assert c.get(rec["download_url"]).content == copy.read_bytes()
        assert f"camfleet_offload_bytes_total {float(job['bytes_total'])}" in metrics
        assert 'camfleet_offload_files_total{outcome="confirmed"} 3.0' in metrics

        # Already archived and verified: never fetched twice.
        again = offload(c, {"session_id": sid})
        assert again["files"] == [] and again["state"] == "done"
        named = [{"node_id": r["node_id"], "file_name": r["file_name"]} for r in listing]
        again = offload(c, {"recordings": named})
        assert again["counts"] == {"skipped": 3}
        assert sum(f["bytes_received"] for f in again["files"]) == 0


def node_manifest_of(fleet: RunningFleet, m: dict[str, Any]) -> dict[str, Any]:
    return node_manifest(fleet, m["cam_id"], Manifest.model_validate(m))


def gone_size() -> int:
    """A file larger than what the kernel may buffer between agent and coordinator (the
    receive buffer autotunes up to tcp_rmem's maximum, 32 MiB here, plus the send buffer):
    otherwise the agent may have handed the whole rest over before it is stopped, and the
    coordinator reads it at its pace without ever waiting for the node."""
    limits = [Path(f"/proc/sys/net/ipv4/tcp_{k}mem") for k in ("r", "w")]
    try:
        buffered = sum(int(p.read_text().split()[2]) for p in limits)
    except (OSError, ValueError, IndexError):
        buffered = 40 << 20
    return max(SIZE, buffered + (8 << 20))


@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_node_gone_mid_file_is_resumed_from_the_byte_it_reached(
    paced: RunningFleet, how: str
) -> None:
    fleet = paced
    size = gone_size()
    m = plant(fleet, "CAM_C", f"GONE-{how}", size)
    with fleet.client() as c:
        wait_known(c, 1, m.session_id)
        job_id = c.post("/api/v1/offload", json={"session_id": m.session_id}).json()["job_id"]
        reached = _wait_bytes(c, job_id, SIZE // 5)["bytes_done"]
        assert 0 < reached < size
        agent = fleet.agents["CAM_C"]
        if how == "killed":
            fleet.kill(agent)
            time.sleep(1.5)  # a few attempts find nobody
            fleet.start_agent("CAM_C", "centre")  # back, at a new port
        else:
            os.killpg(agent.proc.pid, signal.SIGSTOP)
            try:
                # Stopped until the idle deadline (1 s) has given up on it: what the socket
                # buffers already hold is read first, at the pace, so a fixed sleep was not
                # always long enough.
                _wait_attempts(c, job_id, 2)
                time.sleep(0.5)  # and a retry finds nobody again
            finally:
                os.killpg(agent.proc.pid, signal.SIGCONT)
        job = wait_job(c, job_id)
    (f,) = job["files"]
    assert f["state"] in ("confirmed", "archived"), f
    assert f["attempts"] >= 2
    # It went on from the byte it had reached, and took no byte twice.
    assert f["resume_offsets"] and f["resume_offsets"][0] >= reached
    assert f["bytes_received"] == size
    assert sha256_of(archive_dir(fleet) / m.session_id / m.file_name) == m.sha256
    check_nothing_confirmed_without_a_copy(fleet, {"CAM_C": [m]})


def test_a_corrupted_byte_is_caught_both_copies_kept_nothing_confirmed(
    paced: RunningFleet,
) -> None:
    fleet = paced
    m = plant(fleet, "CAM_C", "CORRUPT", 300_000)
    on_disk = fleet.recordings_dir("CAM_C") / m.file_name
    data = bytearray(on_disk.read_bytes())
    data[123_456] ^= 0x01  # one bit, after the manifest was written
    on_disk.write_bytes(bytes(data))
    with fleet.client() as c:
        wait_known(c, 1, m.session_id)
        job = offload(c, {"session_id": m.session_id})
        (f,) = job["files"]
        assert f["state"] == "corrupt" and "SHA-256 mismatch" in f["error"], f
        assert job["state"] == "failed"
        (rec,) = c.get("/api/v1/recordings", params={"session_id": m.session_id}).json()[
            "recordings"
        ]
        assert rec["archive_state"] == "corrupt" and rec["corrupt_copies"] == 1
        assert rec["download_url"] is None
        assert c.get(f"/api/v1/recordings/{rec['id']}/file").status_code == 404
        assert "camfleet_offload_corrupt_total 1.0" in c.get("/metrics").text
        # A corrupt one is not taken again unasked...
        assert offload(c, {"session_id": m.session_id})["files"] == []
        # ... and asked by name, it is checked again and kept again.
        ref = {"node_id": node_id_of("CAM_C"), "file_name": m.file_name}
        assert offload(c, {"recordings": [ref]})["files"][0]["state"] == "corrupt"
        deleted = c.delete("/api/v1/recordings", params={"offloaded": "true"})
        assert deleted.status_code == 200, deleted.text

    folder = archive_dir(fleet) / m.session_id
    assert not (folder / m.file_name).exists()
    for n in (1, 2):
        kept = folder / f"{m.file_name}.corrupt-{n}"
        assert kept.read_bytes() == bytes(data)
    assert on_disk.read_bytes() == bytes(data)  # the node's copy: untouched, not deleted
    assert node_manifest(fleet, "CAM_C", m)["offloaded"] is False


def test_two_offloads_of_one_file_at_once_one_wins(paced: RunningFleet) -> None:
    fleet = paced
    m = plant(fleet, "CAM_C", "TWICE", 4_000_000)
    with fleet.client() as c:
        wait_known(c, 1, m.session_id)
        body = {"session_id": m.session_id}
        first = c.post("/api/v1/offload", json=body).json()["job_id"]
        second = c.post("/api/v1/offload", json=body).json()["job_id"]
        jobs = [wait_job(c, first), wait_job(c, second)]
    files = [j["files"][0] for j in jobs]
    assert sorted(f["bytes_received"] for f in files) == [0, m.size_bytes]
    winner, other = sorted(files, key=lambda f: -f["bytes_received"])
    assert winner["state"] in ("confirmed", "archived")
    assert other["state"] in ("skipped", "confirmed", "archived")
    folder = archive_dir(fleet) / m.session_id
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [m.file_name, f"{m.session_id}_CAM_C.json"]
    )
    assert sha256_of(folder / m.file_name) == m.sha256


def test_a_part_another_process_holds_is_left_alone(paced: RunningFleet) -> None:
    fleet = paced
    m = plant(fleet, "CAM_C", "LOCKED", 100_000)
    folder = archive_dir(fleet) / m.session_id
    folder.mkdir(parents=True)
    part = folder / f".{m.file_name}.part"
    fd = os.open(part, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with fleet.client() as c:
            wait_known(c, 1, m.session_id)
            (f,) = offload(c, {"session_id": m.session_id})["files"]
        assert f["state"] == "failed" and "another process" in f["error"], f
        assert part.stat().st_size == 0 and not (folder / m.file_name).exists()
    finally:
        os.close(fd)
    with fleet.client() as c:
        (f,) = offload(c, {"session_id": m.session_id})["files"]
    assert f["state"] in ("confirmed", "archived"), f
    assert sha256_of(folder / m.file_name) == m.sha256


def test_a_recording_node_is_skipped_and_offloaded_once_it_stops(paced: RunningFleet) -> None:
    fleet = paced
    m = plant(fleet, "CAM_C", "WHILE-REC", 200_000)
    with fleet.client() as c:
        wait_known(c, 1, m.session_id)
        session = c.post("/api/v1/sessions", json={"lead_ms": 200}).json()
        try:
            # The coordinator may lengthen the lead on a loaded machine (round trips).
            deadline = time.monotonic() + session["lead_ms"] / 1000 + 10
            while c.get("/api/v1/nodes/cam-c").json()["status"]["recorder"]["state"] != (
                "recording"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            (f,) = offload(c, {"session_id": m.session_id})["files"]
            assert f["state"] == "skipped" and "recording" in f["error"], f
            assert f["bytes_received"] == 0
        finally:
            c.post(f"/api/v1/sessions/{session['session_id']}/stop")
        deadline = time.monotonic() + 10
        while c.get("/api/v1/nodes/cam-c").json()["status"]["recorder"]["state"] != "idle":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        (f,) = offload(c, {"session_id": m.session_id})["files"]
    assert f["state"] in ("confirmed", "archived"), f
    assert sha256_of(archive_dir(fleet) / m.session_id / m.file_name) == m.sha256
