"""The deploy/ files: configs the programs accept, a setup script that installs them, and
Prometheus/Grafana files that name metrics the programs really export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from app.context import build_fleet
from app.db import make_engine
from app.fleet.client import NodeAddress
from app.metrics import FleetCollector
from app.offload.metrics import OffloadMetrics
from app.settings import load_coordinator_settings
from node_agent.metrics import AgentCollector
from node_agent.settings import load_agent_settings
from node_agent.wiring import build_context

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs}


def run_setup(root: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "bash",
            str(DEPLOY / "setup-node.sh"),
            "--root",
            str(root),
            "--no-apt",
            "--no-install",
            "--no-systemctl",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_setup_installs_configs_the_programs_accept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_setup(tmp_path, "--role", "both", "--cam-id", "CAM_C", "--position", "centre")
    etc = tmp_path / "etc" / "camfleet"
    assert "wrote" in out
    agent_env, coord_env = env_file(etc / "agent.env"), env_file(etc / "coordinator.env")
    assert agent_env["CAMFLEET_FLEET_TOKEN"] == coord_env["CAMFLEET_FLEET_TOKEN"]
    assert (etc / "agent.env").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "etc/systemd/system/camfleet-agent.service").exists()
    assert (tmp_path / "etc/systemd/system/camfleet-coordinator.service").exists()

    monkeypatch.setenv("CAMFLEET_AGENT_CONFIG", str(etc / "agent.yaml"))
    agent = load_agent_settings(
        fleet_token=agent_env["CAMFLEET_FLEET_TOKEN"], api_token=agent_env["CAMFLEET_API_TOKEN"]
    )
    assert (agent.node_id, agent.cam_id, agent.position.value) == ("cam-c", "CAM_C", "centre")
    monkeypatch.setenv("CAMFLEET_COORDINATOR_CONFIG", str(etc / "coordinator.yaml"))
    coord = load_coordinator_settings(
        operator_token=coord_env["CAMFLEET_OPERATOR_TOKEN"],
        fleet_token=coord_env["CAMFLEET_FLEET_TOKEN"],
    )
    assert coord.port == 8080

    again = run_setup(tmp_path, "--role", "both", "--cam-id", "CAM_C", "--position", "centre")
    assert "keeping" in again
    assert env_file(etc / "agent.env") == agent_env  # secrets survive a re-run


def test_setup_refuses_an_agent_without_a_fleet_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            "bash",
            str(DEPLOY / "setup-node.sh"),
            "--root",
            str(tmp_path),
            "--no-apt",
            "--no-install",
            "--no-systemctl",
            "--role",
            "agent",
            "--cam-id",
            "CAM_L",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--fleet-token is required" in done.stderr


def test_setup_installs_the_chrony_role(tmp_path: Path) -> None:
    run_setup(tmp_path, "--role", "coordinator", "--chrony", "master")
    conf = (tmp_path / "etc/chrony/conf.d/camfleet.conf").read_text()
    assert "local stratum" in conf


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (apt-get install prometheus; .ci/run does it)")
    return path


def test_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    for name in ("camfleet-operator-token", "camfleet-agent-token"):
        (tmp_path / name).write_text("token\n")
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/", f"{tmp_path}/"))
    shutil.copy(DEPLOY / "prometheus" / "camfleet-rules.yml", tmp_path)
    done = subprocess.run(
        [promtool(), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def exported_metric_names(tmp_path: Path) -> set[str]:
    """Sample names both programs export, from their real collectors."""
    ctx = build_context(load_agent_settings(data_dir=tmp_path / "agent"))
    status = ctx.status()
    registry = CollectorRegistry()
    registry.register(AgentCollector(lambda: status))
    settings = load_coordinator_settings(
        operator_token="operator-token-0123456789",
        fleet_token="fleet-token-0123456789",
        data_dir=tmp_path / "coord",
    )
    fleet = build_fleet(settings, make_engine("sqlite://"))
    fleet.state.set_address(NodeAddress("n1", "127.0.0.1", 1, "t"), "CAM_C")
    fleet.state.cache["n1"].status = status.model_copy(
        update={"clock": status.clock.model_copy(update={"offset_ns": 5})}
    )
    fleet.registry.register(FleetCollector(fleet.state))
    OffloadMetrics.register(fleet.registry)
    fleet.command_latency.labels("start").observe(0.01)
    text = (generate_latest(registry) + generate_latest(fleet.registry)).decode()
    samples = (line for line in text.splitlines() if line and not line.startswith("#"))
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in samples}


def test_dashboard_and_alerts_use_metrics_that_exist(tmp_path: Path) -> None:
    names = exported_metric_names(tmp_path)
    dashboard = json.loads((DEPLOY / "grafana" / "camfleet-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += re.findall(r"expr: (.+)", (DEPLOY / "prometheus" / "camfleet-rules.yml").read_text())
    assert len(exprs) >= 10
    for expr in exprs:
        for metric in re.findall(r"camfleet_[a-z_]+", expr):
            assert metric in names, f"{metric} in {expr!r} is not exported"
