"""The staging ledger: manifests written atomically, the flock, copy while hashing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from node_agent.dashcam.copy import copy_hashed, sha256_file
from node_agent.dashcam.ledger import Ledger, StagingBusy
from node_agent.dashcam.schemas import IngestManifest


def manifest(staged: str, sha: str, at: int, **extra: Any) -> IngestManifest:
    return IngestManifest(
        node_id="dash-1",
        cam_id="DASH",
        device_id="0bda-8153",
        device="1-1.1 0bda:8153",
        source_path=f"DCIM/{staged}",
        source_size_bytes=3,
        source_mtime_ns=1,
        staged_path=f"0bda-8153/{staged}",
        size_bytes=3,
        sha256=sha,
        ingested_at_ns=at,
        software_version="test",
        **extra,
    )


def test_copy_hashed_copies_hashes_and_keeps_the_time(tmp_path: Path) -> None:
    src = tmp_path / "cam" / "A.MP4"
    src.parent.mkdir()
    data = os.urandom(3 << 20) + b"tail"
    src.write_bytes(data)
    os.utime(src, ns=(1_700_000_000_000_000_000, 1_700_000_000_123_456_789))
    dst = tmp_path / "staging" / "dev" / "A.MP4"
    size, sha = copy_hashed(src, dst, chunk=1 << 16)
    assert (size, sha) == (len(data), hashlib.sha256(data).hexdigest())
    assert dst.read_bytes() == data
    assert dst.stat().st_mtime_ns == 1_700_000_000_123_456_789
    assert sha256_file(dst) == sha
    assert [p.name for p in dst.parent.iterdir()] == ["A.MP4"]  # no temp file left


def test_a_failed_copy_leaves_nothing_under_the_real_name(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        copy_hashed(tmp_path / "missing.mp4", tmp_path / "staging" / "x.mp4")
    assert list((tmp_path / "staging").iterdir()) == []


def test_manifests_round_trip_oldest_first_and_pending_excludes_confirmed(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "staging")
    ledger.write(manifest("B.MP4", "b" * 64, at=2))
    ledger.write(manifest("A.MP4", "a" * 64, at=1))
    ledger.write(manifest("C.MP4", "c" * 64, at=3, offloaded=True))
    assert [m.staged_path for m in ledger.manifests()] == [
        "0bda-8153/A.MP4",
        "0bda-8153/B.MP4",
        "0bda-8153/C.MP4",
    ]
    assert [m.sha256[0] for m in ledger.pending_upload()] == ["a", "b"]
    assert ("0bda-8153", "DCIM/C.MP4") in ledger.index()
    again = ledger.read("0bda-8153/B.MP4")
    assert again is not None and again.sha256 == "b" * 64
    assert ledger.read("0bda-8153/none.MP4") is None


def test_an_unreadable_manifest_is_skipped_not_fatal(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "staging")
    ledger.write(manifest("A.MP4", "a" * 64, at=1))
    bad = ledger.manifest_path("0bda-8153/B.MP4")
    bad.write_text("{not json")
    assert [m.staged_path for m in ledger.manifests()] == ["0bda-8153/A.MP4"]


def test_a_second_run_is_refused_while_another_process_holds_the_lock(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from node_agent.dashcam.ledger import Ledger\n"
            "with Ledger(Path(sys.argv[1])).locked():\n"
            "    print('held', flush=True); time.sleep(30)",
            str(staging),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            busy = pytest.raises(StagingBusy, match="locked by another camfleet dashcam run")
            with busy, Ledger(staging).locked():
                pass
        finally:
            holder.kill()
    with Ledger(staging).locked():  # free again once the holder is gone
        pass
