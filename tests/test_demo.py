"""`camfleet demo`: one command gives a working three-camera fleet, and Ctrl-C ends it cleanly."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app import cli
from app import demo as demo_mod
from app.demo import CAMERAS
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
        # The lead may have been raised on a loaded machine: record 1.5 s past the start.
        time.sleep(max(0.0, (session["start_at_ns"] - time.time_ns()) / 1e9) + 1.5)
        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, _ = demo.communicate(timeout=40)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, printed + rest
    assert "camfleet demo: stopped." in rest
    # Ctrl-C stops the open session through the coordinator first: no session is left
    # recording, and each camera's file ends as a stop, not as a shutdown.
    assert f"stopped session {session['session_id']}: stopped" in rest
    for cam_id in ("CAM_L", "CAM_C", "CAM_R"):
        manifest = tmp_path / cam_id / "recordings" / f"{session['session_id']}_{cam_id}.json"
        data = json.loads(manifest.read_text())
        assert data["stop_reason"] == "stopped"
        assert data["frame_count"] >= 15
    assert not any(listening(p) for p in range(port, port + 4))


# --- the demo supervises its children like the systemd units ---------------------------


def unit_setting(unit: str, key: str) -> str:
    text = (Path(__file__).parent.parent / "deploy" / "systemd" / unit).read_text()
    return next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "="))


@pytest.mark.parametrize("unit", ["camfleet-agent.service", "camfleet-coordinator.service"])
def test_demo_restarts_as_the_systemd_units_say(unit: str) -> None:
    assert unit_setting(unit, "Restart") == "always"
    assert float(unit_setting(unit, "RestartSec")) == demo_mod.RESTART_SEC
    assert int(unit_setting(unit, "StartLimitBurst")) == demo_mod.START_LIMIT_BURST


def test_restart_policy_gives_up_after_the_burst_within_the_window() -> None:
    policy = demo_mod.RestartPolicy(restart_sec=2, burst=3, interval_s=30)
    assert policy.exited(100.0) == 102.0
    assert policy.exited(110.0) == 112.0
    assert policy.exited(135.0) == 137.0  # the exit at 100 s has left the window
    assert policy.exited(136.0) is None  # 110, 135, 136: three within 30 s


def test_agent_file_merges_under_the_demo_identity(tmp_path: Path) -> None:
    specs = demo_mod.plan(
        tmp_path,
        9000,
        "o" * 20,
        "f" * 20,
        {"camera": {"profiles": [{"width": 640, "height": 360, "fps": 10}]}, "cam_id": "CAM_X"},
        {"poll_interval_s": 7},
        {},
    )
    agent = yaml.safe_load(Path(specs[1].env["CAMFLEET_AGENT_CONFIG"]).read_text())
    # profiles replace the demo's one-profile shorthand instead of clashing with it
    assert agent["camera"] == {
        "source": "synthetic",
        "profiles": [{"width": 640, "height": 360, "fps": 10}],
    }
    assert specs[1].env["CAMFLEET_CAM_ID"] == "CAM_L"  # the environment wins over the file
    coord = yaml.safe_load(Path(specs[0].env["CAMFLEET_COORDINATOR_CONFIG"]).read_text())
    assert coord["poll_interval_s"] == 7 and coord["offline_after_s"] == 3
    with pytest.raises(demo_mod.DemoError, match=r"camera\.profiles"):
        demo_mod.plan(tmp_path, 9000, "o" * 20, "f" * 20, agent, {}, {"width": 320})


def test_a_child_that_keeps_dying_is_given_up_on(tmp_path: Path) -> None:
    port = free_port_range(1)
    spec = demo_mod.ChildSpec(
        "CAM_X", "agent", port, {"CAMFLEET_CAMERA__FPS": "not-a-number"}, tmp_path / "x.log"
    )
    out = io.StringIO()
    sup = demo_mod.Supervisor(
        [spec], out=out, policy=lambda: demo_mod.RestartPolicy(restart_sec=0.1, burst=3)
    )
    sup.start(spec)
    deadline = time.monotonic() + 40
    while "CAM_X" not in sup.failed:
        assert time.monotonic() < deadline, out.getvalue()
        sup.tick()
        time.sleep(0.05)
    report = out.getvalue()
    assert report.count("exited with code 2") == 3, report
    assert report.count("restarted CAM_X") == 2, report
    assert "exited 3 times in 30 s, so it is not restarted" in report
    assert "camera.fps" in (tmp_path / "x.log").read_text()


class DemoRun:
    """A `camfleet demo` process and what it printed so far."""

    def __init__(self, proc: subprocess.Popen[str], port: int, token: str, root: Path) -> None:
        self.proc, self.port, self.token, self.root = proc, port, token, root
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def close(self) -> None:
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float = 30.0) -> re.Match[str]:
        """The first printed line matching ``pattern``, waiting for it."""
        deadline = time.monotonic() + timeout_s
        while True:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n{self.output()}"
            assert self.proc.poll() is None, self.output()
            time.sleep(0.1)

    def pid(self, name: str, verb: str = "started") -> int:
        return int(self.wait_for(rf"{verb} {name} +pid (\d+)").group(1))

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )


@pytest.fixture(scope="module")
def running_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """`camfleet demo` with an agent and a coordinator config file, shared by the tests below."""
    root = tmp_path_factory.mktemp("demo")
    (root / "agent.yaml").write_text(
        "camera:\n  width: 320\n  height: 240\n  fps: 12\n"
        "  bitrate_bps: 1000000\n  bitrate_min_bps: 500000\n"
    )
    (root / "coordinator.yaml").write_text(
        "poll_interval_s: 0.5\nheartbeat_interval_s: 0.5\noffline_after_s: 1.5\n"
    )
    port = free_port_range(4)
    token = "demo-operator-token-for-restarts"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMFLEET_")}
    env["CAMFLEET_OPERATOR_TOKEN"] = token
    env["CAMFLEET_CAMERA__FPS"] = "7"  # the demo's own environment must not reach the agents
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "app.cli", "demo", "--port", str(port)),
            *("--data-dir", str(root / "data")),
            *("--agent-config", str(root / "agent.yaml")),
            *("--coordinator-config", str(root / "coordinator.yaml")),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = DemoRun(proc, port, token, root / "data")
    try:
        run.wait_for("Ctrl-C stops everything", timeout_s=60)
        yield run
        proc.send_signal(signal.SIGINT)
        proc.wait(40)
        assert proc.returncode == 0, run.output()
        assert "camfleet demo: stopped." in run.output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        run.close()


def wait_nodes(
    demo: DemoRun, until: Callable[[dict[str, Any]], bool], timeout_s: float = 20.0
) -> dict[str, Any]:
    with demo.client() as c:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                body: dict[str, Any] = c.get("/api/v1/nodes").json()
            except httpx.HTTPError as err:  # the coordinator is still starting
                body = {"error": str(err)}
            if "error" not in body and until(body):
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.1)


def node(body: dict[str, Any], cam_id: str) -> dict[str, Any]:
    return next(n for n in body["nodes"] if n["cam_id"] == cam_id)


def test_agent_config_reaches_every_agent(running_demo: DemoRun) -> None:
    body = wait_nodes(
        running_demo, lambda b: b["online"] == 3 and all(n["status"] for n in b["nodes"])
    )
    recorders = {n["cam_id"]: n["status"]["recorder"] for n in body["nodes"]}
    assert sorted(recorders) == ["CAM_C", "CAM_L", "CAM_R"]
    for r in recorders.values():
        assert (r["width"], r["height"], r["fps"], r["bitrate_bps"]) == (320, 240, 12, 1_000_000)


def test_killed_agent_is_reported_restarted_and_back(running_demo: DemoRun) -> None:
    wait_nodes(running_demo, lambda b: b["online"] == 3)
    old_pid = running_demo.pid("CAM_R")
    killed_at = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    running_demo.wait_for(rf"CAM_R \(pid {old_pid}\) killed by SIGKILL; restarting it in 2 s")
    new_pid = running_demo.pid("CAM_R", verb="restarted")
    assert new_pid != old_pid
    wait_nodes(running_demo, lambda b: not node(b, "CAM_R")["online"])
    body = wait_nodes(
        running_demo,
        lambda b: (
            node(b, "CAM_R")["online"]
            and node(b, "CAM_R")["status"]["uptime_s"] < time.monotonic() - killed_at
        ),
    )
    assert body["online"] == 3


def agent_status(demo: DemoRun, cam_id: str, port: int) -> dict[str, Any]:
    token = (demo.root / cam_id / "api_token").read_text().strip()
    resp = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/status",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    resp.raise_for_status()
    return dict(resp.json())


def test_killed_coordinator_comes_back_and_stop_collects_every_manifest(
    running_demo: DemoRun,
) -> None:
    wait_nodes(running_demo, lambda b: b["online"] == 3)
    with running_demo.client() as c:
        session = c.post("/api/v1/sessions", json={"lead_ms": 300}).json()
    assert all(n["start"]["ok"] for n in session["nodes"]), session
    sid = session["session_id"]
    time.sleep(1.0)
    old_pid = running_demo.pid("coordinator")
    os.kill(old_pid, signal.SIGKILL)
    running_demo.wait_for(rf"coordinator \(pid {old_pid}\) killed by SIGKILL")
    # while the coordinator is down, every camera records on
    frames = {}
    for i, (cam_id, _) in enumerate(CAMERAS, start=1):
        status = agent_status(running_demo, cam_id, running_demo.port + i)["recorder"]
        assert (status["state"], status["session_id"]) == ("recording", sid), status
        frames[cam_id] = status["frames"]
    assert running_demo.pid("coordinator", verb="restarted") != old_pid
    wait_nodes(running_demo, lambda b: b["online"] == 3)
    with running_demo.client() as c:
        stopped = c.post(f"/api/v1/sessions/{sid}/stop").json()
    assert stopped["state"] == "stopped", stopped
    for n in stopped["nodes"]:
        assert n["stop"]["ok"], n
        assert n["sha256"] and n["frame_count"] > frames[n["cam_id"]], n
        manifest = running_demo.root / n["cam_id"] / "recordings" / f"{sid}_{n['cam_id']}.json"
        assert json.loads(manifest.read_text())["sha256"] == n["sha256"]
    assert sorted(n["cam_id"] for n in stopped["nodes"]) == ["CAM_C", "CAM_L", "CAM_R"]


def test_url_goes_before_or_after_the_command(
    running_demo: DemoRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMFLEET_OPERATOR_TOKEN", running_demo.token)
    assert cli.main(["--url", running_demo.url, "nodes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 3
    dead = f"http://127.0.0.1:{free_port_range(1)}"
    assert (
        cli.main(["--url", dead, "nodes", "--json", "--url", running_demo.url]) == 0
    )  # after wins
    assert json.loads(capsys.readouterr().out)["total"] == 3
    assert cli.main(["--url", dead, "nodes"]) == 2
    assert "cannot reach the coordinator" in capsys.readouterr().err
    monkeypatch.setenv("CAMFLEET_URL", running_demo.url)
    assert cli.main(["nodes"]) == 0
    assert "CAM_L" in capsys.readouterr().out  # the table
