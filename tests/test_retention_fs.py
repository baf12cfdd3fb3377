"""Retention on a real small filesystem (an 8 MB tmpfs) under a real agent process.

The disk is filled with copies of a real recording from the synthetic camera, some
confirmed (offloaded) through the agent's API and some not. Retention must delete only
offloaded ones, oldest first, and stop at its target; with only un-offloaded footage
left the alarm rises and starts are refused; a recording running on a full disk first
has retention free offloaded footage, then stops cleanly with its manifest.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from node_agent.naming import journal_path, manifest_name
from node_agent.recorder.manifest import write_manifest
from node_agent.schemas import Manifest
from tests.solo_agent import SoloAgent, solo_agent
from tests.tmpfs import mounted_tmpfs
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

DISK_BYTES = 8 * 1024 * 1024
RETENTION_TARGET = -(-DISK_BYTES * 15 // 100)  # 15 % (the default retention_free_percent)
CRITICAL = DISK_BYTES * 10 // 100
PAGE = 4096
T = TypeVar("T")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs mounted for the test, always unmounted after it."""
    with mounted_tmpfs(tmp_path / "disk", "8m") as mount:
        yield mount


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def add_copy(
    directory: Path, template: Manifest, session: str, age_rank: int, data: bytes
) -> Manifest:
    """A recording made of ``data`` with its own manifest, as old as ``age_rank`` says."""
    first = template.first_frame_ns - (1000 - age_rank) * 60_000_000_000
    name = f"{session}_{template.cam_id}_20260101_{age_rank:06d}.mp4"
    (directory / name).write_bytes(data)
    m = template.model_copy(
        update={
            "session_id": session,
            "file_name": name,
            "first_frame_ns": first,
            "last_frame_ns": first + 1_000_000_000,
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "lockview_file": None,
            "offloaded": False,
        }
    )
    write_manifest(directory, m)
    return m


def confirm(node: SoloAgent, m: Manifest) -> None:
    answer = node.client.post(
        f"/api/v1/recordings/{m.file_name}/confirm",
        json={"sha256": m.sha256, "copied_to": "test:archive"},
    )
    assert answer.status_code == 200, answer.text


def present(directory: Path, m: Manifest) -> bool:
    """The recording and its manifest are on the disk, and the video is unchanged."""
    video = directory / m.file_name
    if not video.exists() or not (directory / manifest_name(m.session_id, m.cam_id)).exists():
        return False
    return hashlib.sha256(video.read_bytes()).hexdigest() == m.sha256


def filler_to(directory: Path, template: Manifest, data: bytes, free_target: int, rank: int):
    """One big un-offloaded recording that leaves about ``free_target`` bytes free."""
    size = free_bytes(directory) - free_target - 2 * PAGE  # its manifest takes a page
    body = (data * (size // len(data) + 1))[:size]
    return add_copy(directory, template, f"F{rank}", rank, body)


def test_retention_deletes_only_offloaded_footage_oldest_first(small_disk: Path) -> None:
    env = {
        "CAMFLEET_RECORDINGS_DIR": str(small_disk),
        "CAMFLEET_STORAGE__HOUSEKEEPING_INTERVAL_S": "0.3",
    }
    with solo_agent(small_disk.parent, **env) as node:
        template = Manifest.model_validate(node.record("T1", 0.8))
        data = (small_disk / template.file_name).read_bytes()
        # Twelve copies, alternately offloaded (odd ages) and not (even), oldest first.
        offloaded: list[Manifest] = []
        kept: list[Manifest] = []
        for rank in range(1, 13):
            m = add_copy(small_disk, template, f"R{rank:02d}", rank, data)
            (offloaded if rank % 2 else kept).append(m)
        for m in offloaded:
            confirm(node, m)
        # One big un-offloaded recording, newest of all, leaves 1.5 copies short of the
        # target: retention must delete exactly the two oldest offloaded ones.
        filler = filler_to(small_disk, template, data, RETENTION_TARGET - 3 * len(data) // 2, 50)
        wait_for("retention", lambda: free_bytes(small_disk) >= RETENTION_TARGET)
        time.sleep(1.0)  # a few more housekeeping rounds: nothing else may go
        gone = [m for m in offloaded if not present(small_disk, m)]
        assert gone == offloaded[:2], [m.file_name for m in gone]
        assert all(present(small_disk, m) for m in [*offloaded[2:], *kept, filler, template])
        free = free_bytes(small_disk)
        assert free >= RETENTION_TARGET
        assert free - (len(data) + 2 * PAGE) < RETENTION_TARGET  # not one deletion more
        disk = node.status()["disk"]
        assert disk["level"] == "ok" and disk["alarm"] is None
        assert disk["deleted_bytes_total"] >= 2 * len(data)
        assert disk["offloaded_bytes"] >= 4 * len(data)

        # The operator deletes every offloaded recording; the rest stays.
        answer = node.client.delete("/api/v1/recordings", params={"offloaded": "true"})
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert sorted(n for n in result["deleted"] if n.endswith(".mp4")) == sorted(
            m.file_name for m in offloaded[2:]
        )
        assert result["freed_bytes"] >= 4 * len(data)
        assert result["kept_unoffloaded"] == len(kept) + 2  # and the filler and the original

        # Fill with un-offloaded footage past the critical level: the alarm, and no start.
        more = filler_to(small_disk, template, data, CRITICAL // 2, 60)
        disk = wait_for(
            "the alarm, after a rescan",
            lambda: (d := node.status()["disk"])["alarm"] and d["unoffloaded_count"] == 9 and d,
        )
        assert disk["level"] == "critical" and "not yet offloaded" in disk["alarm"]
        assert disk["unoffloaded_count"] == len(kept) + 3  # and the filler and the original
        assert disk["oldest_unoffloaded_age_s"] > 0
        metrics = node.client.get("/metrics").text
        assert 'camfleet_disk_alarm{cam_id="CAM_C",node="cam-c"} 1.0' in metrics
        assert 'level="critical",node="cam-c"} 1.0' in metrics
        refused = node.client.post(
            "/api/v1/recording/start", json={"session_id": "T2", "command_id": "T2-a"}
        )
        assert refused.status_code == 409
        assert "offload and delete" in refused.json()["detail"], refused.text
        assert all(present(small_disk, m) for m in [*kept, filler, more, template])

        # Offloading the big ones lets retention clear the disk, and the alarm with it.
        confirm(node, more)
        confirm(node, filler)
        disk = wait_for("room again", lambda: (d := node.status()["disk"])["level"] == "ok" and d)
        assert disk["alarm"] is None
        # the older big one was enough: the newer one, offloaded too, stays until needed
        assert not present(small_disk, filler) and present(small_disk, more)
        assert all(present(small_disk, m) for m in [*kept, template])
        started = node.client.post(
            "/api/v1/recording/start", json={"session_id": "T2", "command_id": "T2-b"}
        )
        assert started.status_code == 200, started.text


def test_a_recording_on_a_filling_disk_frees_offloaded_footage_then_stops_cleanly(
    small_disk: Path,
) -> None:
    env = {
        "CAMFLEET_RECORDINGS_DIR": str(small_disk),
        # no housekeeping round while it records: the recorder's own call frees the room
        "CAMFLEET_STORAGE__HOUSEKEEPING_INTERVAL_S": "3600",
    }
    with solo_agent(small_disk.parent, **env) as node:
        template = Manifest.model_validate(node.record("T1", 0.8))
        data = (small_disk / template.file_name).read_bytes()
        offloaded = [add_copy(small_disk, template, f"O{r}", r, data) for r in range(1, 4)]
        for m in offloaded:
            confirm(node, m)
        kept = [add_copy(small_disk, template, f"K{r}", r, data) for r in range(4, 7)]
        # Above the critical level (a start is allowed), under the retention target.
        filler = filler_to(small_disk, template, data, CRITICAL + 3 * len(data), 50)
        before = {m.file_name for m in [*kept, filler, template]}

        started = node.client.post(
            "/api/v1/recording/start", json={"session_id": "REC", "command_id": "REC-a"}
        )
        assert started.status_code == 200, started.text
        name = started.json()["file_name"]
        wait_for("the journal", lambda: journal_path(small_disk / name).exists())
        # The operator's delete while it records leaves the recording and its journal alone.
        assert (
            node.client.delete("/api/v1/recordings", params={"offloaded": "false"}).status_code
            == 400
        )
        status = wait_for(
            "the recording to stop",
            lambda: (s := node.status())["recorder"]["state"] == "idle" and s,
            timeout_s=90,
        )
        stop_reason = status["recorder"]["last_stop_reason"]
        assert stop_reason.startswith("disk reserve reached"), stop_reason
        assert "not yet offloaded" in stop_reason and "nothing was deleted" in stop_reason
        assert "retention made room for the recording" in node.log.read_text()
        manifest = Manifest.model_validate(
            node.client.post(
                "/api/v1/recording/stop", json={"session_id": "REC", "command_id": "REC-o"}
            ).json()["manifest"]
        )
        assert manifest.file_name == name and manifest.stop_reason == stop_reason
        assert present(small_disk, manifest)
        assert not journal_path(small_disk / name).exists()
        # Retention freed the offloaded ones first; nothing un-offloaded went.
        assert not any(present(small_disk, m) for m in offloaded)
        assert all(present(small_disk, m) for m in [*kept, filler, template])
        listed = {e["name"] for e in node.client.get("/api/v1/recordings").json()["recordings"]}
        assert listed == before | {name}
        disk = node.status()["disk"]
        assert disk["alarm"] is not None and disk["alarm"].startswith("recording stopped")
        assert disk["unoffloaded_count"] == len(kept) + 3
        metrics = node.client.get("/metrics").text
        assert 'camfleet_disk_alarm{cam_id="CAM_C",node="cam-c"} 1.0' in metrics
