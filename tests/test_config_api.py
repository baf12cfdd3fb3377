"""The configuration API and the shutdown route in a real agent process: secrets masked
and kept, a bad value refused with its key and the file untouched, a good one written
(version stamped) and in force, a change to the recording refused while recording, and a
shutdown that powers off (a fake ``systemctl``) only after the manifest is on disk."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakebin import FakeBin
from tests.solo_agent import SoloAgent, solo_agent
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

FLEET_TOKEN = secrets.token_urlsafe(24)


def settings_file(root: Path) -> Path:
    path = root / "agent.yaml"
    path.write_text(
        "# written by hand\n"
        + yaml.safe_dump({"fleet_token": FLEET_TOKEN, "gates": {"max_cpu_temp_c": 80.0}})
    )
    return path


def put(agent: SoloAgent, settings: dict[str, Any], **extra: Any) -> Any:
    return agent.client.put("/api/v1/config", json={"settings": settings, **extra})


def test_get_masks_secrets_and_a_put_keeps_them(tmp_path: Path) -> None:
    path = settings_file(tmp_path)
    with solo_agent(tmp_path, CAMFLEET_AGENT_CONFIG=str(path)) as agent:
        got = agent.client.get("/api/v1/config")
        assert got.status_code == 200, got.text
        doc = got.json()
        assert doc["path"] == str(path) and doc["version"] == 0
        assert doc["settings"]["fleet_token"] == "**********"
        assert doc["settings"]["api_token"] == "**********"
        assert FLEET_TOKEN not in got.text
        assert "api_token" in doc["environment_overrides"]

        # Not sent, then sent as the mask: the token is kept both times.
        first = put(agent, {"gates": {"max_cpu_temp_c": 71.5}})
        assert first.status_code == 200, first.text
        second = put(agent, {"fleet_token": "**********", "gates": {"max_cpu_temp_c": 72.5}})
        assert second.status_code == 200, second.text
        stored = yaml.safe_load(path.read_text())
        assert stored["fleet_token"] == FLEET_TOKEN
        assert path.read_text().startswith("# camfleet-config version 2 written ")
        assert path.stat().st_mode & 0o777 == 0o600


def test_a_good_value_is_written_and_in_force_and_a_bad_one_changes_nothing(
    tmp_path: Path,
) -> None:
    path = settings_file(tmp_path)
    thermal = tmp_path / "temp"
    thermal.write_text("75000\n")  # 75 °C: under the file's 80 °C limit
    with solo_agent(
        tmp_path, CAMFLEET_AGENT_CONFIG=str(path), CAMFLEET_GATES__THERMAL_PATH=str(thermal)
    ) as agent:
        ok = agent.client.post(
            "/api/v1/recording/start", json={"session_id": "T1", "command_id": "T1-a"}
        )
        assert ok.status_code == 200, ok.text
        stop = agent.client.post(
            "/api/v1/recording/stop", json={"session_id": "T1", "command_id": "T1-o"}
        )
        assert stop.status_code == 200, stop.text

        answer = put(agent, {"gates": {"max_cpu_temp_c": 70}, "camera": {"jpeg_quality": 70}})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["version"] == 1
        assert body["changed"] == ["camera.jpeg_quality", "gates.max_cpu_temp_c"]
        assert body["applied"] == ["gates.max_cpu_temp_c"]
        assert body["restart_required"] == ["camera.jpeg_quality"]
        assert yaml.safe_load(path.read_text())["gates"]["max_cpu_temp_c"] == 70
        # In force at once: the temperature gate now refuses 75 °C.
        refused = agent.client.post(
            "/api/v1/recording/start", json={"session_id": "T2", "command_id": "T2-a"}
        )
        assert refused.status_code == 409, refused.text
        assert "70" in refused.json()["detail"]
        doc = agent.client.get("/api/v1/config").json()
        assert doc["version"] == 1 and doc["restart_required"] == ["camera.jpeg_quality"]

        before = path.read_bytes()
        bad = put(agent, {"camera": {"fps": 500}, "storage": {"reserve_s": -1}})
        assert bad.status_code == 422, bad.text
        fields = {e["field"] for e in bad.json()["errors"]}
        assert {"camera.fps", "storage.reserve_s"} <= fields
        assert "camera.fps" in bad.json()["detail"]
        unknown = put(agent, {"gates": {"max_cpu_tmp_c": 60}})
        assert unknown.status_code == 422 and "gates.max_cpu_tmp_c" in unknown.text
        stale = put(agent, {"gates": {"max_cpu_temp_c": 60}}, if_version=0)
        assert stale.status_code == 409 and "version 1" in stale.json()["detail"]
        assert path.read_bytes() == before
        assert [p.name for p in path.parent.iterdir() if "candidate" in p.name] == []

        # The same value again writes nothing and keeps the version (a form sent twice).
        again = put(agent, {"gates": {"max_cpu_temp_c": 70}}, if_version=1)
        assert again.status_code == 200, again.text
        assert (again.json()["version"], again.json()["changed"]) == (1, [])
        assert path.read_bytes() == before


def test_a_change_to_the_recording_is_refused_while_recording(tmp_path: Path) -> None:
    with solo_agent(tmp_path) as agent:  # environment only: the file is data_dir/agent.yaml
        started = agent.client.post(
            "/api/v1/recording/start", json={"session_id": "R1", "command_id": "R1-a"}
        )
        assert started.status_code == 200, started.text
        refused = put(agent, {"camera": {"fps": 25}})
        assert refused.status_code == 409, refused.text
        assert "camera.fps" in refused.json()["detail"]
        moved = put(agent, {"recordings_dir": str(tmp_path / "elsewhere")})
        assert moved.status_code == 409 and "recordings_dir" in moved.json()["detail"]
        home = put(agent, {"data_dir": str(tmp_path / "elsewhere")})
        assert home.status_code == 422 and home.json()["errors"][0]["field"] == "data_dir"
        own = tmp_path / "data" / "agent.yaml"
        assert not own.exists()
        # The timelapse's interval does not touch the recording: written and applied.
        fine = put(agent, {"timelapse": {"interval_s": 42}})
        assert fine.status_code == 200, fine.text
        assert fine.json()["applied"] == ["timelapse.interval_s"]
        assert yaml.safe_load(own.read_text()) == {"timelapse": {"interval_s": 42}}
        assert agent.status()["timelapse"]["interval_s"] == 42
        assert agent.status()["recorder"]["state"] == "recording"


def test_shutdown_powers_off_after_the_manifest_is_on_disk(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    seen = tmp_path / "seen-at-poweroff.txt"
    recordings = tmp_path / "data" / "recordings"
    # What the recordings folder held when poweroff was asked (renamed in whole: the
    # test reads it only once it is complete).
    systemctl = fake.add(
        "systemctl", script=f"ls {recordings} > {seen}.tmp && mv {seen}.tmp {seen}"
    )
    fake.add("sync")
    env = {
        "CAMFLEET_POWER__SHUTDOWN_COMMAND": json.dumps([str(systemctl), "poweroff"]),
        "PATH": fake.env()["PATH"],
    }
    with solo_agent(tmp_path, **env) as agent:
        started = agent.client.post(
            "/api/v1/recording/start", json={"session_id": "S1", "command_id": "S1-a"}
        )
        assert started.status_code == 200, started.text
        wait_for("recording", lambda: agent.status()["recorder"]["state"] == "recording")
        answer = agent.client.post("/api/v1/shutdown")
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert body["accepted"] and not body["dry_run"]
        assert body["steps"][-1] == f"{systemctl} poweroff"
        assert body["steps"].index("sync") < len(body["steps"]) - 1
        wait_for("poweroff", seen.exists)
        assert fake.argvs("systemctl") == [["systemctl", "poweroff"]]
        assert "S1_CAM_C.json" in seen.read_text().split()
        manifest = json.loads((recordings / "S1_CAM_C.json").read_text())
        assert manifest["sha256"]
        order = [a[0] for a in fake.argvs()]
        assert order == ["sync", "systemctl"]
        again = agent.client.post("/api/v1/shutdown")
        assert again.status_code == 202 and again.json()["already_shutting_down"]
        actions = agent.status()["power"]["actions"]
        assert any("shutdown asked" in a for a in actions)


def test_a_dry_run_shutdown_runs_nothing(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    systemctl = fake.add("systemctl")
    env = {
        "CAMFLEET_POWER__SHUTDOWN_COMMAND": json.dumps([str(systemctl), "poweroff"]),
        "CAMFLEET_DASHCAM__DRY_RUN": "true",
    }
    with solo_agent(tmp_path, **env) as agent:
        answer = agent.client.post("/api/v1/shutdown")
        assert answer.status_code == 202, answer.text
        assert answer.json()["dry_run"]
        assert all(s.startswith("would run ") for s in answer.json()["steps"])
        wait_for(
            "the sequence noted",
            lambda: any(
                "would run" in a and "poweroff" in a for a in agent.status()["power"]["actions"]
            ),
        )
        assert fake.calls() == []


def test_the_data_folder_file_is_read_at_the_next_start_and_camera_audio_agrees(
    tmp_path: Path,
) -> None:
    overrides = tmp_path / "data" / "overrides.json"
    with solo_agent(tmp_path) as agent:
        answer = put(agent, {"camera": {"jpeg_quality": 70, "audio": True}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] == ["camera.audio"]
        assert answer.json()["restart_required"] == ["camera.jpeg_quality"]
        # The audio toggle's own file says the same, so it cannot undo the change at start.
        assert json.loads(overrides.read_text())["camera"]["audio"] is True
        assert agent.client.get("/api/v1/config").json()["restart_required"] == [
            "camera.jpeg_quality"
        ]
    with solo_agent(tmp_path) as agent:  # the same data folder, no CAMFLEET_AGENT_CONFIG
        doc = agent.client.get("/api/v1/config").json()
        assert doc["version"] == 1 and doc["restart_required"] == []
        assert doc["settings"]["camera"]["jpeg_quality"] == 70
        assert doc["settings"]["camera"]["audio"] is True
        toggled = agent.client.put("/api/v1/audio", json={"enabled": False})
        assert toggled.status_code == 200, toggled.text
        doc = agent.client.get("/api/v1/config").json()
        assert doc["settings"]["camera"]["audio"] is False and doc["restart_required"] == []


def test_a_file_broken_by_hand_is_named_and_a_put_can_repair_it(tmp_path: Path) -> None:
    path = settings_file(tmp_path)
    with solo_agent(tmp_path, CAMFLEET_AGENT_CONFIG=str(path)) as agent:
        path.write_text(path.read_text().replace("80.0", "999"))  # over the 150 °C bound
        broken = agent.client.get("/api/v1/config")
        assert broken.status_code == 422, broken.text
        assert broken.json()["errors"][0]["field"] == "gates.max_cpu_temp_c"
        assert "would not start" in broken.json()["detail"]
        path.write_text(path.read_text() + "gates: [unclosed\n")
        assert agent.client.get("/api/v1/config").status_code == 422
        path.write_text(
            yaml.safe_dump({"fleet_token": FLEET_TOKEN, "gates": {"max_cpu_temp_c": 999}})
        )
        fixed = put(agent, {"gates": {"max_cpu_temp_c": 75}})
        assert fixed.status_code == 200, fixed.text
        assert (
            agent.client.get("/api/v1/config").json()["settings"]["gates"]["max_cpu_temp_c"] == 75
        )
        # Sent back as its redacted view, a whole document changes nothing.
        whole = agent.client.get("/api/v1/config").json()
        same = put(agent, {"gates": whole["settings"]["gates"], "fleet_token": "**********"})
        assert same.status_code == 200, same.text
        assert yaml.safe_load(path.read_text())["fleet_token"] == FLEET_TOKEN
