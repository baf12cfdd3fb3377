"""What operators and tools see: metrics (checked by promtool), OpenAPI, pages, downloads."""

from __future__ import annotations

import json
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
    idle = 'camfleet_node_recording{cam_id="CAM_C",node="cam-c"} 0.0'
    with fleet.client() as c:
        deadline = time.monotonic() + 5
        # the poller refreshes its cache every 0.5 s; the stop has just happened
        while idle not in (text := c.get("/metrics").text) and time.monotonic() < deadline:
            time.sleep(0.1)
    promtool_check(text)
    assert "camfleet_nodes_online 1.0" in text
    assert 'camfleet_node_up{cam_id="CAM_C",node="cam-c"} 1.0' in text
    assert idle in text
    assert 'camfleet_command_latency_seconds_count{command="start"} 1.0' in text
    assert 'camfleet_command_latency_seconds_count{command="stop"} 1.0' in text
    assert 'camfleet_command_results_total{command="start",outcome="ok"} 1.0' in text
    assert 'camfleet_sessions{state="stopped"} 1.0' in text
    assert re.search(
        r'^camfleet_node_disk_recording_seconds_left\{cam_id="CAM_C",node="cam-c"\} \d',
        text,
        re.M,
    )
    assert 'camfleet_node_encode_fps{cam_id="CAM_C",node="cam-c"}' in text
    assert "camfleet_offload_running_bytes 0.0" in text


def test_agent_metrics_pass_promtool(agent: httpx.Client) -> None:
    text = agent.get("/metrics").text
    promtool_check(text)
    assert 'camfleet_recorder_state{cam_id="CAM_C",node="cam-c",state="idle"} 1.0' in text
    assert re.search(
        r'camfleet_build_info\{cam_id="CAM_C",node="cam-c",version="[^"]+"\} 1\.0', text
    )
    assert re.search(r"^camfleet_agent_uptime_seconds\{.*\} [0-9.]+$", text, re.M)
    assert 'camfleet_recorder_frame_rate_fps{cam_id="CAM_C",node="cam-c"} 30.0' in text
    assert re.search(r'camfleet_network_mode\{cam_id="CAM_C",mode="\w+",node="cam-c"\} 1\.0', text)
    assert "camfleet_timelapse_photos_today{" in text
    # No daily window here: the expected count is absent, not zero.
    assert "camfleet_timelapse_photos_expected_today" not in text
    assert "camfleet_chrony_" not in text  # renamed to camfleet_clock_*
    assert 'camfleet_collector_success{cam_id="CAM_C",collector="disk",node="cam-c"} 1.0' in text
    # Every collector reports, working or not (chronyd and a thermal zone may be missing).
    for collector in ("clock", "thermal"):
        assert re.search(rf'collector="{collector}",node="cam-c"\}} [01]\.0', text), text


def metric_names(text: str) -> set[str]:
    """Family and sample names in an exposition (``x_total``, ``x_bucket`` and ``x``)."""
    names = set(re.findall(r"^# TYPE (\w+) ", text, re.M))
    names |= set(re.findall(r"^(camfleet_\w+)[{ ]", text, re.M))
    return names


def test_the_dashboard_queries_only_series_the_exporters_expose(
    fleet: RunningFleet, agent: httpx.Client, recorded: dict[str, Any]
) -> None:
    from tests.test_deploy import DEPLOY, exported_metric_names

    with fleet.client() as c:
        scraped = metric_names(c.get("/metrics").text) | metric_names(agent.get("/metrics").text)
    # Series that only appear with hardware or a plan this fleet lacks (a thermal zone, a
    # battery, a daily window, a readable stills disk) come from the collectors fed a status that has them.
    optional = {
        "camfleet_thermal_cpu_temperature_celsius",
        "camfleet_node_thermal_cpu_temperature_celsius",
        "camfleet_power_on_ac",
        "camfleet_node_power_battery_percent",
        "camfleet_timelapse_photos_expected_today",
        "camfleet_timelapse_disk_used_ratio",
        "camfleet_session_last_skew_seconds",
        "camfleet_session_last_skew_bound_seconds",
    }
    collected = exported_metric_names(fleet.root / "names")
    assert optional <= collected
    dashboard = json.loads((DEPLOY / "grafana" / "camfleet-dashboard.json").read_text())
    for key in ("title", "uid", "schemaVersion", "panels"):
        assert key in dashboard, key
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert {"id", "type", "title", "gridPos"} <= panel.keys(), panel
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and target["expr"]
            # camfleet_x_total / _bucket / _count are sample names of family camfleet_x
            for name in re.findall(r"\b(camfleet_\w+)", target["expr"]):
                used.add(name)
                assert name in scraped or (name in optional and name in collected), (
                    f"{panel['title']}: {name} is not exposed"
                )
    titles = {p["title"] for p in dashboard["panels"]}
    for spec_panel in (
        "Capture progress today vs expected",
        "Disk use over time",
        "CPU temperature",
        "Daily photo counts",
        "Error timeline",
        "Nodes online",
        "Session start skew",
        "Offload backlog",
    ):
        assert spec_panel in titles
    assert len(used) >= 20


# The live view's stream (common.mjpeg.CONTENT_TYPE).
MJPEG = "multipart/x-mixed-replace; boundary=camfleetframe"
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
        ("post", "/api/v1/nodes/handshake"),
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
        ("get", "/api/v1/nodes/{node_id}/live.mjpg"),
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
            if path != "/api/v1/nodes/handshake":  # no token: docs/discovery.md
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
            elif path.endswith(".mjpg"):
                assert set(ok["content"]) == {MJPEG}, (method, path)
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


def test_pages_take_the_token_once_then_a_session_cookie(fleet: RunningFleet) -> None:
    with httpx.Client(base_url=fleet.url, follow_redirects=True) as browser:
        to_login = browser.get("/")
        assert to_login.status_code == 200 and to_login.url.path == "/login"
        assert browser.get("/docs").url.params["next"] == "/docs"
        assert browser.get("/?token=wrong-wrong-wrong-wrong").status_code == 401
        signed_in = browser.get(f"/docs?token={fleet.operator_token}")
        assert signed_in.status_code == 200 and "swagger-ui" in signed_in.text
        assert signed_in.url.query == b""  # the token left the address bar
        session = browser.cookies.get("camfleet_session")
        assert session and fleet.operator_token not in session
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
