"""`camfleet demo`: one command gives a working three-camera fleet, and Ctrl-C ends it cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.common import free_port_range

pytestmark = pytest.mark.slow


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_runs_the_fleet_and_finishes_recordings_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port_range(4)
    token = "demo-operator-token-for-tests"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMFLEET_")}
    env["CAMFLEET_OPERATOR_TOKEN"] = token
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "demo",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
            "--width",
            "320",
            "--height",
            "240",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        printed = ""
        deadline = time.monotonic() + 60
        while "Ctrl-C stops everything" not in printed:
            line = demo.stdout.readline()
            assert line or demo.poll() is None, printed
            printed += line
            assert time.monotonic() < deadline, printed
        assert f"http://127.0.0.1:{port}/?token={token}" in printed
        assert f"http://127.0.0.1:{port}/docs?token={token}" in printed
        assert f"Operator token:  {token}" in printed

        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        ) as c:
            deadline = time.monotonic() + 20
            while c.get("/api/v1/nodes").json()["online"] < 3:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            nodes = c.get("/api/v1/nodes").json()["nodes"]
            assert sorted((n["cam_id"], n["position"]) for n in nodes) == [
                ("CAM_C", "centre"),
                ("CAM_L", "left"),
                ("CAM_R", "right"),
            ]
            session = c.post("/api/v1/sessions", json={"lead_ms": 300}).json()
            assert all(n["start"]["ok"] for n in session["nodes"])
        time.sleep(1.5)
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, _ = demo.communicate(timeout=40)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, printed + rest
    assert "camfleet demo: stopped." in rest
    for cam_id in ("CAM_L", "CAM_C", "CAM_R"):
        manifest = tmp_path / cam_id / "recordings" / f"{session['session_id']}_{cam_id}.json"
        data = json.loads(manifest.read_text())
        assert data["stop_reason"] == "agent shutdown"
        assert data["frame_count"] >= 30
    assert not any(listening(p) for p in range(port, port + 4))
