"""Ingest from a folder standing in for the camera's card: what is copied, what is skipped,
how staged names are made safe, and that camera clean-up deletes only confirmed bytes."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from node_agent.dashcam.copy import CopyAborted, copy_hashed
from node_agent.dashcam.detect import FoundCamera, UsbDevice
from node_agent.dashcam.ingest import (
    Ingestor,
    safe_part,
    staged_path_for,
    walk_camera,
)
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.schemas import STAGED_PATH
from tests.dashcam_standin import write_footage

CAMERA = FoundCamera(
    Path("/dev/sda1"),
    "sda1",
    "67EF9CED",
    UsbDevice("1-1.1", Path("/x"), "0bda", "0129", "67EF9CED"),
)
EXTS = [".mp4", ".mov", ".jpg"]


def ingestor(tmp_path: Path, free: int = 1 << 40) -> Ingestor:
    return Ingestor(
        Ledger(tmp_path / "staging"), "dash-1", "CAM_C", "test", EXTS, free_bytes=lambda _p: free
    )


def test_walk_takes_footage_only(tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_footage(
        card,
        {
            "DCIM/100MEDIA/FILE0001.MP4": b"a",
            "DCIM/100MEDIA/FILE0002.mov": b"b",
            "DCIM/100MEDIA/.hidden.mp4": b"c",
            ".Trashes/x.mp4": b"d",
            "DCIM/notes.txt": b"e",
            "a/b/c/d/e/f/g/h/i/j/deep.mp4": b"f",  # deeper than MAX_DEPTH
        },
    )
    (card / "DCIM/100MEDIA/link.mp4").symlink_to("/etc/passwd")
    found = walk_camera(card, EXTS)
    assert [f.rel for f in found] == ["DCIM/100MEDIA/FILE0001.MP4", "DCIM/100MEDIA/FILE0002.mov"]
    assert found[0].size_bytes == 1 and found[0].mtime_ns == 1_700_000_000 * 10**9


@pytest.mark.parametrize(
    "part", ["ok.mp4", "a b.mp4", ".hidden", "..", "-dash", "é€.mp4", "x" * 300 + ".mp4", "*"]
)
def test_safe_parts_fit_the_staged_alphabet(part: str) -> None:
    safe = safe_part(part)
    assert re.match(STAGED_PATH, f"dev/{safe}"), safe
    if part.endswith(".mp4"):
        assert safe.endswith(".mp4")


def test_colliding_names_get_a_suffix() -> None:
    taken: set[str] = set()
    first = staged_path_for("CAM", "DCIM/a b.mp4", taken)
    taken.add(first)
    second = staged_path_for("CAM", "DCIM/a_b.mp4", taken)
    taken.add(second)
    assert (first, second) == ("CAM/DCIM/a_b.mp4", "CAM/DCIM/a_b-1.mp4")
    assert staged_path_for("CAM", "DCIM/a?b.mp4", taken) == "CAM/DCIM/a_b-2.mp4"


def test_ingest_copies_with_checksums_and_manifests_then_skips(tmp_path: Path) -> None:
    card = tmp_path / "card"
    files = {"DCIM/100MEDIA/FILE0001.MP4": os.urandom(300_000), "DCIM/B 2.jpg": b"jpeg"}
    write_footage(card, files)
    ing = ingestor(tmp_path)
    got = ing.ingest(card, CAMERA)
    assert len(got.copied) == 2 and got.skipped == 0
    for m in got.copied:
        data = files[m.source_path]
        assert m.sha256 == hashlib.sha256(data).hexdigest()
        assert (tmp_path / "staging" / m.staged_path).read_bytes() == data
        assert (
            m.source_mtime_ns
            == 1_700_000_000 * 10**9
            == (tmp_path / "staging" / m.staged_path).stat().st_mtime_ns
        )
        assert ing.ledger.read(m.staged_path) == m
    assert {m.staged_path for m in got.copied} == {
        "67EF9CED/DCIM/100MEDIA/FILE0001.MP4",
        "67EF9CED/DCIM/B_2.jpg",
    }
    again = ing.ingest(card, CAMERA)
    assert again.copied == [] and again.skipped == 2


def test_a_reused_name_is_a_new_file(tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_footage(card, {"DCIM/FILE0001.MP4": b"first"})
    ing = ingestor(tmp_path)
    ing.ingest(card, CAMERA)
    write_footage(card, {"DCIM/FILE0001.MP4": b"second take"}, mtime=1_800_000_000)
    got = ing.ingest(card, CAMERA)
    assert [m.staged_path for m in got.copied] == ["67EF9CED/DCIM/FILE0001-1.MP4"]
    assert (tmp_path / "staging/67EF9CED/DCIM/FILE0001.MP4").read_bytes() == b"first"


def test_a_file_that_does_not_fit_is_refused_with_a_reason(tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_footage(card, {"big.mp4": b"x" * 1000, "small.mp4": b"y"})
    ing = ingestor(tmp_path, free=(64 << 20) + 500)
    got = ing.ingest(card, CAMERA)
    assert [m.source_path for m in got.copied] == ["small.mp4"]
    assert len(got.refused) == 1 and got.refused[0].startswith("big.mp4: 1000 bytes do not fit")
    assert not (tmp_path / "staging/67EF9CED/big.mp4").exists()


def test_clean_up_deletes_only_what_was_confirmed_and_still_matches(tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_footage(
        card, {"keep.mp4": b"unconfirmed", "go.mp4": b"confirmed", "tampered.mp4": b"AAAA"}
    )
    ing = ingestor(tmp_path)
    by_name = {m.source_path: m for m in ing.ingest(card, CAMERA).copied}
    for name in ("go.mp4", "tampered.mp4"):
        ing.ledger.write(by_name[name].model_copy(update={"offloaded": True}))
    # Same size and time, other bytes: only the hash can tell.
    write_footage(card, {"tampered.mp4": b"BBBB"})
    writable: list[bool] = []
    result = ing.clean_camera(card, CAMERA, lambda: writable.append(True))
    assert result.deleted == ["go.mp4"] and writable == [True]
    assert any(k.startswith("tampered.mp4: its bytes hash to") for k in result.kept)
    assert sorted(p.name for p in card.iterdir()) == ["keep.mp4", "tampered.mp4"]
    assert ing.ledger.read(by_name["go.mp4"].staged_path).camera_deleted_at_ns is not None  # type: ignore[union-attr]
    # Nothing more to delete: the card is not made writable again.
    assert ing.clean_camera(card, CAMERA, lambda: writable.append(True)).deleted == []
    assert writable == [True]


def test_clean_up_never_touches_another_camera(tmp_path: Path) -> None:
    card = tmp_path / "card"
    write_footage(card, {"a.mp4": b"a"})
    ing = ingestor(tmp_path)
    (m,) = ing.ingest(card, CAMERA).copied
    ing.ledger.write(m.model_copy(update={"offloaded": True}))
    other = FoundCamera(CAMERA.node, "sda1", "OTHER", CAMERA.usb)
    assert ing.clean_camera(card, other, lambda: None).deleted == []
    assert (card / "a.mp4").exists()


def test_a_stop_ends_a_copy_between_chunks_and_leaves_no_part_file(tmp_path: Path) -> None:
    src = tmp_path / "big.mp4"
    src.write_bytes(os.urandom(3 << 20))
    asked: list[int] = []

    def abort() -> bool:
        asked.append(1)
        return len(asked) > 1  # SIGTERM arrives during the second chunk

    with pytest.raises(CopyAborted):
        copy_hashed(src, tmp_path / "out" / "big.mp4", abort=abort)
    assert list((tmp_path / "out").iterdir()) == []
