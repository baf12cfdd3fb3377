"""Production and development modes on real processes: the ring, the files, the switch."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.demo import stop_all
from common.identity import load_or_create_key, public_key_text
from tests.conftest import RunningFleet
from tests.solo_agent import SoloAgent, solo_agent

JUNK = b"this is not a video"


def junk_recordings(recordings: Path, count: int) -> None:
    """Recordings a crash left behind that hold no video: each start's recovery warns."""
    recordings.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (recordings / f"crash{i:02d}_CAM_C_20260101_1200{i:02d}.mp4").write_bytes(JUNK)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def entries(client: httpx.Client, path: str = "/api/v1/logs", **params: Any) -> list[Any]:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["entries"])


def late_recording(agent: SoloAgent, session_id: str) -> None:
    """A recording whose start instant has passed: it begins at once and warns 'late'."""
    started = agent.client.post(
        "/api/v1/recording/start",
        json={
            "session_id": session_id,
            "command_id": f"{session_id}-a",
            "start_at_ns": time.time_ns() - 500_000_000,
        },
    )
    assert started.status_code == 200, started.text
    assert any("late" in w for w in started.json()["warnings"]), started.text
    stopped = agent.client.post(
        "/api/v1/recording/stop", json={"session_id": session_id, "command_id": f"{session_id}-o"}
    )
    assert stopped.status_code == 200, stopped.text


def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_agent_production_keeps_a_ring_and_writes_no_file(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    junk_recordings(tmp_path / "data" / "recordings", 1)
    with solo_agent(tmp_path, CAMFLEET_LOGGING__DIR=str(logs_dir)) as agent:
        c = agent.client
        # requests that succeed, fail and are refused
        assert c.get("/api/v1/status").status_code == 200
        assert c.get("/api/v1/logs", params={"lines": 0}).status_code == 422
        assert httpx.get(f"{c.base_url}/api/v1/logs").status_code == 401
        stop = c.post("/api/v1/recording/stop", json={"session_id": "nope", "command_id": "n1"})
        assert stop.status_code == 404
        late_recording(agent, "prod-1")
        not_http(agent.child.port)

        warnings = entries(c, level="WARNING")
        junk = [e for e in warnings if "holds no readable video" in e["message"]]
        assert junk, warnings
        assert any(e["message"].startswith("session prod-1: start: armed") for e in warnings)
        invalid = [e for e in warnings if e["message"] == "Invalid HTTP request received."]
        assert invalid and invalid[0]["logger"] == "uvicorn.error", warnings
        assert set(junk[0]) == {"time", "level", "logger", "message"}
        assert junk[0]["level"] == "WARNING"
        assert junk[0]["logger"] == "node_agent.recorder.recovery"
        assert all(e["level"] in ("WARNING", "ERROR", "CRITICAL") for e in warnings)

        everything = entries(c, lines=5000)
        assert any(e["level"] == "INFO" for e in everything)
        # no access log, not even in memory
        assert not [e for e in everything if e["logger"] == "uvicorn.access"], everything
        assert not [e for e in everything if "/api/v1/status" in e["message"]], everything
        times = [e["time"] for e in everything]
        assert times == sorted(times)  # newest last
        assert entries(c, lines=2) == everything[-2:]
        assert c.get("/api/v1/mode").json() == {"mode": "production", "log_file": None}

        assert files_under(logs_dir) == []
        data = tmp_path / "data"
        assert [p for p in files_under(data) if p.suffix in (".log", ".jsonl")] == []


@pytest.fixture(scope="module")
def refusing_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SoloAgent, Path]]:
    """One agent for the bad queries: none of them may change it."""
    root = tmp_path_factory.mktemp("bad-queries")
    with solo_agent(root) as agent:
        yield agent, root


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lines": 0}, "query.lines"),
        ({"lines": 5001}, "query.lines"),
        ({"lines": "many"}, "query.lines"),
        ({"level": "LOUD"}, "query.level"),
    ],
)
def test_agent_bad_log_queries_are_422(
    refusing_agent: tuple[SoloAgent, Path], params: dict[str, Any], field: str
) -> None:
    agent, root = refusing_agent
    answer = agent.client.get("/api/v1/logs", params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field
    assert field in answer.json()["detail"]
    bad_mode = agent.client.put("/api/v1/mode", json={"mode": "verbose"})
    assert bad_mode.status_code == 422, bad_mode.text
    assert "body.mode" in bad_mode.json()["detail"]
    assert agent.client.get("/api/v1/mode").json()["mode"] == "production"
    assert not (root / "data" / "mode.json").exists()


def test_agent_development_writes_json_lines_and_rotates(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    junk_recordings(tmp_path / "data" / "recordings", 15)
    env = {
        "CAMFLEET_MODE": "development",
        "CAMFLEET_LOGGING__DIR": str(logs_dir),
        "CAMFLEET_LOGGING__MAX_BYTES": "2048",
        "CAMFLEET_LOGGING__BACKUPS": "2",
    }
    with solo_agent(tmp_path, **env) as agent:
        state = agent.client.get("/api/v1/mode").json()
        assert state == {"mode": "development", "log_file": str(logs_dir / "agent.jsonl")}
        names = sorted(p.name for p in files_under(logs_dir))
        # 15 recoveries, two warnings each, are several kB: rotated, two backups kept
        assert names == ["agent.jsonl", "agent.jsonl.1", "agent.jsonl.2"], names
        lines: list[dict[str, Any]] = []
        for path in files_under(logs_dir):
            assert path.stat().st_size <= 2048 + 1024, path  # a file ends at the line past 2 kB
            lines += [json.loads(line) for line in path.read_text().splitlines()]
        assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
        assert any("holds no readable video" in line["message"] for line in lines)
        # the ring has them too
        assert any("holds no readable video" in e["message"] for e in entries(agent.client))


def test_agent_mode_switches_at_run_time_and_survives_a_restart(tmp_path: Path) -> None:
    logs_dir = tmp_path / "logs"
    log_file = logs_dir / "agent.jsonl"
    env = {"CAMFLEET_LOGGING__DIR": str(logs_dir)}
    with solo_agent(tmp_path, **env) as agent:
        assert files_under(logs_dir) == []
        switched = agent.client.put("/api/v1/mode", json={"mode": "development"})
        assert switched.status_code == 200, switched.text
        assert switched.json() == {"mode": "development", "log_file": str(log_file)}
        first = [json.loads(line) for line in log_file.read_text().splitlines()]
        assert any("agent mode: development (was production)" in e["message"] for e in first)
        late_recording(agent, "dev-1")
        wait_for(lambda: "dev-1" in log_file.read_text())
    kept = json.loads((tmp_path / "data" / "mode.json").read_text())
    assert kept["mode"] == "development"

    size_before = log_file.stat().st_size
    with solo_agent(tmp_path, **env) as agent:  # the settings still say production
        assert agent.client.get("/api/v1/mode").json()["mode"] == "development"
        wait_for(lambda: log_file.stat().st_size > size_before)  # the start is logged
        assert agent.client.put("/api/v1/mode", json={"mode": "production"}).status_code == 200
        size = log_file.stat().st_size
        late_recording(agent, "prod-2")
        assert any("prod-2" in e["message"] for e in entries(agent.client, lines=5000))
        assert log_file.stat().st_size == size  # in the ring, not in the file
    with solo_agent(tmp_path, **env) as agent:
        assert agent.client.get("/api/v1/mode").json()["mode"] == "production"
        late_recording(agent, "prod-3")
        assert any("prod-3" in e["message"] for e in entries(agent.client, level="WARNING"))
        assert log_file.stat().st_size == size
        assert files_under(logs_dir) == [log_file]


def not_http(port: int) -> None:
    """Bytes that are not HTTP: uvicorn's own logger ("uvicorn.error") warns."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw.recv(1024)


def bad_join(fleet: RunningFleet, tmp_path: Path) -> httpx.Response:
    """A join without the signed challenge: refused with 409 and logged as a warning."""
    key = load_or_create_key(tmp_path / "intruder.pem")
    body = {
        "node_id": "intruder",
        "cam_id": "CAM_X",
        "position": "other",
        "port": 9,
        "api_token": "x" * 32,
        "public_key": public_key_text(key),
        "version": "0",
    }
    return httpx.post(
        f"{fleet.url}/api/v1/nodes/join",
        json=body,
        headers={"Authorization": f"Bearer {fleet.fleet_token}"},
        timeout=10,
    )


def test_coordinator_modes_and_a_node_switched_through_it(
    fleet_factory: RunningFleet, tmp_path: Path
) -> None:
    fleet = fleet_factory
    fleet.start_coordinator()
    fleet.start_agent("CAM_C", "centre")
    fleet.wait_online(1)
    coordinator_logs = tmp_path / "coordinator" / "logs"
    agent_logs = tmp_path / "CAM_C" / "logs"
    with fleet.client() as c:
        assert bad_join(fleet, tmp_path).status_code == 409
        warnings = entries(c, level="WARNING")
        refused = [e for e in warnings if "join refused for node 'intruder'" in e["message"]]
        assert refused and refused[0]["logger"] == "app.nodes.service", warnings
        assert c.get("/api/v1/logs", params={"lines": 9999}).status_code == 422
        assert c.get("/api/v1/logs", params={"level": "loud"}).status_code == 422
        assert httpx.get(f"{fleet.url}/api/v1/logs").status_code == 401
        assert files_under(coordinator_logs) == []
        assert files_under(agent_logs) == []

        # the node, through the coordinator
        assert c.put("/api/v1/nodes/cam-c/mode", json={"mode": "loud"}).status_code == 422
        assert c.put("/api/v1/nodes/nobody/mode", json={"mode": "development"}).status_code == 404
        assert c.get("/api/v1/nodes/cam-c/logs", params={"lines": 0}).status_code == 422
        node = c.put("/api/v1/nodes/cam-c/mode", json={"mode": "development"})
        assert node.status_code == 200, node.text
        assert node.json()["mode"] == "development"
        assert [p.name for p in files_under(agent_logs)] == ["agent.jsonl"]
        node_entries = entries(c, "/api/v1/nodes/cam-c/logs", level="WARNING")
        assert any("agent mode: development" in e["message"] for e in node_entries)
        assert files_under(coordinator_logs) == []  # the coordinator's own mode is its own

        # the coordinator itself
        assert c.put("/api/v1/mode", json={"mode": "development"}).status_code == 200
        assert bad_join(fleet, tmp_path).status_code == 409
        not_http(fleet.coordinator_port)
        own = coordinator_logs / "coordinator.jsonl"
        wait_for(lambda: "join refused for node 'intruder'" in own.read_text())
        wait_for(lambda: "Invalid HTTP request received." in own.read_text())
        assert any(
            json.loads(line)["logger"] == "uvicorn.error" for line in own.read_text().splitlines()
        )

    assert fleet.coordinator is not None
    stop_all([fleet.coordinator])
    fleet.start_coordinator()  # its settings say production; mode.json says development
    with fleet.client() as c:
        assert c.get("/api/v1/mode").json()["mode"] == "development"
        assert c.put("/api/v1/mode", json={"mode": "production"}).status_code == 200
        size = own.stat().st_size
        assert bad_join(fleet, tmp_path).status_code == 409
        assert own.stat().st_size == size
        fleet.wait_online(1)
        assert c.get("/api/v1/nodes/cam-c/logs").status_code == 200


def test_an_unwritable_log_folder_is_a_409_and_the_agent_runs_on(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {"CAMFLEET_LOGGING__DIR": str(blocker / "logs")}
    with solo_agent(tmp_path, **env) as agent:
        answer = agent.client.put("/api/v1/mode", json={"mode": "development"})
        assert answer.status_code == 409, answer.text
        assert "cannot switch to development mode" in answer.json()["detail"]
        assert "logging.dir" in answer.json()["detail"]
        assert agent.client.get("/api/v1/mode").json()["mode"] == "production"
        assert not (tmp_path / "data" / "mode.json").exists()
    # configured so from the start: the agent starts in production and says why
    with solo_agent(tmp_path, CAMFLEET_MODE="development", **env) as agent:
        assert agent.client.get("/api/v1/mode").json()["mode"] == "production"
        errors = entries(agent.client, level="ERROR")
        assert any("development mode cannot write" in e["message"] for e in errors), errors
        assert agent.status()["recorder"]["state"] == "idle"


def test_the_whole_fleet_switches_at_once_and_a_dead_node_is_reported(
    fleet_factory: RunningFleet, tmp_path: Path
) -> None:
    fleet = fleet_factory
    fleet.start_fleet([("CAM_L", "left"), ("CAM_R", "right")])
    fleet.kill(fleet.agents["CAM_R"])
    with fleet.client() as c:
        bad = c.put("/api/v1/fleet/mode", json={"mode": "development", "node_ids": ["nobody"]})
        assert bad.status_code == 404 and "nobody" in bad.json()["detail"]
        assert c.put("/api/v1/fleet/mode", json={"mode": "loud"}).status_code == 422

        answer = c.put("/api/v1/fleet/mode", json={"mode": "development"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        by_node = {n["node_id"]: n for n in body["nodes"]}
        assert by_node["cam-l"]["ok"] and by_node["cam-l"]["mode"] == "development"
        assert not by_node["cam-r"]["ok"] and by_node["cam-r"]["error"], by_node["cam-r"]
        assert (body["ok"], body["failed"]) == (1, 1)
        assert body["coordinator"]["mode"] == "development"
        assert c.get("/api/v1/mode").json()["mode"] == "development"
        assert c.get("/api/v1/nodes/cam-l/logs").json()["mode"] == "development"
        assert [p.name for p in files_under(tmp_path / "CAM_L" / "logs")] == ["agent.jsonl"]
        assert files_under(tmp_path / "CAM_R" / "logs") == []

        # the nodes only: the coordinator keeps its mode
        back = c.put("/api/v1/fleet/mode", json={"mode": "production", "coordinator": False})
        assert back.status_code == 200 and back.json()["coordinator"] is None
        assert c.get("/api/v1/mode").json()["mode"] == "development"
        assert c.get("/api/v1/nodes/cam-l/logs").json()["mode"] == "production"


def test_camfleet_fleet_mode_switches_everything_and_exits_1_for_a_dead_node(
    fleet_factory: RunningFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    from app import cli

    fleet = fleet_factory
    fleet.start_fleet([("CAM_L", "left"), ("CAM_R", "right")])
    base = ["--url", fleet.url, f"--token={fleet.operator_token}"]
    assert cli.main([*base, "fleet", "mode", "development", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["ok"] == 2 and body["coordinator"]["mode"] == "development"
    fleet.kill(fleet.agents["CAM_R"])
    assert cli.main([*base, "fleet", "mode", "production"]) == 1
    shown = capsys.readouterr().out
    assert "cam-r" in shown and "cam-l" in shown, shown
    with fleet.client() as c:
        assert c.get("/api/v1/nodes/cam-l/logs").json()["mode"] == "production"
        assert c.get("/api/v1/mode").json()["mode"] == "production"
