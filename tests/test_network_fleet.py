"""Three real agents and a real coordinator through boot with no mesh -> the master's AP ->
the clients on it -> the mesh back, each agent with its own fake nmcli over one shared air."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from tests import fake_nmcli
from tests.conftest import CAMERAS, RunningFleet

AP_PSK = "field-rig-0c4e7b91"
MESH_PSK = "mesh-key-a83f20d6"


def network_env(fleet: RunningFleet) -> tuple[Path, dict[str, dict[str, str]]]:
    """The shared air, and each agent's settings: its fake nmcli first on PATH, short
    time-outs, the secrets file."""
    world = fleet.root / "air.json"
    log = fleet.root / "nmcli-calls.jsonl"
    log.touch()
    secrets = fleet.root / "network-secrets.yaml"
    secrets.write_text(f'ap_psk: "{AP_PSK}"\nnetworks:\n  FieldMesh: "{MESH_PSK}"\n')
    secrets.chmod(0o600)
    fake_nmcli.edit_world(world)  # the air exists, with no mesh in it
    extra = {}
    for cam_id, _ in CAMERAS:
        bin_dir = fleet.root / cam_id / "bin"
        fake_nmcli.install(bin_dir, world, cam_id, log)
        extra[cam_id] = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "CAMFLEET_NETWORK__MANAGE": "true",
            "CAMFLEET_NETWORK__NETWORKS": '["FieldMesh"]',
            "CAMFLEET_NETWORK__SECRETS_FILE": str(secrets),
            "CAMFLEET_NETWORK__JOIN_TIMEOUT_S": "3",
            "CAMFLEET_NETWORK__CLIENT_JOIN_TIMEOUT_S": "8",
            "CAMFLEET_NETWORK__MESH_RETRY_S": "4",
            "CAMFLEET_NETWORK__PROBE_TIMEOUT_S": "5",
            "CAMFLEET_NETWORK__POLL_INTERVAL_S": "0.5",
            "CAMFLEET_NETWORK__COMMAND_TIMEOUT_S": "10",
        }
    return world, extra


def modes(c: httpx.Client, seen: list[dict[str, Any]]) -> dict[str, str | None]:
    """Each node's network mode as the coordinator's node list shows it (and offline noted)."""
    body = c.get("/api/v1/nodes").json()
    out: dict[str, str | None] = {}
    for n in body["nodes"]:
        net = (n.get("status") or {}).get("network") or {}
        out[n["cam_id"]] = net.get("mode")
        seen.append(
            {
                "cam_id": n["cam_id"],
                "online": n["online"],
                "mode": net.get("mode"),
                "ssid": net.get("ssid"),
                "t": time.monotonic(),
            }
        )
    return out


def wait_for(
    c: httpx.Client, want: dict[str, str], seen: list[dict[str, Any]], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        got = modes(c, seen)
        if all(got.get(k) == v for k, v in want.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"wanted {want}, the coordinator shows {got}")
        time.sleep(0.25)


def test_boot_without_a_mesh_master_ap_clients_join_then_all_back_on_the_mesh(
    fleet_factory: RunningFleet,
) -> None:
    fleet = fleet_factory
    world, extra = network_env(fleet)
    fleet.start_fleet(CAMERAS, extra)
    seen: list[dict[str, Any]] = []
    with fleet.client() as c:
        wait_for(c, {"CAM_C": "ap_host", "CAM_L": "ap_client", "CAM_R": "ap_client"}, seen, 40)
        nodes = {n["cam_id"]: n for n in c.get("/api/v1/nodes").json()["nodes"]}
        centre = nodes["CAM_C"]["status"]["network"]
        assert (centre["ssid"], centre["ap"], centre["address"]) == (
            "SOCCER_CAM_C",
            True,
            "10.42.0.1/24",
        )
        assert centre["manager"]["phase"] == "ap_host"
        assert centre["manager"]["last_action"] == "raise_ap SOCCER_CAM_C"
        left = nodes["CAM_L"]["status"]["network"]
        assert left["ssid"] == "SOCCER_CAM_C" and left["address"].startswith("10.42.0.")

        token = (fleet.root / "CAM_C" / "api_token").read_text().strip()
        metrics = httpx.get(
            f"http://127.0.0.1:{fleet.agents['CAM_C'].port}/metrics",
            headers={"Authorization": f"Bearer {token}"},
        ).text
        assert (
            'camfleet_network_manager_phase{cam_id="CAM_C",node="cam-c",phase="ap_host"} 1.0'
            in metrics
        )
        assert (
            'camfleet_network_link_info{cam_id="CAM_C",mode="ap_host",node="cam-c",'
            'ssid="SOCCER_CAM_C"} 1.0' in metrics
        )
        config = httpx.get(
            f"http://127.0.0.1:{fleet.agents['CAM_C'].port}/api/v1/config",
            headers={"Authorization": f"Bearer {token}"},
        ).text
        assert "network-secrets.yaml" in config  # the file is named, its keys are not there
        assert AP_PSK not in config and MESH_PSK not in config and AP_PSK not in metrics

        fake_nmcli.edit_world(world, FieldMesh={"signal": 70, "psk": MESH_PSK})  # it is back
        wait_for(c, {"CAM_C": "mesh", "CAM_L": "mesh", "CAM_R": "mesh"}, seen, 40)
        final = {
            n["cam_id"]: n["status"]["network"] for n in c.get("/api/v1/nodes").json()["nodes"]
        }
        assert {k: v["ssid"] for k, v in final.items()} == dict.fromkeys(final, "FieldMesh")

    assert all(s["online"] for s in seen), [s for s in seen if not s["online"]]
    for cam_id, _ in CAMERAS:
        trail = [s["mode"] for s in seen if s["cam_id"] == cam_id]
        assert trail[-1] == "mesh"
    assert "ap_host" in [s["mode"] for s in seen if s["cam_id"] == "CAM_C"]
    text = (fleet.root / "nmcli-calls.jsonl").read_text() + fleet.logs()
    for log in fleet.root.glob("*.log"):
        text += log.read_text(errors="replace")
    for secret in (AP_PSK, MESH_PSK):
        assert secret not in text
    assert "passwd-file" in text  # the keys went through files, not argv
