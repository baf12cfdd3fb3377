"""Helpers for the offload tests: footage planted on a real agent's disk, job polling,
and the invariant every test checks (nothing confirmed without a verified copy)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from node_agent.recorder.manifest import write_manifest
from node_agent.schemas import Codec, Manifest, Position
from tests.conftest import RunningFleet

FINAL_JOB_STATES = {"done", "failed", "interrupted"}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def node_id_of(cam_id: str) -> str:
    return cam_id.lower().replace("_", "-")


def plant(
    fleet: RunningFleet, cam_id: str, session_id: str, size: int, *, seed: int = 0
) -> Manifest:
    """A finished recording of ``size`` random bytes and its manifest, written on the
    agent's recordings disk the way the recorder leaves them (video, then manifest)."""
    folder = fleet.recordings_dir(cam_id)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{session_id}_{cam_id}_20261208_101500.mp4"
    data = hashlib.shake_256(f"{session_id}/{cam_id}/{seed}".encode()).digest(size)
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)
    now = time.time_ns()
    manifest = Manifest(
        session_id=session_id,
        cam_id=cam_id,
        node_id=node_id_of(cam_id),
        position=Position.centre,
        file_name=name,
        scheduled_start_ns=now,
        first_frame_ns=now,
        last_frame_ns=now + 10**9,
        clock_offset_ns=0,
        clock_synchronized=True,
        duration_s=1.0,
        frame_count=30,
        dropped_frames=0,
        width=320,
        height=240,
        fps=30.0,
        codec=Codec.h264,
        encoder="libx264",
        bitrate_bps=2_000_000,
        size_bytes=size,
        sha256=hashlib.sha256(data).hexdigest(),
        software_version="test",
    )
    write_manifest(folder, manifest)
    return manifest


def node_manifest(fleet: RunningFleet, cam_id: str, m: Manifest) -> dict[str, Any]:
    """The manifest as the node has it on disk now."""
    path = fleet.recordings_dir(cam_id) / f"{m.session_id}_{m.cam_id}.json"
    return dict(json.loads(path.read_text()))


def archive_dir(fleet: RunningFleet) -> Path:
    return fleet.root / "coordinator" / "archive"


def wait_known(c: httpx.Client, count: int, session_id: str, timeout_s: float = 20) -> list[Any]:
    """Wait until the coordinator has collected ``count`` manifests of the session."""
    deadline = time.monotonic() + timeout_s
    while True:
        recs = c.get("/api/v1/recordings", params={"session_id": session_id}).json()["recordings"]
        if len(recs) >= count:
            return list(recs)
        assert time.monotonic() < deadline, recs
        time.sleep(0.1)


def wait_job(c: httpx.Client, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """Poll a job until it ends."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = c.get(f"/api/v1/offload/{job_id}").json()
        if job["state"] in FINAL_JOB_STATES:
            return dict(job)
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def offload(c: httpx.Client, body: dict[str, Any] | None = None, timeout_s: float = 60) -> Any:
    resp = c.post("/api/v1/offload", json=body or {})
    assert resp.status_code == 202, resp.text
    return wait_job(c, resp.json()["job_id"], timeout_s)


def check_nothing_confirmed_without_a_copy(
    fleet: RunningFleet, planted: dict[str, list[Manifest]]
) -> int:
    """Every recording a node marks offloaded has a complete copy in the archive whose
    SHA-256 is the manifest's; every file under its final name in the archive is verified.
    Returns how many were confirmed."""
    confirmed = 0
    root = archive_dir(fleet)
    for cam_id, manifests in planted.items():
        for m in manifests:
            on_node = node_manifest(fleet, cam_id, m)
            copy = root / m.session_id / m.file_name
            if on_node.get("offloaded"):
                confirmed += 1
                assert copy.is_file(), f"{m.file_name} confirmed with no copy in the archive"
                assert copy.stat().st_size == m.size_bytes
                assert sha256_of(copy) == m.sha256, f"{m.file_name} confirmed with a bad copy"
            if copy.exists():
                assert sha256_of(copy) == m.sha256, f"{copy} is in place but not verified"
            part = copy.with_name(f".{m.file_name}.part")
            if part.exists():
                assert part.stat().st_size <= m.size_bytes
    return confirmed
