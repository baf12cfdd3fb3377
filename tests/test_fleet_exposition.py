"""The coordinator's hand-written fleet exposition: what it says, and that Prometheus reads it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import __version__
from app.context import build_fleet
from app.db import make_engine
from app.fleet.client import NodeAddress
from app.metrics import FleetExposition, SessionSnapshot, refresh_sessions, render
from app.settings import load_coordinator_settings
from node_agent.settings import load_agent_settings
from node_agent.wiring import build_context


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_fleet_exposition_reports_each_node_and_reads_back(tmp_path: Path) -> None:
    status = build_context(load_agent_settings(data_dir=tmp_path / "agent")).status()
    settings = load_coordinator_settings(
        operator_token="operator-token-0123456789",
        fleet_token="fleet-token-0123456789",
        data_dir=tmp_path / "coord",
    )
    fleet = build_fleet(settings, make_engine("sqlite://"))
    # A cam_id with the characters the text format escapes: it must come back intact.
    odd = 'CAM "odd" \\ one'
    fleet.state.set_address(NodeAddress("n1", "127.0.0.1", 1, "t"), odd)
    fleet.state.set_address(NodeAddress("n2", "127.0.0.1", 2, "t"), "CAM_R")  # never answered
    fleet.state.cache["n1"].status = status.model_copy(
        update={
            "cpu_temp_c": 51.5,
            "clock": status.clock.model_copy(update={"offset_ns": 1500, "error_bound_ns": 20_000}),
        }
    )
    fleet.state.cache["n1"].status_at_ns = time.time_ns()
    fleet.state.contact("n1")
    snapshot = SessionSnapshot({"stopped": 2, "recording": 1}, 0.0004, 0.0011)
    text = render(fleet.registry, FleetExposition(fleet.state, lambda: snapshot)).decode()

    got = samples(text)
    n1 = (("cam_id", odd), ("node", "n1"))
    n2 = (("cam_id", "CAM_R"), ("node", "n2"))
    assert got[("camfleet_nodes", ())] == 2
    assert got[("camfleet_build_info", (("version", __version__),))] == 1
    assert got[("camfleet_nodes_online", ())] == 1
    assert got[("camfleet_node_up", n1)] == 1 and got[("camfleet_node_up", n2)] == 0
    assert got[("camfleet_node_clock_offset_seconds", n1)] == 1.5e-6
    assert got[("camfleet_node_clock_error_bound_seconds", n1)] == 2e-5
    assert got[("camfleet_node_thermal_cpu_temperature_celsius", n1)] == 51.5
    assert got[("camfleet_node_disk_free_bytes", n1)] == status.disk.free_bytes
    assert got[("camfleet_node_disk_recording_seconds_left", n1)] == status.disk.minutes_left * 60
    # A node that never answered has its up series and nothing made up.
    assert [k for k in got if ("node", "n2") in k[1]] == [("camfleet_node_up", n2)]
    # No battery reading: absent, not zero.
    assert ("camfleet_node_power_battery_percent", n1) not in got
    assert got[("camfleet_sessions", (("state", "stopped"),))] == 2
    assert got[("camfleet_sessions", (("state", "aborted"),))] == 0
    assert got[("camfleet_session_last_skew_seconds", ())] == 0.0004
    assert got[("camfleet_session_last_skew_bound_seconds", ())] == 0.0011
    assert got[("camfleet_offload_running_bytes", ())] == 0
    # The registry's half is there too (the latency histogram, the command results).
    assert "# TYPE camfleet_command_latency_seconds histogram" in text

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (apt-get install prometheus; .ci/run does it)")
    done = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_skew_yet_leaves_the_skew_series_out(tmp_path: Path) -> None:
    settings = load_coordinator_settings(
        operator_token="operator-token-0123456789",
        fleet_token="fleet-token-0123456789",
        data_dir=tmp_path / "coord",
    )
    fleet = build_fleet(settings, make_engine("sqlite://"))
    text = FleetExposition(fleet.state).render()
    assert "camfleet_session_last_skew" not in text
    assert "camfleet_nodes 0.0\n" in text


def test_a_database_that_cannot_answer_keeps_the_last_session_figures(tmp_path: Path) -> None:
    settings = load_coordinator_settings(
        operator_token="operator-token-0123456789",
        fleet_token="fleet-token-0123456789",
        data_dir=tmp_path / "coord",
    )
    fleet = build_fleet(settings, make_engine("sqlite://"))  # not migrated: no tables
    before = SessionSnapshot({"stopped": 3}, 0.001, 0.002)
    fleet.sessions_snapshot = before
    asyncio.run(refresh_sessions(fleet))
    assert fleet.sessions_snapshot is before


def test_a_scrape_after_a_change_shows_the_new_values_and_only_the_nodes_still_joined(
    tmp_path: Path,
) -> None:
    status = build_context(load_agent_settings(data_dir=tmp_path / "agent")).status()
    settings = load_coordinator_settings(
        operator_token="operator-token-0123456789",
        fleet_token="fleet-token-0123456789",
        data_dir=tmp_path / "coord",
    )
    fleet = build_fleet(settings, make_engine("sqlite://"))
    for n, cam in (("n1", "CAM_L"), ("n2", "CAM_R"), ("n3", "CAM_C")):
        fleet.state.set_address(NodeAddress(n, "127.0.0.1", 1, "t"), cam)
        fleet.state.cache[n].status = status
        fleet.state.cache[n].status_at_ns = time.time_ns()
        fleet.state.contact(n)
    exposition = FleetExposition(fleet.state)
    first = samples(exposition.render())
    n1 = (("cam_id", "CAM_L"), ("node", "n1"))
    n2 = (("cam_id", "CAM_R"), ("node", "n2"))
    assert first[("camfleet_node_disk_free_bytes", n1)] == status.disk.free_bytes
    # n1's disk fills, n2 goes quiet (no new status), n3 leaves the fleet, n2 is renamed
    fleet.state.cache["n1"].status = status.model_copy(
        update={
            "disk": status.disk.model_copy(update={"free_bytes": 12345}),
            "cpu_temp_c": 70.0,
        }
    )
    fleet.state.cache["n2"].down = True
    fleet.state.remove("n3")
    fleet.state.set_address(NodeAddress("n2", "127.0.0.1", 1, "t"), "CAM_X")
    second = samples(exposition.render())
    assert second[("camfleet_node_disk_free_bytes", n1)] == 12345
    assert second[("camfleet_node_thermal_cpu_temperature_celsius", n1)] == 70.0
    n2x = (("cam_id", "CAM_X"), ("node", "n2"))
    assert second[("camfleet_node_up", n2x)] == 0 and ("camfleet_node_up", n2) not in second
    assert second[("camfleet_node_disk_free_bytes", n2x)] == status.disk.free_bytes
    assert not [k for k in second if ("node", "n3") in k[1]]
    # and a third scrape with nothing changed says the same again
    assert samples(exposition.render()).keys() == second.keys()
