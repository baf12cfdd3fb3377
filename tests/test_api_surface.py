"""What operators and tools see: metrics (checked by promtool), OpenAPI, pages, downloads."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from typing import Any

import httpx
import pytest

from tests.conftest import RunningFleet


@pytest.fixture(scope="module")
def recorded(fleet: RunningFleet) -> dict[str, Any]:
    """One short session, stopped, as the coordinator reports it."""
    with fleet.client() as c:
        session = c.post("/api/v1/sessions", json={"name": "surface", "lead_ms": 200}).json()
        time.sleep(1.2)
        return dict(c.post(f"/api/v1/sessions/{session['session_id']}/stop").json())


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (apt-get install prometheus; .ci/run does it)")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_coordinator_metrics_pass_promtool(fleet: RunningFleet, recorded: dict[str, Any]) -> None:
    idle = 'camfleet_node_recording{cam_id="CAM_C",node_id="cam-c"} 0.0'
    with fleet.client() as c:
        deadline = time.monotonic() + 5
        # the poller refreshes its cache every 0.5 s; the stop has just happened
        while idle not in (text := c.get("/metrics").text) and time.monotonic() < deadline:
            time.sleep(0.1)
    promtool_check(text)
    assert "camfleet_nodes_online 1.0" in text
    assert 'camfleet_node_up{cam_id="CAM_C",node_id="cam-c"} 1.0' in text
    assert idle in text
    assert 'camfleet_command_latency_seconds_count{command="start"} 1.0' in text
    assert 'camfleet_command_latency_seconds_count{command="stop"} 1.0' in text


def test_agent_metrics_pass_promtool(agent: httpx.Client) -> None:
    text = agent.get("/metrics").text
    promtool_check(text)
    assert 'camfleet_recorder_state{cam_id="CAM_C",node_id="cam-c",state="idle"} 1.0' in text
    assert 'camfleet_collector_success{cam_id="CAM_C",collector="disk",node_id="cam-c"} 1.0' in text
    # Every collector reports, working or not (chronyd and a thermal zone may be missing).
    for collector in ("clock", "thermal"):
        assert re.search(rf'collector="{collector}",node_id="cam-c"\}} [01]\.0', text), text


# Routes that answer files, and the types they document.
BINARY = {
    "/api/v1/recordings/{recording_id}/file": {"video/mp4"},
    "/api/v1/sessions/{session_id}/archive": {"application/zip", "application/x-tar"},
    "/api/v1/nodes/{node_id}/recordings/{name}": {"video/mp4", "application/json", "image/jpeg"},
}


def test_every_route_is_documented(fleet: RunningFleet) -> None:
    with fleet.client() as c:
        spec = c.get("/openapi.json").json()
    expected = {
        ("get", "/health"),
        ("post", "/api/v1/nodes/join"),
        ("get", "/api/v1/nodes"),
        ("get", "/api/v1/nodes/{node_id}"),
        ("post", "/api/v1/sessions"),
        ("get", "/api/v1/sessions"),
        ("get", "/api/v1/sessions/{session_id}"),
        ("patch", "/api/v1/sessions/{session_id}"),
        ("post", "/api/v1/sessions/{session_id}/stop"),
        ("get", "/api/v1/recordings"),
        ("post", "/api/v1/selftest"),
        ("post", "/api/v1/sessions/{session_id}/lockview"),
        ("get", "/api/v1/nodes/{node_id}/preview.jpg"),
        ("post", "/api/v1/offload"),
        ("get", "/api/v1/offload"),
        ("get", "/api/v1/offload/{job_id}"),
        ("get", "/api/v1/recordings/{recording_id}/file"),
        ("get", "/api/v1/recordings/{recording_id}/manifest"),
        ("get", "/api/v1/recordings/{recording_id}/lockview.jpg"),
        ("get", "/api/v1/sessions/{session_id}/archive"),
        ("get", "/api/v1/nodes/{node_id}/recordings/{name}"),
        ("post", "/api/v1/nodes/{node_id}/recordings/{name}/confirm"),
        ("delete", "/api/v1/recordings"),
        ("get", "/api/v1/events"),
        ("get", "/metrics"),
        ("get", "/"),
    }
    found = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert expected <= found
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            if path in ("/health", "/"):
                continue
            assert "401" in op["responses"], (method, path)
            if method == "delete" and "204" in op["responses"]:
                continue
            ok = next(
                (op["responses"][s] for s in ("200", "201", "202") if s in op["responses"]), None
            )
            assert ok is not None, (method, path)
            if path.endswith(".jpg"):
                assert "image/jpeg" in ok["content"], (method, path)
            elif path in BINARY:
                assert set(ok["content"]) == BINARY[path], (method, path)
            elif path == "/api/v1/events":
                assert set(ok["content"]) == {"text/event-stream"}, (method, path)
            elif path.startswith("/api/"):
                assert "$ref" in ok["content"]["application/json"]["schema"], (method, path)
    assert "404" in spec["paths"]["/api/v1/sessions/{session_id}"]["get"]["responses"]
    assert "404" in spec["paths"]["/api/v1/sessions/{session_id}"]["patch"]["responses"]
    for path in BINARY:
        assert "404" in spec["paths"][path]["get"]["responses"], path
    assert "416" in spec["paths"]["/api/v1/recordings/{recording_id}/file"]["get"]["responses"]
    assert "206" in spec["paths"]["/api/v1/recordings/{recording_id}/file"]["get"]["responses"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_pages_take_the_token_once_then_a_cookie(fleet: RunningFleet) -> None:
    with httpx.Client(base_url=fleet.url, follow_redirects=True) as browser:
        assert browser.get("/").status_code == 401
        assert browser.get("/docs").status_code == 401
        assert browser.get("/?token=wrong-wrong-wrong-wrong").status_code == 401
        signed_in = browser.get(f"/docs?token={fleet.operator_token}")
        assert signed_in.status_code == 200 and "swagger-ui" in signed_in.text
        assert browser.cookies.get("camfleet_token") == fleet.operator_token
        page = browser.get("/")
        assert page.status_code == 200 and "<title>camfleet</title>" in page.text
        assert browser.get("/api/v1/nodes").json()["total"] == 1
        assert browser.get("/openapi.json").status_code == 200


def test_download_supports_ranges(
    fleet: RunningFleet, recorded: dict[str, Any], agent: httpx.Client
) -> None:
    node = recorded["nodes"][0]
    path = fleet.recordings_dir("CAM_C") / node["file_name"]
    data = path.read_bytes()
    whole = agent.get(f"/api/v1/recordings/{node['file_name']}")
    assert whole.status_code == 200 and whole.content == data
    part = agent.get(f"/api/v1/recordings/{node['file_name']}", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    assert part.content == data[100:1100]
    tail = agent.get(f"/api/v1/recordings/{node['file_name']}", headers={"Range": "bytes=-10"})
    assert tail.content == data[-10:]


def test_agent_lists_finished_recordings_with_manifests(
    recorded: dict[str, Any], agent: httpx.Client
) -> None:
    listing = agent.get("/api/v1/recordings").json()
    entry = next(r for r in listing["recordings"] if r["name"] == recorded["nodes"][0]["file_name"])
    assert entry["complete"] is True
    assert entry["manifest"]["sha256"] == recorded["nodes"][0]["sha256"]
