"""``camfleet dashcam`` as a process (dry-run plan, SIGTERM), its preflight, and the
dashcam inside the agent (status and routes behind the token)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.preflight import check_key, check_programs, preflight
from node_agent.dashcam.settings import DashcamSettings
from node_agent.main import create_app
from node_agent.settings import load_agent_settings
from tests.dashcam_standin import FakeSysfs, StandInUploader
from tests.fakebin import FakeBin

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "dashcam-test-token-0123456789"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def dashcam_section(tmp_path: Path, fb: FakeBin, **camera: Any) -> dict[str, Any]:
    sysfs = FakeSysfs(tmp_path / "root")
    sysfs.add_usb()
    key = tmp_path / "id_ed25519"
    key.write_text("not a real key\n")
    key.chmod(0o600)
    return {
        "enabled": True,
        "upload": {"host": "127.0.0.1", "port": closed_port(), "ssh_key": str(key)},
        "camera": {
            "uhubctl": str(fb.add("uhubctl")),
            "sysfs_usb": str(sysfs.usb),
            "sysfs_block": str(sysfs.block),
            "dev_dir": str(sysfs.dev),
            "mount_base": str(tmp_path / "mnt" / "cam"),
            **camera,
        },
        "paths": {"local_staging": str(tmp_path / "staging")},
        "poll": {"interval_seconds": 3600},
    }


def write_config(tmp_path: Path, fb: FakeBin, **camera: Any) -> Path:
    config = {
        "node_id": "dash-1",
        "data_dir": str(tmp_path / "data"),
        "dashcam": dashcam_section(tmp_path, fb, **camera),
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fake_tools(fb: FakeBin) -> None:
    """Every other program the dashcam needs, as a fake on PATH (ssh cannot connect)."""
    for name in ("udevadm", "mount", "umount", "sync", "rsync"):
        fb.add(name)
    fb.add("ssh", exit_code=255)


def camfleet(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_dry_run_prints_the_plan_and_runs_no_tool(tmp_path: Path) -> None:
    fb = FakeBin(tmp_path)
    config = write_config(tmp_path, fb)
    uhubctl = fb.dir / "uhubctl"
    proc = camfleet("dashcam", "--config", str(config), "--dry-run", "--once", env=fb.env())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    for line in (
        f"would run: {uhubctl} -l 1-1 -a off",
        f"would run: {uhubctl} -l 1-1 -p 1 -a on",
        f"would write: 0 > {tmp_path / 'root/sys/bus/usb/devices/1-1.1/authorized'}",
        "dashcam cycle: 127.0.0.1 unreachable: the camera keeps recording",
        "dry run: nothing was run or changed",
    ):
        assert line in out, out
    assert fb.calls() == []
    assert not (tmp_path / "staging").exists() and not (tmp_path / "data").exists()


def test_sigterm_stops_cleanly_in_the_safe_state(tmp_path: Path) -> None:
    fb = FakeBin(tmp_path)
    fake_tools(fb)
    config = write_config(tmp_path, fb, safe_state="off")
    proc = camfleet("dashcam", "--config", str(config), env=fb.env())
    try:
        deadline = time.monotonic() + 30
        # Recording at start means the signal handlers are in place (they come first).
        while len(fb.argvs("uhubctl")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping the dashcam loop" in err
    assert [a[1:] for a in fb.argvs("uhubctl")] == [
        ["-l", "1-1", "-a", "off"],  # start disconnected
        ["-l", "1-1", "-p", "1", "-a", "on"],  # recording
        ["-l", "1-1", "-p", "1", "-a", "off"],  # camera.safe_state: off
    ]
    assert fb.calls("mount") == []


def test_preflight_refuses_to_start_and_names_the_fix(tmp_path: Path) -> None:
    fb = FakeBin(tmp_path)
    config = write_config(tmp_path, fb)
    env = fb.env({"PATH": str(fb.dir)})  # none of the other tools
    proc = camfleet("dashcam", "--config", str(config), "--once", env={**os.environ, **env})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "not found on PATH: udevadm, mount, umount, sync, rsync, ssh" in err
    assert "sudo apt-get install udev mount coreutils rsync openssh-client" in err
    assert fb.calls() == []


def test_preflight_names_missing_tools_and_scripts(tmp_path: Path) -> None:
    fb = FakeBin(tmp_path)
    for name in ("udevadm", "mount", "umount", "sync", "ssh"):
        fb.add(name)
    settings = DashcamSettings()
    (problem,) = check_programs(settings, path=str(fb.dir))
    assert str(problem) == (
        "not found on PATH: uhubctl, rsync: install with: sudo apt-get install uhubctl rsync"
    )
    data = fb.add("start-for-data.sh")
    rec = tmp_path / "start-for-recording.sh"
    rec.write_text("#!/bin/sh\n")  # not executable
    scripts = DashcamSettings.model_validate(
        {
            "camera": {
                "control": "scripts",
                "start_for_data": [str(data)],
                "start_for_recording": [str(rec)],
                "stop_all_ports": [str(tmp_path / "nope.sh")],
            }
        }
    )
    problems = [str(p) for p in check_programs(scripts, path=str(fb.dir))]
    assert problems == [
        "not found on PATH: rsync: install with: sudo apt-get install rsync",
        f"{rec} is not executable: run: sudo chmod +x {rec}",
        f"control script {tmp_path / 'nope.sh'} not found: copy the seed's control scripts "
        "there, or fix dashcam.camera.start_for_data / start_for_recording / stop_all_ports",
    ]


@pytest.mark.parametrize(
    ("mode", "ok"), [(0o600, True), (0o400, True), (0o644, False), (0o640, False)]
)
def test_the_upload_key_must_be_private(tmp_path: Path, mode: int, ok: bool) -> None:
    key = tmp_path / "id_rsa"
    key.write_text("k")
    key.chmod(mode)
    problem = check_key(key)
    assert (problem is None) == ok
    if not ok:
        assert str(problem).endswith(f"run: sudo chmod 600 {key}")
    missing = check_key(tmp_path / "none")
    assert missing is not None and "ssh-keygen" in missing.fix
    settings = DashcamSettings.model_validate({"upload": {"ssh_key": str(key)}})
    assert any("chmod 600" in str(p) for p in preflight(settings)) != ok


def test_the_agent_runs_the_dashcam_behind_its_token(tmp_path: Path) -> None:
    fb = FakeBin(tmp_path)
    settings = load_agent_settings(
        data_dir=tmp_path / "agent",
        api_token=TOKEN,
        dashcam=dashcam_section(tmp_path, fb),
    )
    app = create_app(settings)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://agent") as client,
        ):
            assert (await client.get("/api/v1/dashcam")).status_code == 401
            report = await client.get("/api/v1/dashcam", headers=auth)
            assert report.status_code == 200, report.text
            assert report.json()["manifests"] == [] and report.json()["total_manifests"] == 0
            too_few = await client.get("/api/v1/dashcam?limit=0", headers=auth)
            assert too_few.status_code == 422
            # The loop's own first cycle may still run: that is a 409, then ours runs.
            deadline = time.monotonic() + 20
            while (
                ran := await client.post("/api/v1/dashcam/run", headers=auth)
            ).status_code == 409:
                assert ran.json()["code"] == "dashcam_busy", ran.text
                assert time.monotonic() < deadline, "the loop's cycle never ended"
                await asyncio.sleep(0.05)
            assert ran.status_code == 200, ran.text
            assert ran.json()["last_cycle_result"].startswith("127.0.0.1 unreachable")
            status = (await client.get("/api/v1/status", headers=auth)).json()
            assert status["dashcam"]["state"] == "recording"
            ledger = Ledger(tmp_path / "staging")
            app.state.ctx.dashcam.uploader = StandInUploader(ledger)  # the NAS answers now
            with ledger.locked():  # a `camfleet dashcam` beside the agent holds the staging
                busy = await client.post("/api/v1/dashcam/run", headers=auth)
            assert busy.status_code == 409, busy.text
            assert "locked by another camfleet dashcam run" in busy.json()["detail"]

    asyncio.run(scenario())
    # started disconnected, then recording; left recording (safe_state) at shutdown
    assert [a[1:] for a in fb.argvs("uhubctl")] == [
        ["-l", "1-1", "-a", "off"],
        ["-l", "1-1", "-p", "1", "-a", "on"],
    ]
