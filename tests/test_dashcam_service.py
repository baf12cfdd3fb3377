"""The dashcam loop over stand-ins: a fake uhubctl/udevadm/mount (FakeBin), a fake sysfs, a
folder as the camera's card, and an in-test uploader. The seed's field scenarios: no
network, host reachable, battery under disconnect, AC, overlapping runs, dry-run."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path

import pytest

from bench.dashcam import stage_file
from node_agent.dashcam.errors import DashcamBusy
from node_agent.dashcam.schemas import DashcamState
from node_agent.power.policy import START, Thresholds, decide
from node_agent.power.schemas import PowerLevel, PowerReading
from tests.dashcam_standin import AC_LOW, DISCONNECT, MAINS, Rig, make_rig, write_footage

ON = ["-l", "1-1", "-p", "1", "-a", "on"]
OFF = ["-l", "1-1", "-p", "1", "-a", "off"]
ALL_OFF = ["-l", "1-1", "-a", "off"]
FILES = {
    "DCIM/100MEDIA/FILE0001.MP4": b"\x00\x01" * 40_000,
    "DCIM/100MEDIA/FILE0002.MP4": b"second" * 1000,
    "DCIM/100MEDIA/notes.txt": b"not footage",
}


def with_card(tmp_path: Path, **kw: object) -> tuple[Rig, Path]:
    """A rig whose camera shows a block device standing for the folder ``card``."""
    rig = make_rig(tmp_path, **kw)  # type: ignore[arg-type]
    card = tmp_path / "card"
    write_footage(card, FILES)
    rig.sysfs.add_block(node_target=str(card))
    return rig, card


def cycle(rig: Rig) -> str:
    async def go() -> str:
        status = await rig.dashcam.cycle()
        return status.last_cycle_result or ""

    return asyncio.run(go())


def start(rig: Rig) -> None:
    asyncio.run(rig.dashcam.start(loop=False))


def test_no_network_keeps_the_camera_recording(tmp_path: Path) -> None:
    rig, _ = with_card(tmp_path, reachable=False)
    start(rig)
    assert rig.uhubctl() == [ALL_OFF, ON] and rig.authorized() == "0"
    result = cycle(rig)
    assert "unreachable: the camera keeps recording" in result
    assert rig.uhubctl() == [ALL_OFF, ON]  # no data mode
    assert rig.fakebin.calls("udevadm") == [] and rig.fakebin.calls("mount") == []
    assert rig.uploader.calls == 0
    status = rig.dashcam.status()
    assert status.state == DashcamState.recording and status.host_reachable is False


def test_home_copies_with_checksums_back_to_recording_then_uploads(tmp_path: Path) -> None:
    rig, card = with_card(tmp_path)
    start(rig)
    result = cycle(rig)
    assert "copied 2 new file(s) from 67EF9CED" in result, result
    assert "2 of 2 staged file(s) confirmed on the NAS" in result
    order = [c[0] for c in rig.fakebin.argvs()]
    assert order == [
        "uhubctl",
        "uhubctl",
        "uhubctl",
        "udevadm",
        "mount",
        "sync",
        "umount",
        "uhubctl",
    ]
    assert rig.uhubctl()[2:] == [ON, ON] and rig.authorized() == "0"  # back to recording
    target = str(tmp_path / "mnt" / "cam-67EF9CED")
    assert rig.fakebin.argvs("mount") == [
        ["mount", "-o", "ro,nosuid,nodev,noexec", str(rig.sysfs.dev / "sda1"), target]
    ]
    assert rig.fakebin.argvs("umount") == [["umount", target]]
    manifests = rig.ledger.manifests()
    assert {m.source_path for m in manifests} == set(list(FILES)[:2])
    for m in manifests:
        assert m.sha256 == hashlib.sha256(FILES[m.source_path]).hexdigest()
        assert m.offloaded and not rig.ledger.staged_file(m).exists()
        assert m.camera_deleted_at_ns is None  # confirmed after the card was unmounted
    assert rig.uploader.calls == 1
    status = rig.dashcam.status()
    assert (status.ingested_total, status.uploaded_total, status.pending_upload) == (2, 2, 0)
    assert status.state == DashcamState.recording and status.last_error is None

    # The next visit home: the camera's copies of the confirmed files are hashed again and
    # deleted (the card remounted read-write for it); the note is left.
    result = cycle(rig)
    assert "2 deleted from the camera" in result and "0 new file(s)" in result
    assert sorted(p.name for p in (card / "DCIM/100MEDIA").iterdir()) == ["notes.txt"]
    assert ["mount", "-o", "remount,rw,nosuid,nodev,noexec", target] in rig.fakebin.argvs("mount")
    assert all(m.camera_deleted_at_ns for m in rig.ledger.manifests())


def test_nothing_is_deleted_from_the_camera_when_the_nas_did_not_confirm(tmp_path: Path) -> None:
    rig, card = with_card(tmp_path)
    rig.uploader.confirm = False
    start(rig)
    cycle(rig)
    cycle(rig)
    assert sorted(p.name for p in (card / "DCIM/100MEDIA").iterdir()) == [
        "FILE0001.MP4",
        "FILE0002.MP4",
        "notes.txt",
    ]
    assert all(rig.ledger.staged_file(m).exists() for m in rig.ledger.manifests())
    assert rig.dashcam.status().failed_total == 4  # two files, two failed attempts each
    assert not any("remount" in " ".join(a) for a in rig.fakebin.argvs("mount"))


def test_battery_under_disconnect_powers_the_camera_off_once(tmp_path: Path) -> None:
    rig, _ = with_card(tmp_path)
    powered: list[bool | None] = []
    rig.dashcam.on_camera = powered.append  # the power monitor's camera_powered
    start(rig)
    rig.power.append(DISCONNECT)
    assert cycle(rig).startswith("camera off: battery at 40.0 %")
    cycle(rig)
    assert rig.uhubctl() == [ALL_OFF, ON, OFF]  # once, not every cycle
    assert rig.uploader.reachable_calls == 0 and rig.fakebin.calls("mount") == []
    assert rig.dashcam.status().state == DashcamState.camera_off
    assert powered == [False, True, False]
    rig.power.append(MAINS)  # charged again: recording first, then the copy
    cycle(rig)
    assert rig.uhubctl()[3:5] == [ON, ON] and len(rig.ledger.manifests()) == 2


def test_on_ac_the_thresholds_are_ignored(tmp_path: Path) -> None:
    now = time.time_ns()
    low = PowerReading(provider="command", ok=True, percent=10.0, on_ac=False, read_at_ns=now)
    charging = low.model_copy(update={"on_ac": True})
    # Two readings on battery at 10 %: the camera goes off (the policy's own decision).
    on_battery = decide(
        low, now, decide(low, now, START, Thresholds(), "command"), Thresholds(), "command"
    )
    assert on_battery.camera_on is False
    rig, _ = with_card(tmp_path, power=decide(charging, now, START, Thresholds(), "command"))
    assert rig.power[-1].level == PowerLevel.ac == AC_LOW.level
    start(rig)
    result = cycle(rig)
    assert "copied 2 new file(s)" in result and rig.uploader.calls == 1
    rig.power.append(on_battery)
    cycle(rig)
    assert rig.uhubctl()[-1] == OFF


def test_a_second_run_while_the_staging_lock_is_held_is_refused(tmp_path: Path) -> None:
    rig, _ = with_card(tmp_path)
    start(rig)
    with rig.ledger.locked():  # another camfleet dashcam run (a flock of its own)
        assert "locked by another camfleet dashcam run" in cycle(rig)
        with pytest.raises(DashcamBusy):
            asyncio.run(rig.dashcam.run_now())
    assert rig.fakebin.calls("mount") == [] and rig.uhubctl() == [ALL_OFF, ON]
    assert "copied 2" in cycle(rig)  # free again


def test_a_failing_step_is_recorded_and_the_next_cycle_retries(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)  # the camera has no block device yet
    write_footage(tmp_path / "card", FILES)
    start(rig)
    result = cycle(rig)
    assert result.startswith("failed:") and "gave no block device in 0.5 s" in result
    assert rig.dashcam.status().last_error == result
    assert rig.uhubctl()[-1] == ON and rig.authorized() == "0"  # back to recording
    assert rig.fakebin.calls("mount") == [] and rig.uploader.calls == 0
    rig.sysfs.add_block(node_target=str(tmp_path / "card"))
    assert "copied 2" in cycle(rig)
    assert rig.dashcam.status().last_error is None


def test_footage_staged_earlier_is_uploaded_even_when_the_camera_cannot_be_read(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)  # the camera shows no block device this time
    card = tmp_path / "earlier-card"
    write_footage(card, {"DCIM/OLD0001.MP4": b"from the last visit" * 100})
    ledger = rig.dashcam.ledger
    staged = stage_file(ledger, card / "DCIM/OLD0001.MP4", "DCIM/OLD0001.MP4", "DEV1/OLD0001.MP4")
    start(rig)
    result = cycle(rig)
    assert result.startswith("failed: copy failed:") and "gave no block device" in result
    assert result.endswith("1 of 1 staged file(s) confirmed on the NAS"), result
    assert rig.uploader.calls == 1
    after = ledger.read(staged.staged_path)
    assert after is not None and after.offloaded
    assert rig.dashcam.status().last_error == result
    assert rig.uhubctl()[-1] == ON  # the camera went back to recording


def test_dry_run_logs_the_plan_and_runs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig, card = with_card(tmp_path, dry_run=True)
    before = {p: p.read_bytes() for p in card.rglob("*") if p.is_file()}
    caplog.set_level(logging.INFO)
    start(rig)
    result = cycle(rig)
    assert result.startswith("dry run: would copy new footage from 1-1.1 0bda:0129"), result
    text = caplog.text
    uhubctl = rig.settings.camera.uhubctl
    for line in (
        f"would run: {uhubctl} -l 1-1 -a off",
        f"would run: {uhubctl} -l 1-1 -p 1 -a on",
        f"would write: 1 > {rig.sysfs.usb / '1-1.1' / 'authorized'}",
        f"would run: {rig.dashcam.mounter.tools.mount} -o ro,nosuid,nodev,noexec",
        f"would copy new footage from {tmp_path / 'mnt' / 'cam-67EF9CED'}",
        f"would run: {rig.dashcam.mounter.tools.umount}",
    ):
        assert line in text, line
    assert rig.fakebin.calls() == []  # no fake tool was called, udevadm neither
    assert not (tmp_path / "staging").exists()
    assert rig.authorized() == "1" and not (tmp_path / "mnt").exists()
    assert {p: p.read_bytes() for p in card.rglob("*") if p.is_file()} == before


def test_the_loop_runs_and_stop_leaves_the_safe_state(tmp_path: Path) -> None:
    rig, _ = with_card(tmp_path, camera={"safe_state": "off", "after_copy": "off"})

    async def scenario() -> None:
        await rig.dashcam.start()
        for _ in range(200):  # the loop's first cycle, at once
            if rig.dashcam.status().last_cycle_at_ns:
                break
            await asyncio.sleep(0.02)
        await rig.dashcam.stop()

    asyncio.run(scenario())
    assert len(rig.ledger.manifests()) == 2
    # after the copy: off (camera.after_copy); at stop: still off, not switched again
    assert rig.uhubctl() == [ALL_OFF, ON, ON, OFF]
    assert rig.dashcam.status().state == DashcamState.camera_off


def test_run_now_while_a_cycle_runs_is_busy(tmp_path: Path) -> None:
    rig, _ = with_card(tmp_path)
    release = asyncio.Event()
    entered = asyncio.Event()
    plain = rig.uploader.upload_pending

    async def slow_upload() -> list[object]:
        entered.set()
        await release.wait()
        return list(await plain())

    rig.uploader.upload_pending = slow_upload  # type: ignore[method-assign,assignment]

    async def scenario() -> None:
        await rig.dashcam.start(loop=False)
        first = asyncio.create_task(rig.dashcam.cycle())
        await entered.wait()
        assert rig.dashcam.running and rig.dashcam.status().state == DashcamState.uploading
        with pytest.raises(DashcamBusy, match="a dashcam cycle is running"):
            await rig.dashcam.run_now()
        release.set()
        assert "2 of 2 staged file(s) confirmed" in ((await first).last_cycle_result or "")

    asyncio.run(scenario())
