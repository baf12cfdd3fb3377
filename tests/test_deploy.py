"""The deploy/ files: configs the programs accept, a setup script that installs them, and
Prometheus/Grafana files that name metrics the programs really export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from app.context import build_fleet
from app.db import make_engine
from app.fleet.client import NodeAddress
from app.metrics import FleetExposition, SessionSnapshot, render
from app.offload.metrics import OffloadMetrics
from app.settings import load_coordinator_settings
from node_agent.metrics import AgentCollector
from node_agent.network.metrics import NetworkCollector
from node_agent.network.schemas import (
    ManagerPhase,
    NetworkManagerStatus,
    NetworkMode,
    NetworkStatus,
)
from node_agent.power.schemas import PowerLevel, PowerReading, PowerStatus
from node_agent.settings import load_agent_settings
from node_agent.telemetry.reading import Reading
from node_agent.timelapse.metrics import TimelapseCollector
from node_agent.timelapse.schemas import (
    CycleState,
    DiskState,
    TimelapseCycle,
    TimelapseDay,
    TimelapseDisk,
)
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


def test_setup_installs_the_dashcam_mode_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_setup(tmp_path, "--role", "dashcam", "--cam-id", "DASH_1")
    units = tmp_path / "etc/systemd/system"
    assert (units / "camfleet-dashcam.service").exists()
    assert not (units / "camfleet-agent.service").exists()  # one owner of the USB port
    assert (tmp_path / "etc/logrotate.d/camfleet").read_text() == (
        DEPLOY / "logrotate" / "camfleet"
    ).read_text()
    assert (tmp_path / "var/lib/camera_service/staging").stat().st_mode & 0o777 == 0o700
    assert "--dry-run --once" in out
    etc = tmp_path / "etc" / "camfleet"
    monkeypatch.setenv("CAMFLEET_AGENT_CONFIG", str(etc / "agent.yaml"))
    settings = load_agent_settings(api_token=env_file(etc / "agent.env")["CAMFLEET_API_TOKEN"])
    assert (settings.node_id, settings.cam_id, settings.dashcam.enabled) == (
        "dash-1",
        "DASH_1",
        True,
    )


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (apt-get install prometheus; .ci/run does it)")
    return path


def test_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    config = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    for name in ("camfleet-metrics-token",):
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
    assert "SUCCESS: 12 rules found" in done.stdout


def test_every_alert_fires_and_stays_quiet_in_the_rule_unit_tests() -> None:
    tests = (DEPLOY / "prometheus" / "camfleet-rules.test.yml").read_text()
    rules = (DEPLOY / "prometheus" / "camfleet-rules.yml").read_text()
    for alert in re.findall(r"- alert: (\w+)", rules):
        assert f"alertname: {alert}\n" in tests, f"{alert} has no unit test"
    done = subprocess.run(
        [promtool(), "test", "rules", "camfleet-rules.test.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def exported_metric_names(tmp_path: Path) -> set[str]:
    """Sample names both programs export, from their real collectors."""
    ctx = build_context(load_agent_settings(data_dir=tmp_path / "agent"))
    # Every optional part present, so that every series that can appear does.
    bare = ctx.status()
    status = bare.model_copy(
        update={
            "clock": bare.clock.model_copy(update={"offset_ns": 5, "error_bound_ns": 50}),
            "cpu_temp_c": 45.0,
            "power": PowerStatus(
                provider="command",
                level=PowerLevel.ok,
                reason="ok",
                reading=PowerReading(
                    provider="command",
                    ok=True,
                    percent=80,
                    voltage_v=3.3,
                    on_ac=False,
                    read_at_ns=1,
                ),
                age_s=1,
            ),
        }
    )
    registry = CollectorRegistry()
    registry.register(AgentCollector(lambda: status, lambda: [Reading("disk", 1)]))

    disk = TimelapseDisk(
        path="/",
        total_bytes=10,
        free_bytes=5,
        used_percent=50,
        warn_percent=80,
        stop_percent=90,
        state=DiskState.ok,
    )
    # the daily cycle's plan, where the cycle puts it
    today = TimelapseDay(
        date="2026-05-04", window="fixed", interval_seconds=60, expected_photos=750
    )
    cycle = TimelapseCycle(state=CycleState.capturing, since_ns=1, today=today)
    planned = ctx.timelapse.status().model_copy(update={"disk": disk, "cycle": cycle})
    registry.register(TimelapseCollector(lambda: planned, "n1", "CAM_C"))
    # the mesh / AP manager's series (network.manage), with every optional field present
    managed = NetworkStatus(
        mode=NetworkMode.ap_client,
        ssid="SOCCER_CAM_C",
        signal=60,
        manager=NetworkManagerStatus(phase=ManagerPhase.ap_client, since=datetime.now(UTC)),
    )
    registry.register(NetworkCollector(lambda: managed, "n1", "CAM_C"))
    settings = load_coordinator_settings(
        operator_token="operator-token-0123456789",
        fleet_token="fleet-token-0123456789",
        data_dir=tmp_path / "coord",
    )
    fleet = build_fleet(settings, make_engine("sqlite://"))
    fleet.state.set_address(NodeAddress("n1", "127.0.0.1", 1, "t"), "CAM_C")
    fleet.state.cache["n1"].status = status.model_copy(
        update={"clock": status.clock.model_copy(update={"offset_ns": 5, "error_bound_ns": 50})}
    )
    fleet.state.cache["n1"].status_at_ns = 1
    snapshot = SessionSnapshot({"stopped": 1}, 0.001, 0.002)
    exposition = FleetExposition(fleet.state, lambda: snapshot)
    OffloadMetrics.register(fleet.registry)
    fleet.command_latency.labels("start").observe(0.01)
    assert fleet.fanout.on_result is not None
    fleet.fanout.on_result("start", "ok")  # what a call's bookkeeping does
    text = (generate_latest(registry) + render(fleet.registry, exposition)).decode()
    samples = (line for line in text.splitlines() if line and not line.startswith("#"))
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in samples}


def test_dashboard_and_alerts_use_metrics_that_exist(tmp_path: Path) -> None:
    names = exported_metric_names(tmp_path)
    dashboard = json.loads((DEPLOY / "grafana" / "camfleet-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += re.findall(r"expr: (.+)", (DEPLOY / "prometheus" / "camfleet-rules.yml").read_text())
    assert len(exprs) >= 10
    for expr in exprs:
        for metric in re.findall(r"camfleet_[a-z_]+", expr):
            assert metric in names, f"{metric} in {expr!r} is not exported"


def unit_settings(path: Path) -> dict[str, dict[str, str]]:
    """A systemd unit's sections and keys (the last value of a repeated key)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key] = value
    return sections


def test_the_dashcam_unit_runs_the_loop_as_root_and_stops_within_30_s() -> None:
    unit = DEPLOY / "systemd" / "camfleet-dashcam.service"
    s = unit_settings(unit)
    service = s["Service"]
    assert (service["User"], service["Type"]) == ("root", "simple")
    assert service["ExecStart"].endswith("camfleet dashcam --config /etc/camfleet/agent.yaml")
    assert (service["TimeoutStopSec"], service["Restart"]) == ("30", "on-failure")
    assert "network-online.target" in s["Unit"]["After"]
    # systemd-analyze verify: tests/test_systemd_units.py, for every unit


def test_logrotate_rotates_the_dashcam_log_weekly_in_place() -> None:
    text = (DEPLOY / "logrotate" / "camfleet").read_text()
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    path, brace = lines[0].split()
    assert brace == "{" and lines[-1] == "}"
    directives = set(lines[1:-1])
    assert {
        "weekly",
        "rotate 8",
        "compress",
        "missingok",
        "notifempty",
        "copytruncate",
    } <= directives
    assert path == "/var/log/camfleet/dashcam.log"
    example = yaml.safe_load((DEPLOY / "dashcam.example.yaml").read_text())
    assert example["dashcam"]["paths"]["log_path"] == path


def test_the_dashcam_example_is_valid_agent_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMFLEET_AGENT_CONFIG", str(DEPLOY / "dashcam.example.yaml"))
    settings = load_agent_settings()
    d = settings.dashcam
    assert d.enabled and (d.camera.hub_location, d.camera.port_number) == ("1-1", 1)
    assert (d.upload.host, d.upload.dest_path) == ("192.168.1.203", "/data/dashcam")
    assert (d.poll.interval_seconds, d.poll.mount_timeout_seconds) == (30, 20)
    assert (settings.power.disconnect_percent, settings.power.shutdown_percent) == (50, 25)


@pytest.mark.parametrize("role", ["master", "client"])
def test_the_committed_chrony_configs_are_the_default_renderings(role: str) -> None:
    from node_agent.sync.render import render
    from node_agent.sync.settings import SyncSettings

    committed = (DEPLOY / "chrony" / f"chrony-{role}.conf").read_text()
    assert committed == render(role, SyncSettings()), (
        f"deploy/chrony/chrony-{role}.conf drifted from node_agent/sync/render.py: "
        f"regenerate it with `camfleet sync role {role} --dry-run`"
    )


@pytest.mark.parametrize("role", ["master", "client"])
def test_the_sync_units_apply_the_role_before_time_sync(role: str) -> None:
    unit = DEPLOY / "systemd" / f"sync-{role}.service"
    s = unit_settings(unit)
    service = s["Service"]
    assert (service["Type"], service["RemainAfterExit"]) == ("oneshot", "yes")
    assert service["ExecStart"].endswith(
        f"camfleet sync role {role} --config /etc/camfleet/agent.yaml"
    )
    assert "chrony.service" in s["Unit"]["After"] and "time-sync.target" in s["Unit"]["Before"]
    other = "client" if role == "master" else "master"
    assert s["Unit"]["Conflicts"] == f"sync-{other}.service"
    # systemd-analyze verify: tests/test_systemd_units.py, for every unit


@pytest.mark.parametrize("name", ["camfleet-agent.service", "camfleet-dashcam.service"])
def test_the_recording_units_wait_for_time_sync(name: str) -> None:
    unit = unit_settings(DEPLOY / "systemd" / name)["Unit"]
    assert "time-sync.target" in unit["After"].split()
    assert "time-sync.target" in unit["Wants"].split()


def test_setup_installs_the_sync_unit_of_the_role(tmp_path: Path) -> None:
    run_setup(tmp_path, "--role", "coordinator", "--chrony", "client")
    units = tmp_path / "etc" / "systemd" / "system"
    assert (units / "sync-client.service").read_text() == (
        DEPLOY / "systemd" / "sync-client.service"
    ).read_text()
    assert not (units / "sync-master.service").exists()


def test_docs_metrics_lists_every_series(tmp_path: Path) -> None:
    doc = (DEPLOY.parent / "docs" / "metrics.md").read_text()

    # A family's sample names (x_total, x_bucket, x_created, ...) count as the family.
    def family(name: str) -> str:
        return re.sub(r"_(total|bucket|sum|count|created)$", "", name)

    documented = {family(n) for n in re.findall(r"`(camfleet_[a-z_]+)", doc)}
    for name in exported_metric_names(tmp_path):
        assert family(name) in documented, f"{name} is not in docs/metrics.md"
