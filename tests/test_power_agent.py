"""The power monitor in a real agent process: the battery from a command whose percent the
test writes, recordings on a loop-mounted ext2 image, and a fake ``systemctl`` (an absolute
path) that records whether that disk was still mounted when it was asked to power off.

The battery dropping under ``power.shutdown_percent`` must finish the recording (file and
manifest), ``sync``, unmount the disk and only then power off; on AC nothing happens at
any percent; a start under ``gates.min_battery_percent`` is a 409 naming the battery.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import pytest

from bench.common import machine_lock
from tests.fakebin import FakeBin
from tests.solo_agent import SoloAgent, solo_agent
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def mounted(path: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


@contextmanager
def loop_disk(root: Path, size: str = "48M") -> Iterator[tuple[str, Path]]:
    """An ext2 image on a loop device mounted at ``root/disk``; (device, mount point).
    Unmounted and detached afterwards, whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("loop-mounting an image needs root")
    image, mount = root / "recordings.img", root / "disk"
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.ext2", "-q", "-F", str(image)], check=True)
    with machine_lock("loop-devices"):  # one test at a time attaches, mounts and detaches
        attach = subprocess.run(
            ["losetup", "-f", "--show", str(image)], capture_output=True, text=True
        )
        if attach.returncode != 0:
            pytest.skip(f"no loop device here: {attach.stderr.strip()}")
        device = attach.stdout.strip()
        try:
            mount.mkdir()
            subprocess.run(["mount", device, str(mount)], check=True)
            yield device, mount
        finally:
            if mounted(mount) and subprocess.run(["umount", str(mount)]).returncode != 0:
                subprocess.run(["umount", "-l", str(mount)], check=True)
            subprocess.run(["losetup", "-d", device], check=True)


class BatteryFile:
    """The battery a command reads: the test writes its percent and AC state."""

    def __init__(self, root: Path) -> None:
        self.state = root / "battery.json"
        self.script = root / "battery-info.sh"
        self.script.write_text(f"#!/bin/sh\ncat {self.state}\n")
        self.script.chmod(0o755)
        self.set(80)

    def set(self, percent: float, on_ac: bool = False) -> None:
        text = json.dumps({"battery_percent": percent, "battery_voltage": 3.3, "on_ac": on_ac})
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.state)  # the command never reads half a file


def power_env(battery: BatteryFile, systemctl: Path, fake: FakeBin | None = None) -> dict[str, str]:
    env = {
        "CAMFLEET_POWER__PROVIDER": "command",
        "CAMFLEET_POWER__COMMAND": json.dumps([str(battery.script)]),
        "CAMFLEET_POWER__POLL_INTERVAL_S": "0.2",
        "CAMFLEET_POWER__SHUTDOWN_COMMAND": json.dumps([str(systemctl), "poweroff"]),
    }
    if fake is not None:
        env["PATH"] = f"{fake.dir}{os.pathsep}{os.environ['PATH']}"
    return env


def power(agent: SoloAgent) -> dict[str, Any]:
    return dict(agent.status()["power"])


def newer_reading(agent: SoloAgent, seen_ns: int) -> Callable[[], bool]:
    return lambda: bool(power(agent)["reading"]["read_at_ns"] > seen_ns)


def start(agent: SoloAgent, session: str) -> Any:
    return agent.client.post(
        "/api/v1/recording/start", json={"session_id": session, "command_id": f"{session}-a"}
    )


def test_start_refused_under_the_gate_and_ac_ignores_every_threshold(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    systemctl = fake.add("systemctl")
    battery = BatteryFile(tmp_path)
    battery.set(52)  # under gates.min_battery_percent (55), over disconnect (50)
    with solo_agent(tmp_path, **power_env(battery, systemctl)) as agent:
        wait_for("level low", lambda: power(agent)["level"] == "low")
        refused = start(agent, "P1")
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert "battery" in detail and "52.0 %" in detail and "55 %" in detail

        battery.set(5, on_ac=True)
        wait_for("level ac", lambda: power(agent)["level"] == "ac")
        ok = start(agent, "P2")
        assert ok.status_code == 200, ok.text
        # Several more readings at 5 % on AC: nothing happens.
        for _ in range(3):
            wait_for("a new reading", newer_reading(agent, power(agent)["reading"]["read_at_ns"]))
        status = agent.status()
        assert status["recorder"]["state"] == "recording"
        assert status["power"]["level"] == "ac" and not status["power"]["shutting_down"]
        assert fake.calls() == []
        metrics = agent.client.get("/metrics").text
        assert 'camfleet_collector_success{cam_id="CAM_C",collector="power",node="cam-c"} 1.0' in (
            metrics
        )
        assert 'camfleet_power_battery_percent{cam_id="CAM_C",node="cam-c"} 5.0' in metrics
        assert 'camfleet_power_on_ac{cam_id="CAM_C",node="cam-c"} 1.0' in metrics


def test_battery_under_shutdown_finishes_the_recording_unmounts_the_disk_then_powers_off(
    tmp_path: Path,
) -> None:
    fake = FakeBin(tmp_path)
    real_sync, real_umount = shutil.which("sync"), shutil.which("umount")
    assert real_sync and real_umount
    with loop_disk(tmp_path) as (device, disk):
        recordings = disk / "recordings"
        saw = tmp_path / "sync-saw.txt"
        state = tmp_path / "poweroff-saw.txt"
        # Faithful stand-ins that log their call, then do the real thing.
        fake.add("sync", script=f'ls {recordings} > {saw}\nexec {real_sync} "$@"')
        fake.add("umount", script=f'exec {real_umount} "$@"')
        systemctl = fake.add(
            "systemctl",
            script=f"if mountpoint -q {disk}; then echo mounted; else echo unmounted; fi > {state}",
        )
        battery = BatteryFile(tmp_path)
        env = power_env(battery, systemctl, fake) | {"CAMFLEET_RECORDINGS_DIR": str(recordings)}
        with solo_agent(tmp_path, **env) as agent:
            wait_for("level ok", lambda: power(agent)["level"] == "ok")
            assert start(agent, "B1").status_code == 200
            wait_for("frames", lambda: agent.status()["recorder"]["frames"] > 15)
            battery.set(20)
            wait_for("poweroff", lambda: fake.calls("systemctl"), timeout_s=60)
            # The fake logs its call before it returns; the monitor notes it after.
            wait_for(
                "poweroff noted",
                lambda: any(a.endswith("poweroff: ok") for a in power(agent)["actions"]),
            )
            status = agent.status()
            p = status["power"]
            assert p["level"] == "shutdown" and p["shutting_down"]
            assert status["recorder"]["state"] == "idle"
            assert status["recorder"]["last_stop_reason"] == "battery under 25 %"
        assert fake.argvs() == [["sync"], ["umount", str(disk)], ["systemctl", "poweroff"]]
        assert state.read_text().strip() == "unmounted"
        on_disk_at_sync = saw.read_text().split()
        assert "B1_CAM_C.json" in on_disk_at_sync
        assert not [n for n in on_disk_at_sync if n.endswith(".tmp") or n.startswith(".")]
        # The order, as the monitor noted it: the recording finished before the disk went.
        steps = [a.split(" ", 1)[1] for a in p["actions"]]
        order = [
            "disconnect step stop_recording done",
            "shutdown step stop_housekeeper done",
            "sync: ok",
            f"umount {disk}: ok",
            f"{systemctl} poweroff: ok",
        ]
        assert [s for s in steps if s in order] == order, steps

        subprocess.run(["mount", "-o", "ro", device, str(disk)], check=True)
        manifest = json.loads((recordings / "B1_CAM_C.json").read_text())
        video = recordings / manifest["file_name"]
        assert manifest["stop_reason"] == "battery under 25 %" and not manifest["interrupted"]
        assert video.stat().st_size == manifest["size_bytes"]
        assert hashlib.sha256(video.read_bytes()).hexdigest() == manifest["sha256"]
        with av.open(str(video)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames == manifest["frame_count"] > 15
