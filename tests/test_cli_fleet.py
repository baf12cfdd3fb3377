"""`camfleet fleet ...`, `session`, `sessions`, `recordings` as a person who scripts runs
them: the real console script against a coordinator and three agents on loopback."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import CAMERAS, RunningFleet

pytestmark = pytest.mark.slow

COOL, HOT = "40000", "95000"  # millidegrees, as sysfs has them
WIDTH = 80


def camfleet(
    fleet: RunningFleet, *argv: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "CAMFLEET_URL": fleet.url,
        "CAMFLEET_OPERATOR_TOKEN": fleet.operator_token if token is None else token,
        "COLUMNS": str(WIDTH),
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def camfleet_tty(fleet: RunningFleet, *argv: str) -> tuple[int, str, str]:
    """The command with stderr on a terminal (where progress is drawn): code, out, terminal."""
    master, slave = pty.openpty()
    env = os.environ | {
        "CAMFLEET_URL": fleet.url,
        "CAMFLEET_OPERATOR_TOKEN": fleet.operator_token,
        "COLUMNS": str(WIDTH),
        "TERM": "xterm",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    drawn = bytearray()

    def drain() -> None:  # a full terminal buffer would block the command
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the other end closed
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _ = proc.communicate(timeout=120)
    reader.join(10)
    os.close(master)
    return proc.returncode, out, drawn.decode(errors="replace")


def node_lines(text: str) -> dict[str, str]:
    """The first line of each node's row in a fleet table, by cam id."""
    out = {}
    for line in text.splitlines():
        for cam, _ in CAMERAS:
            if line.startswith(f"│{cam} "):
                out[cam] = line
    return out


def wait_states(fleet: RunningFleet, want: str, timeout_s: float = 15.0) -> str:
    """``fleet status`` until every node's row shows ``want``."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = camfleet(fleet, "fleet", "status")
        rows = node_lines(done.stdout)
        if len(rows) == 3 and all(f" {want} " in line for line in rows.values()):
            return done.stdout
        assert time.monotonic() < deadline, done.stdout + done.stderr
        time.sleep(0.3)


@pytest.fixture
def hot_fleet(fleet_factory: RunningFleet) -> RunningFleet:
    """Three agents; CAM_R's thermal zone is a file the test can heat."""
    thermal = {}
    for cam, _ in CAMERAS:
        (path := fleet_factory.root / f"thermal-{cam}").write_text(COOL)
        thermal[cam] = {"CAMFLEET_GATES__THERMAL_PATH": str(path)}
    fleet_factory.start_fleet(CAMERAS, thermal)
    return fleet_factory


def test_fleet_status_start_stop_session_and_exit_codes(hot_fleet: RunningFleet) -> None:
    fleet = hot_fleet
    # one row per node, in L, C, R order, idle, and nothing wider than the terminal
    done = camfleet(fleet, "fleet", "status")
    assert done.returncode == 0, done.stderr
    rows = node_lines(done.stdout)
    assert list(rows) == ["CAM_L", "CAM_C", "CAM_R"], done.stdout
    assert all(" idle " in line for line in rows.values()), done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= WIDTH, done.stdout
    assert "3/3 online" in done.stdout

    # --json is the API's answer: same nodes, same states
    done = camfleet(fleet, "fleet", "status", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    with fleet.client() as c:
        api = c.get("/api/v1/nodes").json()
    assert set(body) == set(api)
    assert sorted(n["node_id"] for n in body["nodes"]) == sorted(n["node_id"] for n in api["nodes"])
    assert {n["node_id"]: n["status"]["recorder"]["state"] for n in body["nodes"]} == {
        n["node_id"]: n["status"]["recorder"]["state"] for n in api["nodes"]
    }
    assert camfleet(fleet, "nodes", "--json").returncode == 0  # the old name, same answer

    # start through the CLI: it returns once the start instant has passed
    done = camfleet(fleet, "fleet", "start", "--name", "cli-run", "--lead-ms", "800", "--json")
    assert done.returncode == 0, done.stderr
    started = json.loads(done.stdout)
    assert time.time_ns() >= started["start_at_ns"]
    assert started["state"] == "recording" and len(started["nodes"]) == 3
    sid = started["session_id"]
    wait_states(fleet, "recording")

    # stop the running session without naming it; its detail shows the three checksums
    done = camfleet(fleet, "fleet", "stop")
    assert done.returncode == 0, done.stdout + done.stderr
    with fleet.client() as c:
        recs = c.get("/api/v1/recordings", params={"session_id": sid}).json()["recordings"]
    assert len(recs) == 3
    done = camfleet(fleet, "session", sid)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for rec in recs:
        # each checksum whole on one line, with its camera
        cam = rec["manifest"]["cam_id"]
        assert any(cam in line and rec["sha256"] in line for line in lines), done.stdout
    assert "skew" in done.stdout and "cli-run" in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= WIDTH
    detail = json.loads(camfleet(fleet, "session", sid, "--json").stdout)
    assert {n["sha256"] for n in detail["nodes"]} == {r["sha256"] for r in recs}

    listed = camfleet(fleet, "sessions")
    assert listed.returncode == 0 and sid in listed.stdout
    listed = json.loads(camfleet(fleet, "recordings", "--session", sid, "--json").stdout)
    assert {r["sha256"] for r in listed["recordings"]} == {r["sha256"] for r in recs}

    # the self-test takes seconds: a spinner on the terminal, the table on stdout
    code, out, drawn = camfleet_tty(fleet, "fleet", "selftest", "--duration", "1")
    assert code == 0, out + drawn
    assert "self-test passed" in out and out.count("pass") >= 3
    assert "self-test: a 1 s clip on every camera" in drawn
    # and the start counts down to its instant there too
    code, out, drawn = camfleet_tty(fleet, "fleet", "start", "--lead-ms", "1500")
    assert code == 0, out + drawn
    assert "starting in" in drawn and "recording" in out
    assert camfleet(fleet, "fleet", "stop").returncode == 0

    # a node that refuses (its CPU is hot): the others record, the exit code is 1
    Path(fleet.root / "thermal-CAM_R").write_text(HOT)
    done = camfleet(fleet, "fleet", "start", "--lead-ms", "500")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed" in done.stdout and "cam-r" in done.stdout
    assert camfleet(fleet, "fleet", "stop").returncode == 0
    # all or nothing: nothing records, still 1
    done = camfleet(fleet, "fleet", "start", "--all-or-nothing", "--json")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["state"] == "aborted"

    # a refused token: one line saying what to do, exit 2
    done = camfleet(fleet, "fleet", "status", token="not-the-token")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "refused the operator token" in done.stderr
    assert "CAMFLEET_OPERATOR_TOKEN" in done.stderr

    # a node gone: its row says offline, the exit code is 1
    fleet.kill(fleet.agents["CAM_R"])
    deadline = time.monotonic() + 15
    while True:
        done = camfleet(fleet, "fleet", "status")
        if " offline " in node_lines(done.stdout).get("CAM_R", ""):
            break
        assert time.monotonic() < deadline, done.stdout
        time.sleep(0.3)
    assert done.returncode == 1
    assert " offline " not in node_lines(done.stdout)["CAM_L"]

    # an unknown session: exit 2, one line
    done = camfleet(fleet, "session", "20000101-000000-abcd")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "camfleet sessions" in done.stderr


def test_an_unreachable_coordinator_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from bench.common import free_port

    fleet = RunningFleet(root=tmp_path, coordinator_port=free_port())
    done = camfleet(fleet, "fleet", "status")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cannot reach the coordinator" in done.stderr
