"""The dashcam loop against a real card: an ext2 image on a loop device, mounted for real
(``mount -o ro,nosuid,nodev,noexec``) through a fake sysfs whose device node links to the
real ``/dev/loopN``. The kernel here has no vfat; a dashcam's FAT card mounts the same way.
Needs root, ``losetup``, ``mkfs.ext2`` (e2fsprogs) and ``mount`` (CI runs as root)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from node_agent.dashcam.mount import MountTools
from node_agent.dashcam.schemas import IngestManifest
from tests.dashcam_standin import Rig, loop_card, make_rig, mounted_targets
from tests.fakebin import FakeBin

FILES = {
    "DCIM/100MEDIA/FILE0001.MP4": os.urandom(1_500_000),
    "DCIM/100MEDIA/FILE0002.MP4": os.urandom(700_000),
    "DCIM/100MEDIA/FILE0003.MP4": os.urandom(300_000),
}
ON = ["-l", "1-1", "-p", "1", "-a", "on"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices need root (CI is root)")


def real_tools(tmp_path: Path) -> MountTools:
    # Real mount and umount; sync is a fake: umount flushes the card itself, and a
    # machine-wide sync would time the test by whatever else this machine writes.
    return MountTools("mount", "umount", str(FakeBin(tmp_path).add("sync")))


def card_files(loop: Path, tmp_path: Path) -> dict[str, bytes]:
    """What is on the card now (mounted read-only for a look, then unmounted)."""
    look = tmp_path / "look"
    look.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "ro", str(loop), str(look)], check=True)
    try:
        return {
            p.relative_to(look).as_posix(): p.read_bytes() for p in look.rglob("*") if p.is_file()
        }
    finally:
        subprocess.run(["umount", str(look)], check=True)


def rig_on(tmp_path: Path, loop: Path, **kw: object) -> Rig:
    rig = make_rig(tmp_path, tools=real_tools(tmp_path), **kw)  # type: ignore[arg-type]
    rig.sysfs.add_block(node_target=loop)  # /dev/sda1 -> the real /dev/loopN
    return rig


def test_a_real_card_is_copied_read_only_unmounted_and_cleaned_after_confirm(
    tmp_path: Path,
) -> None:
    with loop_card(tmp_path, FILES) as loop:
        seen_mounts: list[list[str]] = []

        def while_copying(_m: IngestManifest) -> None:
            seen_mounts.append(
                [
                    line.split()[3]
                    for line in Path("/proc/mounts").read_text().splitlines()
                    if line.split()[0] == str(loop)
                ]
            )

        rig = rig_on(tmp_path, loop, on_copied=while_copying)

        async def two_visits() -> tuple[str, str]:
            await rig.dashcam.start(loop=False)
            first = (await rig.dashcam.cycle()).last_cycle_result or ""
            second = (await rig.dashcam.cycle()).last_cycle_result or ""
            await rig.dashcam.stop()
            return first, second

        first, second = asyncio.run(two_visits())
        assert "copied 3 new file(s) from 67EF9CED" in first, first
        assert "3 of 3 staged file(s) confirmed on the NAS" in first
        assert len(seen_mounts) == 3
        for options in seen_mounts:
            (opts,) = options
            assert {"ro", "nosuid", "nodev", "noexec"} <= set(opts.split(","))
        for m in rig.ledger.manifests():
            assert m.sha256 == hashlib.sha256(FILES[m.source_path]).hexdigest()
            assert m.offloaded and m.camera_deleted_at_ns is not None
        assert "3 deleted from the camera" in second, second
        assert mounted_targets(loop) == []
        assert card_files(loop, tmp_path) == {}
        assert rig.uhubctl()[-1] == ON and rig.authorized() == "0"


def test_stop_mid_copy_unmounts_and_leaves_the_safe_state(tmp_path: Path) -> None:
    with loop_card(tmp_path, FILES) as loop:
        holder: list[Rig] = []

        def stop_after_the_first(_m: IngestManifest) -> None:
            holder[0].dashcam.request_stop()  # what the SIGTERM handler does

        rig = rig_on(tmp_path, loop, on_copied=stop_after_the_first)
        holder.append(rig)

        async def scenario() -> str:
            await rig.dashcam.start(loop=False)
            result = (await rig.dashcam.cycle()).last_cycle_result or ""
            await rig.dashcam.stop()
            return result

        result = asyncio.run(scenario())
        assert "copied 1 new file(s)" in result and "stopped before the upload" in result
        assert mounted_targets(loop) == []
        programs = [Path(c.argv[0]).name for c in rig.dashcam.runner.recent()]
        assert programs[programs.index("mount") :] == ["mount", "sync", "umount", "uhubctl"]
        assert rig.uhubctl()[-1] == ON and rig.authorized() == "0"  # safe_state recording
        assert rig.uploader.calls == 0
        (m,) = rig.ledger.manifests()
        assert rig.ledger.staged_file(m).read_bytes() == FILES[m.source_path]
        leftovers = [p for p in (tmp_path / "staging").rglob("*") if ".part-" in p.name]
        assert leftovers == []
        assert card_files(loop, tmp_path) == FILES  # nothing unconfirmed is deleted
