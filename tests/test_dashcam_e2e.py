"""The whole dashcam path with no stand-in between the camera and the NAS: a real ext2
card on a loop device (the kernel here has no vfat), mounted read-only for real, copied
into staging, uploaded by the real uploader with real rsync to a real sshd on loopback,
confirmed by the NAS's own sha256sum, staging cleaned; at the next visit the camera's
copies are hashed again and deleted. USB switching is the fake uhubctl and fake sysfs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from node_agent.dashcam.mount import MountTools
from node_agent.dashcam.settings import PollSettings
from node_agent.dashcam.upload import Uploader
from tests.dashcam_standin import loop_card, make_rig, mounted_targets
from tests.fakebin import FakeBin
from tests.sshd import Sshd, running_sshd, upload_settings

FILES = {
    "DCIM/100MEDIA/FILE0001.MP4": os.urandom(900_000),
    "DCIM/100MEDIA/FILE0002.MP4": os.urandom(400_000),
    "DCIM/101MEDIA/FILE0003.MOV": os.urandom(200_000),
}
ON = ["-l", "1-1", "-p", "1", "-a", "on"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices need root (CI is root)")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def test_home_from_card_to_nas_confirmed_then_the_card_is_cleaned(
    tmp_path: Path, sshd: Sshd
) -> None:
    nas = tmp_path / "nas"
    nas.mkdir()
    with loop_card(tmp_path, FILES) as loop:
        tools = MountTools("mount", "umount", str(FakeBin(tmp_path).add("sync")))
        rig = make_rig(tmp_path, tools=tools)
        rig.sysfs.add_block(node_target=loop)
        rig.dashcam.uploader = Uploader(
            upload_settings(sshd, nas),
            PollSettings(),
            rig.ledger,
            rig.dashcam.runner,
            tmp_path / "data",
            "dash-1",
            "CAM_C",
        )

        async def two_visits() -> tuple[str, str]:
            await rig.dashcam.start(loop=False)
            first = (await rig.dashcam.cycle()).last_cycle_result or ""
            second = (await rig.dashcam.cycle()).last_cycle_result or ""
            await rig.dashcam.stop()
            return first, second

        first, second = asyncio.run(two_visits())
        assert "copied 3 new file(s)" in first and "3 of 3 staged file(s) confirmed" in first
        for m in rig.ledger.manifests():
            assert (nas / "CAM_C" / m.staged_path).read_bytes() == FILES[m.source_path]
            assert m.offloaded and m.staging_deleted_at_ns and m.camera_deleted_at_ns
            assert not rig.ledger.staged_file(m).exists()
        assert "3 deleted from the camera" in second, second
        assert mounted_targets(loop) == []
        assert rig.uhubctl()[-1] == ON and rig.authorized() == "0"
        status = rig.dashcam.status()
        assert (status.uploaded_total, status.pending_upload, status.staged_files) == (3, 0, 0)
