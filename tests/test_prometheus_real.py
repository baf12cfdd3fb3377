"""A real Prometheus scrapes a real fleet through the config template in deploy/prometheus/."""

from __future__ import annotations

import secrets
import shutil
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.demo import stop_all
from bench.common import free_port
from tests.conftest import RunningFleet

pytestmark = pytest.mark.slow

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
CAMS = [("CAM_L", "left"), ("CAM_R", "right")]


def render_config(root: Path, fleet: RunningFleet, token: str) -> Path:
    """deploy/prometheus/camfleet-scrape.yml.tmpl filled in for this fleet."""
    token_file = root / "scrape-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    shutil.copy(DEPLOY / "camfleet-rules.yml", root / "camfleet-rules.yml")
    agents = [f"127.0.0.1:{child.port}" for child in fleet.agents.values()]
    text = string.Template((DEPLOY / "camfleet-scrape.yml.tmpl").read_text()).substitute(
        scrape_interval="1s",
        token_file=str(token_file),
        coordinator=f"127.0.0.1:{fleet.coordinator_port}",
        agents="[" + ", ".join(f'"{a}"' for a in agents) + "]",
        rules="camfleet-rules.yml",
    )
    config = root / "prometheus.yml"
    config.write_text(text)
    return config


@pytest.fixture
def prometheus_fleet(tmp_path: Path) -> Iterator[tuple[RunningFleet, str]]:
    """Two agents and a coordinator sharing one scrape token, and Prometheus scraping them."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (apt-get install prometheus; .ci/run does it)")
    token = secrets.token_urlsafe(24)
    fleet = RunningFleet(root=tmp_path, coordinator_env={"CAMFLEET_METRICS__TOKEN": token})
    prom: subprocess.Popen[bytes] | None = None
    try:
        fleet.start_fleet(CAMS, CAMFLEET_METRICS__TOKEN=token)
        config = render_config(tmp_path, fleet, token)
        check = subprocess.run(
            ["promtool", "check", "config", str(config)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        port = free_port()
        with (tmp_path / "prometheus.log").open("wb") as log:
            prom = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        # Until its storage is open Prometheus answers queries 503 (seen beside a busy run).
        ready = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass  # not listening yet
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < ready, "Prometheus not ready after 60 s"
            time.sleep(0.2)
        yield fleet, url
    finally:
        if prom is not None:
            prom.terminate()
            try:
                prom.wait(10)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait(5)
        stop_all(fleet.children(), timeout_s=20)


def query(client: httpx.Client, promql: str) -> list[dict[str, Any]]:
    """The instant vector ``promql`` gives now, over Prometheus's HTTP API."""
    body = client.get("/api/v1/query", params={"query": promql}).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for(client: httpx.Client, promql: str, count: int, timeout_s: float = 20) -> list[Any]:
    """Poll until ``promql`` has ``count`` series (scrapes are every second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = query(client, promql)
        except httpx.TransportError:
            result = []  # Prometheus is still starting
        if len(result) >= count or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def test_prometheus_scrapes_every_node_through_the_scrape_token(
    prometheus_fleet: tuple[RunningFleet, str],
) -> None:
    fleet, url = prometheus_fleet
    with httpx.Client(base_url=url, timeout=5) as prom:
        # Every scrape target up: the coordinator and both agents took the scrape token.
        up = wait_for(prom, "up", 3)
        assert sorted(r["metric"]["job"] for r in up) == [
            "camfleet-agents",
            "camfleet-agents",
            "camfleet-coordinator",
        ], up
        ups = wait_for(prom, "up == 1", 3)
        assert len(ups) == 3, (up, fleet.logs())
        # The coordinator's view: one camfleet_node_up per node, each 1.
        nodes = wait_for(prom, "camfleet_node_up == 1", 2)
        assert {(r["metric"]["node"], r["metric"]["cam_id"]) for r in nodes} == {
            ("cam-l", "CAM_L"),
            ("cam-r", "CAM_R"),
        }
        assert all(r["metric"]["job"] == "camfleet-coordinator" for r in nodes)
        online = query(prom, "camfleet_nodes_online")
        assert [r["value"][1] for r in online] == ["2"]
        # Each agent's own series, scraped from the agent itself.
        for name in (
            "camfleet_build_info",
            "camfleet_disk_free_bytes",
            "camfleet_agent_uptime_seconds",
        ):
            own = wait_for(prom, f'{name}{{job="camfleet-agents"}}', 2)
            assert {r["metric"]["node"] for r in own} == {"cam-l", "cam-r"}, (name, own)
        idle = query(prom, 'camfleet_recorder_state{state="idle"} == 1')
        assert {r["metric"]["cam_id"] for r in idle} == {"CAM_L", "CAM_R"}
        # The rules loaded, and the fleet is healthy: nothing about nodes fires.
        rules = prom.get("/api/v1/rules").json()["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} >= {
            "CamfleetNodeOffline",
            "CamfleetCollectorFailing",
        }
        firing = query(prom, 'ALERTS{alertname="CamfleetNodeOffline"}')
        assert firing == []
