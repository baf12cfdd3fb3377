"""The timelapse in real processes: an agent reloaded by SIGHUP, a fleet started and stopped."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import CAMERAS, RunningFleet

pytestmark = pytest.mark.slow

SYNTHETIC = {"CAMFLEET_CAMERA__SOURCE": "synthetic"}


def agent_client(fleet: RunningFleet, cam_id: str) -> httpx.Client:
    token = (fleet.root / cam_id / "api_token").read_text().strip()
    return httpx.Client(
        base_url=f"http://127.0.0.1:{fleet.agents[cam_id].port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = 15) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def lone_agent(fleet_factory: RunningFleet) -> Iterator[tuple[RunningFleet, httpx.Client]]:
    """One agent, no coordinator, with its settings in a YAML file."""
    config = fleet_factory.root / "cam_t.yml"
    config.write_text(yaml.safe_dump({"timelapse": {"interval_s": 0.5}}))
    fleet_factory.start_agent(
        "CAM_T",
        "other",
        CAMFLEET_AGENT_CONFIG=str(config),
        CAMFLEET_COORDINATOR_URL="",
        CAMFLEET_FLEET_TOKEN="",
        **SYNTHETIC,
    )
    with agent_client(fleet_factory, "CAM_T") as client:
        yield fleet_factory, client


def test_sighup_reloads_the_interval_and_names_what_needs_a_restart(
    lone_agent: tuple[RunningFleet, httpx.Client],
) -> None:
    fleet, client = lone_agent
    child = fleet.agents["CAM_T"]
    log = fleet.root / "CAM_T.log"
    config = fleet.root / "cam_t.yml"

    started = client.post("/api/v1/timelapse/start")
    assert started.status_code == 200, started.text
    assert started.json()["interval_s"] == 0.5
    wait_until("a still", lambda: client.get("/api/v1/timelapse").json()["captures_total"] >= 1)

    config.write_text(
        yaml.safe_dump({"timelapse": {"interval_s": 0.3, "width": 640, "height": 480}})
    )
    os.kill(child.proc.pid, signal.SIGHUP)
    wait_until(
        "the new interval", lambda: client.get("/api/v1/timelapse").json()["interval_s"] == 0.3
    )
    restart_line = wait_until(
        "the restart warning",
        lambda: [ln for ln in log.read_text().splitlines() if "need a restart" in ln],
    )
    assert "timelapse.height, timelapse.width" in restart_line[0]
    status = client.get("/api/v1/timelapse").json()
    assert status["running"] and (status["width"], status["height"]) == (320, 240)

    # A bad configuration is refused, with the reason, and the running one is kept.
    config.write_text("timelapse:\n  interval_s: -1\n")
    os.kill(child.proc.pid, signal.SIGHUP)
    wait_until(
        "the refusal", lambda: "timelapse.interval_s" in log.read_text().split("refused")[-1]
    )
    config.write_text("timelapse: [interval_s\n")
    os.kill(child.proc.pid, signal.SIGHUP)
    wait_until("the YAML error", lambda: "cannot be read" in log.read_text())
    assert child.proc.poll() is None
    assert client.get("/api/v1/timelapse").json()["interval_s"] == 0.3

    # The node status carries the timelapse; its routes take the agent's token.
    node = client.get("/api/v1/status").json()
    assert node["timelapse"]["running"] is True
    base = f"http://127.0.0.1:{child.port}"
    assert httpx.get(f"{base}/api/v1/timelapse").status_code == 401
    assert httpx.post(f"{base}/api/v1/timelapse/stop").status_code == 401

    # While the timelapse holds the camera, a recording gets a clear busy answer.
    busy = client.post("/api/v1/recording/start", json={"session_id": "S1", "command_id": "c1"})
    assert busy.status_code == 409 and "timelapse" in busy.json()["detail"], busy.text

    stopped = client.post("/api/v1/timelapse/stop").json()
    assert stopped["running"] is False and stopped["captures_total"] >= 1
    # The camera is free again.
    recording = client.post(
        "/api/v1/recording/start", json={"session_id": "S2", "command_id": "c2"}
    )
    assert recording.status_code == 200, recording.text
    ended = client.post("/api/v1/recording/stop", json={"session_id": "S2", "command_id": "c3"})
    assert ended.status_code == 200, ended.text
    still = client.get("/api/v1/timelapse/latest.jpg")
    assert still.status_code == 200 and still.content[:2] == b"\xff\xd8"
    stills = list((fleet.root / "CAM_T" / "timelapse").rglob("*.jpg"))
    assert len(stills) == stopped["captures_total"]


def test_the_coordinator_starts_and_stops_the_timelapse_fleet_wide(
    fleet_factory: RunningFleet,
) -> None:
    fleet_factory.start_fleet(CAMERAS, {cam: SYNTHETIC for cam, _ in CAMERAS})
    ids = ["cam-c", "cam-l", "cam-r"]
    with fleet_factory.client() as c:
        assert httpx.post(f"{fleet_factory.url}/api/v1/timelapse/start").status_code == 401

        started = c.post("/api/v1/timelapse/start", json={"interval_s": 0.5})
        assert started.status_code == 200, started.text
        body = started.json()
        assert (body["command"], body["ok"], body["failed"]) == ("start", 3, 0)
        assert sorted(n["node_id"] for n in body["nodes"]) == ids
        for n in body["nodes"]:
            assert n["timelapse"]["running"] is True and n["timelapse"]["interval_s"] == 0.5

        # Starting again: every node refuses on its own, with its reason.
        again = c.post("/api/v1/timelapse/start").json()
        assert (again["ok"], again["failed"]) == (0, 3)
        for n in again["nodes"]:
            assert n["status_code"] == 409 and "already running" in n["error"]

        for cam_id, _ in CAMERAS:
            with agent_client(fleet_factory, cam_id) as agent:

                def has_a_still(a: httpx.Client = agent) -> bool:
                    return bool(a.get("/api/v1/timelapse").json()["captures_total"] >= 1)

                wait_until(f"a still on {cam_id}", has_a_still)

        one = c.post("/api/v1/timelapse/stop", json={"node_ids": ["cam-l"]}).json()
        assert [(n["node_id"], n["ok"]) for n in one["nodes"]] == [("cam-l", True)]
        assert one["nodes"][0]["timelapse"]["running"] is False

        unknown = c.post("/api/v1/timelapse/start", json={"node_ids": ["cam-x"]})
        assert unknown.status_code == 404 and "cam-x" in unknown.json()["detail"]
        bad = c.post("/api/v1/timelapse/start", json={"interval_s": 0})
        assert bad.status_code == 422 and "interval_s" in bad.json()["detail"]

        # A node that is gone is reported as unreachable; the others stop.
        fleet_factory.kill(fleet_factory.agents.pop("CAM_R"))
        stopped = c.post("/api/v1/timelapse/stop").json()
        by_node = {n["node_id"]: n for n in stopped["nodes"]}
        assert by_node["cam-r"]["ok"] is False and by_node["cam-r"]["status_code"] is None
        assert "unreachable" in by_node["cam-r"]["error"]
        for node_id in ("cam-c", "cam-l"):  # cam-l was stopped already: still ok
            assert by_node[node_id]["ok"] is True
            assert by_node[node_id]["timelapse"]["running"] is False
        assert (stopped["ok"], stopped["failed"]) == (2, 1)

        spec = c.get("/openapi.json").json()["paths"]
        for path in ("/api/v1/timelapse/start", "/api/v1/timelapse/stop"):
            assert "401" in spec[path]["post"]["responses"]
            assert (
                "$ref"
                in spec[path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
            )
    for cam_id in ("CAM_L", "CAM_C"):
        assert list((fleet_factory.root / cam_id / "timelapse").rglob("*.jpg"))


def test_autostart_runs_at_boot_and_a_shutdown_ends_it(fleet_factory: RunningFleet) -> None:
    child = fleet_factory.start_agent(
        "CAM_A",
        "other",
        CAMFLEET_TIMELAPSE__AUTOSTART="true",
        CAMFLEET_TIMELAPSE__INTERVAL_S="0.2",
        CAMFLEET_COORDINATOR_URL="",
        CAMFLEET_FLEET_TOKEN="",
        **SYNTHETIC,
    )
    with agent_client(fleet_factory, "CAM_A") as client:
        status = client.get("/api/v1/timelapse").json()
        assert status["running"] is True and status["interval_s"] == 0.2
        wait_until("a still", lambda: client.get("/api/v1/timelapse").json()["captures_total"])
    child.proc.send_signal(signal.SIGTERM)
    child.proc.wait(20)
    fleet_factory.agents.pop("CAM_A")
    assert "Traceback" not in (fleet_factory.root / "CAM_A.log").read_text()
    assert list((fleet_factory.root / "CAM_A" / "timelapse").rglob("*.jpg"))


def test_a_rendered_day_downloads_and_previews_show_the_timelapse(
    lone_agent: tuple[RunningFleet, httpx.Client],
) -> None:
    import datetime as dt

    import av

    _, client = lone_agent
    assert client.post("/api/v1/timelapse/start", json={"interval_s": 1.0}).status_code == 200
    wait_until(
        "three stills", lambda: client.get("/api/v1/timelapse").json()["captures_total"] >= 3
    )
    # the timelapse holds the camera: a preview answers at once with its last still
    t0 = time.monotonic()
    preview = client.get("/api/v1/preview.jpg")
    assert preview.status_code == 200 and preview.content[:2] == b"\xff\xd8"
    assert preview.content == client.get("/api/v1/timelapse/latest.jpg").content
    assert time.monotonic() - t0 < 1.0
    # Lock View with the camera held by the timelapse: a clear 409, not a 500
    busy = client.post("/api/v1/lockview", json={"session_id": "S1"})
    assert busy.status_code == 409, busy.text
    assert "busy: timelapse" in busy.json()["detail"]
    client.post("/api/v1/timelapse/stop")
    day = dt.date.today().isoformat()  # the node names days by its local date
    video = client.post("/api/v1/timelapse/render", json={"day": day, "fps": 10})
    assert video.status_code == 200, video.text
    name = video.json()["file_name"].rsplit("/", 1)[-1]
    download = client.get(f"/api/v1/timelapse/videos/{name}")
    assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
    path = lone_agent[0].root / "dl.mp4"
    path.write_bytes(download.content)
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) >= 3
    for bad in ("..%2Fapi_token", "nope.mp4", "x.exe"):
        assert client.get(f"/api/v1/timelapse/videos/{bad}").status_code in (400, 404)
