"""The status endpoints of a real agent process: ``/status``, ``/latest/photo``,
``/latest/video``, ``/logs``, ``/config`` and ``/health``'s uptime.

One agent (synthetic camera, no coordinator) takes real stills and renders a real video
through its API; what the endpoints serve is compared with the files on its disk.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.solo_agent import SoloAgent, solo_agent

ROUTES = ("/status", "/latest/photo", "/latest/video", "/logs", "/config")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoloAgent]:
    root = tmp_path_factory.mktemp("status-endpoints")
    # The folder does not exist yet: the agent makes it.
    with solo_agent(root, CAMFLEET_STATUS_FILE=str(root / "run" / "camfleet" / "status.json")) as a:
        yield a


def status_path(agent: SoloAgent) -> Path:
    return agent.recordings.parent.parent / "run" / "camfleet" / "status.json"


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return got


def detail(resp: httpx.Response) -> str:
    return str(resp.json()["detail"])


@pytest.mark.parametrize("token", [None, "wrong-token-wrong-token"])
def test_the_status_routes_need_the_token_and_health_does_not(
    agent: SoloAgent, token: str | None
) -> None:
    base = str(agent.client.base_url).rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for path in ROUTES:
        resp = httpx.get(base + path, headers=headers)
        assert resp.status_code == 401, (path, resp.text)
        assert resp.headers["www-authenticate"] == "Bearer"
    health = httpx.get(base + "/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["node_id"] == "cam-c" and body["version"]
    assert body["uptime_seconds"] > 0
    later = httpx.get(base + "/health").json()["uptime_seconds"]
    assert later >= body["uptime_seconds"]


def test_status_photo_and_video_are_the_newest_files(agent: SoloAgent) -> None:
    c = agent.client
    # Nothing taken yet: clear 404s, and the file written at start.
    photo = c.get("/latest/photo")
    assert photo.status_code == 404 and "no timelapse still" in detail(photo)
    video = c.get("/latest/video")
    assert video.status_code == 404 and "no timelapse video" in detail(video)
    assert "POST /api/v1/timelapse/render" in detail(video)
    first = c.get("/status")
    assert first.status_code == 200, first.text
    doc = first.json()
    assert doc["device_id"] == "cam-c" and doc["status"] == "idle" and doc["recording"] is False
    assert doc == json.loads(status_path(agent).read_text())  # the file's content, as is

    assert c.post("/api/v1/timelapse/start", json={"interval_s": 1.0}).status_code == 200
    wait_until("two stills", lambda: c.get("/api/v1/timelapse").json()["captures_total"] >= 2)
    # The file follows each capture (the writer thread, poked by the capture thread).
    doc = wait_until(
        "a capture in the status file",
        lambda: (d := c.get("/status").json()).get("last_capture") and d,
    )
    assert doc["status"] == "capturing" and doc["last_capture"]["success"] is True
    assert c.post("/api/v1/timelapse/stop").status_code == 200
    folder = Path(c.get("/api/v1/timelapse").json()["directory"])
    stills = sorted(folder.rglob("*.jpg"))
    newest = stills[-1]
    # The stop is a state change: rewritten with the last still taken.
    doc = wait_until(
        "the stop in the status file",
        lambda: (d := c.get("/status").json())["status"] == "idle" and d,
    )
    assert doc["last_capture"]["filename"] == newest.relative_to(folder).as_posix()
    assert doc["today"]["photos_captured"] == len(stills)
    assert doc["today"]["date"] == dt.date.today().isoformat()
    photo = c.get("/latest/photo")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content == newest.read_bytes()

    day = dt.date.today().isoformat()
    rendered = c.post("/api/v1/timelapse/render", json={"day": day, "fps": 10})
    assert rendered.status_code == 200, rendered.text
    video_file = folder / rendered.json()["file_name"]
    # An older day's video beside it is not the newest.
    (video_file.parent / "timelapse_CAM_C_20000101.mp4").write_bytes(b"an old video")
    (video_file.parent / ".timelapse_CAM_C_29991231.mp4.tmp-1.mp4").write_bytes(b"partial")
    video = c.get("/latest/video")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content == video_file.read_bytes()
    part = c.get("/latest/video", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == video_file.read_bytes()[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{video_file.stat().st_size}"
    past = c.get("/latest/video", headers={"Range": "bytes=999999999-"})
    assert past.status_code == 416 and "byte 999999999" in detail(past)
    # The render was a state change too: the file has the video.
    doc = wait_until(
        "the video in the status file", lambda: c.get("/status").json().get("last_video")
    )
    assert doc == {
        "date": day,
        "filename": video_file.name,
        "duration_seconds": rendered.json()["duration_s"],
        "photos_used": rendered.json()["frames"],
        "backed_up": False,
    }


def test_logs_and_config_under_the_spec_names(agent: SoloAgent) -> None:
    c = agent.client
    for level in ("error", "ERROR", "Warning"):
        resp = c.get("/logs", params={"lines": 5, "level": level})
        if level == "Warning":  # neither case: refused with the choices
            assert resp.status_code == 422, resp.text
            continue
        assert resp.status_code == 200, resp.text
        entries = resp.json()["entries"]
        assert len(entries) <= 5 and all(e["level"] in ("ERROR", "CRITICAL") for e in entries)
    everything = c.get("/logs").json()
    assert everything == c.get("/api/v1/logs", params={"lines": 50}).json()
    assert c.get("/logs", params={"lines": 0}).status_code == 422
    config = c.get("/config")
    assert config.status_code == 200
    assert config.json() == c.get("/api/v1/config").json()
    token = c.headers["Authorization"].split()[1]
    assert token not in config.text  # secrets masked
    assert config.json()["settings"]["api_token"] == "**********"


def test_status_is_a_404_that_says_why_when_the_file_is_off(tmp_path: Path) -> None:
    with solo_agent(tmp_path, CAMFLEET_STATUS_FILE="") as off:
        resp = off.client.get("/status")
        assert resp.status_code == 404
        assert "switched off" in detail(resp) and "status_file" in detail(resp)
        assert resp.json()["code"] == "status_file_unavailable"
        assert not list(tmp_path.rglob("status.json"))


def test_a_recording_start_and_stop_are_rewritten_at_once(agent: SoloAgent) -> None:
    c = agent.client
    started = c.post(
        "/api/v1/recording/start", json={"session_id": "SF1", "command_id": "sf1-start"}
    )
    assert started.status_code == 200, started.text
    doc = wait_until(
        "recording in the status file",
        lambda: (d := c.get("/status").json())["recording"] and d,
        timeout_s=10,
    )
    assert doc["status"] == "capturing"
    stopped = c.post("/api/v1/recording/stop", json={"session_id": "SF1", "command_id": "sf1-stop"})
    assert stopped.status_code == 200, stopped.text
    # Well within the 60 s periodic rewrite: the stop and the finished file poke it.
    doc = wait_until(
        "the stop in the status file",
        lambda: (d := c.get("/status").json())["recording"] is False and d,
        timeout_s=10,
    )
    assert doc["status"] == "idle"
