"""The nmcli adapter and the network manager against a fake ``nmcli`` on PATH (one shared
"air"), the secrets file, and the network settings."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from node_agent.commands import CommandRunner
from node_agent.network.nmcli import (
    AP_CONNECTION,
    Nmcli,
    NmcliError,
    parse_fields,
    parse_scan,
    split_terse,
)
from node_agent.network.plan import Phase
from node_agent.network.schemas import NetworkMode, NetworkStatus
from node_agent.network.secrets import NetworkSecrets, SecretsError, load_secrets
from node_agent.network.service import NetworkService, plan_config
from node_agent.network.settings import NetworkSettings
from tests import fake_nmcli

AP_PSK = "rig-key-7f3a9c2e"
MESH_PSK = "mesh-pass-51d0b8"
SECRETS = (AP_PSK, MESH_PSK)


def test_terse_lines_split_at_unescaped_colons() -> None:
    assert split_terse(r"*:Cafe\:Bar:72:WPA2") == ["*", "Cafe:Bar", "72", "WPA2"]
    assert split_terse(r" :back\\slash:5:") == [" ", "back\\slash", "5", ""]
    assert split_terse("") == [""]


def test_a_scan_keeps_the_strongest_of_each_ssid_and_the_one_in_use() -> None:
    text = "\n".join(
        [
            " :FieldMesh:40:WPA2",
            " :FieldMesh:75:WPA2",
            r" :Odd\:name:30:",
            " ::90:WPA2",  # a hidden network
            "*:SOCCER_CAM_C:20:WPA2",
            " :SOCCER_CAM_C:50:WPA2",
            "garbage line",
        ]
    )
    got = parse_scan(text)
    assert [(e.ssid, e.signal, e.in_use) for e in got] == [
        ("FieldMesh", 75, False),
        ("Odd:name", 30, False),
        ("SOCCER_CAM_C", 20, True),
    ]


def test_dev_show_fields_take_the_first_address() -> None:
    text = (
        "GENERAL.STATE:100 (connected)\nGENERAL.CONNECTION:camfleet-ap\n"
        "IP4.ADDRESS[1]:10.42.0.1/24\nIP4.ADDRESS[2]:10.9.9.9/8\n"
    )
    assert parse_fields(text) == {
        "GENERAL.STATE": "100 (connected)",
        "GENERAL.CONNECTION": "camfleet-ap",
        "IP4.ADDRESS": "10.42.0.1/24",
    }


class Air:
    """A shared world file and one fake nmcli per node."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.world = root / "air.json"
        self.log = root / "nmcli-calls.jsonl"
        self.log.touch()

    def nmcli(self, node: str) -> Nmcli:
        bin_dir = self.root / node / "bin"
        fake_nmcli.install(bin_dir, self.world, node, self.log)
        path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        return Nmcli(CommandRunner(env={"PATH": path}, quiet=True), "wlan0", "nmcli", 20)

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@pytest.fixture
def air(tmp_path: Path) -> Air:
    a = Air(tmp_path)
    fake_nmcli.edit_world(a.world, FieldMesh={"signal": 70, "psk": MESH_PSK})
    return a


def test_scan_join_host_and_leave_through_the_fake(air: Air) -> None:
    cam_c, cam_l = air.nmcli("CAM_C"), air.nmcli("CAM_L")
    assert [e.ssid for e in cam_c.scan()] == ["FieldMesh"]
    assert not cam_c.link().connected

    cam_c.join("FieldMesh", MESH_PSK)
    link = cam_c.link()
    assert (link.connected, link.ssid, link.mode) == (True, "FieldMesh", "infrastructure")
    assert link.address and link.address.startswith("192.168.50.")
    assert cam_c.signal() == 70

    with pytest.raises(NmcliError, match="Secrets were required"):
        cam_l.join("FieldMesh", "not-the-passphrase")
    assert not cam_l.link().connected

    fake_nmcli.edit_world(air.world, FieldMesh=None)  # the mesh goes away
    assert cam_c.scan() == []
    assert not cam_c.link().connected  # the radio noticed

    cam_c.host("SOCCER_CAM_C", AP_PSK)
    link = cam_c.link()
    assert (link.ssid, link.mode, link.address) == ("SOCCER_CAM_C", "ap", "10.42.0.1/24")
    with pytest.raises(NmcliError, match="not allowed while in AP mode"):
        cam_c.scan()

    assert [e.ssid for e in cam_l.scan()] == ["SOCCER_CAM_C"]  # one node's AP, in the air
    cam_l.join("SOCCER_CAM_C", AP_PSK, name="camfleet-client")
    assert cam_l.link().ssid == "SOCCER_CAM_C"
    assert (cam_l.link().address or "").startswith("10.42.0.")

    cam_c.down(AP_CONNECTION)
    assert not cam_c.link().connected
    assert not cam_l.link().connected  # its client lost the AP with it


def test_no_key_is_ever_on_a_command_line_and_the_passwd_file_is_gone(air: Air) -> None:
    cam_c, cam_l = air.nmcli("CAM_C"), air.nmcli("CAM_L")
    cam_c.join("FieldMesh", MESH_PSK)
    cam_c.host("SOCCER_CAM_C", AP_PSK)
    cam_l.join("SOCCER_CAM_C", AP_PSK, name="camfleet-client")
    calls = air.calls()
    ups = [c["argv"] for c in calls if c["argv"][:1] == ["--wait"]]
    assert len(ups) == 3
    for argv in ups:
        assert argv[-2] == "passwd-file"
        assert not Path(argv[-1]).exists()
    text = air.log.read_text()
    for secret in SECRETS:
        assert secret not in text
    for runner in (cam_c.runner, cam_l.runner):
        assert all(secret not in " ".join(c.argv) for c in runner.recent() for secret in SECRETS)


def test_the_ap_profile_is_wpa2_shared_and_replaced_not_duplicated(air: Air) -> None:
    cam_c = air.nmcli("CAM_C")
    cam_c.host("SOCCER_CAM_C", AP_PSK)
    cam_c.host("SOCCER_CAM_C", AP_PSK)
    adds = [c["argv"] for c in air.calls() if c["argv"][:2] == ["con", "add"]]
    argv = adds[-1]
    opts = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert opts["802-11-wireless.mode"] == "ap"
    assert opts["wifi-sec.key-mgmt"] == "wpa-psk"
    assert opts["ipv4.method"] == "shared"
    assert opts["autoconnect"] == "no"
    world = fake_nmcli.read_world(air.world)
    assert list(world["nodes"]["CAM_C"]["profiles"]) == [AP_CONNECTION]


# -- the manager's loop, on a clock the test moves --------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def phase(svc: NetworkService) -> Phase:
    """The plan's phase (read through a call, so each assert reads it afresh)."""
    return svc.state.phase


def service(air: Air, cam_id: str, clock: Clock, **kw: Any) -> NetworkService:
    settings = NetworkSettings(
        manage=True,
        networks=["FieldMesh"],
        join_timeout_s=30,
        client_join_timeout_s=60,
        mesh_retry_s=120,
        **kw,
    )
    secrets = NetworkSecrets.model_validate({"ap_psk": AP_PSK, "networks": {"FieldMesh": MESH_PSK}})
    return NetworkService(
        settings, plan_config(settings, cam_id, "CAM_C"), air.nmcli(cam_id), secrets, clock=clock
    )


def test_the_manager_falls_back_to_the_masters_ap_and_returns_to_the_mesh(
    air: Air, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_nmcli.edit_world(air.world, FieldMesh=None)  # boot with no mesh
    clock = Clock()
    master, client = service(air, "CAM_C", clock), service(air, "CAM_L", clock)

    def both() -> None:
        master.tick()
        client.tick()

    both()
    assert phase(master) == Phase.seeking and phase(client) == Phase.seeking
    clock.t += 30
    both()
    assert phase(master) == Phase.ap_host
    assert phase(client) == Phase.ap_client  # after its join_timeout_s, the AP exists
    status = client.overlay(NetworkStatus(mode=NetworkMode.none))
    assert (status.mode, status.ssid) == (NetworkMode.ap_client, "SOCCER_CAM_C")
    assert status.address and status.address.startswith("10.42.0.")
    assert status.manager and status.manager.last_action == "join_ap SOCCER_CAM_C"
    host = master.overlay(NetworkStatus(mode=NetworkMode.none))
    assert (host.mode, host.ap, host.address) == (NetworkMode.ap_host, True, "10.42.0.1/24")

    fake_nmcli.edit_world(air.world, FieldMesh={"signal": 70, "psk": MESH_PSK})
    clock.t += 60
    both()
    assert phase(master) == Phase.ap_host  # not yet time to look
    clock.t += 61
    client.tick()  # its retry scan finds the mesh
    assert phase(client) == Phase.mesh
    master.tick()  # takes its AP down, scans, joins the mesh
    assert phase(master) == Phase.mesh
    for svc in (master, client):
        got = svc.overlay(NetworkStatus(mode=NetworkMode.wired))
        assert (got.mode, got.ssid, got.signal) == (NetworkMode.mesh, "FieldMesh", 70)
    master_changes = [
        c["argv"][2:6] if c["argv"][0] == "--wait" else c["argv"][:4]
        for c in air.calls()
        if c["node"] == "CAM_C" and ("--wait" in c["argv"] or c["argv"][:2] == ["con", "down"])
    ]
    assert master_changes == [
        ["con", "up", "id", "camfleet-ap"],
        ["con", "down", "id", "camfleet-ap"],  # the probe
        ["con", "up", "id", "camfleet-net-FieldMesh"],
    ]
    text = caplog.text + json.dumps(master.status().model_dump(mode="json"))
    for secret in SECRETS:
        assert secret not in text
    assert "raise_ap SOCCER_CAM_C" in caplog.text


def test_a_client_alone_raises_its_own_ap_after_its_longer_time_out(air: Air) -> None:
    fake_nmcli.edit_world(air.world, FieldMesh=None)
    clock = Clock()
    client = service(air, "CAM_R", clock)
    for _ in range(12):
        client.tick()
        clock.t += 5
    assert phase(client) == Phase.seeking  # 55 s: the master's AP may still come
    clock.t += 5
    client.tick()
    status = client.overlay(NetworkStatus(mode=NetworkMode.none))
    assert (status.mode, status.ssid) == (NetworkMode.ap_host, "SOCCER_CAM_R")


def test_a_failing_nmcli_is_an_error_in_the_status_not_an_exception(tmp_path: Path) -> None:
    settings = NetworkSettings(manage=True, nmcli_path=str(tmp_path / "no-such-nmcli"))
    secrets = NetworkSecrets.model_validate({"ap_psk": AP_PSK})
    svc = NetworkService(
        settings,
        plan_config(settings, "CAM_C", "CAM_C"),
        Nmcli(CommandRunner(quiet=True), program=settings.nmcli_path),
        secrets,
    )
    svc.tick()
    got = svc.status()
    assert got.errors >= 1 and got.last_error and "not found" in got.last_error


# -- the secrets file and the settings --------------------------------------------------------


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_secrets_file_loads_and_is_refused_when_others_can_read_it(tmp_path: Path) -> None:
    good = f'ap_psk: "{AP_PSK}"\nnetworks:\n  FieldMesh: "{MESH_PSK}"\n'
    got = load_secrets(write(tmp_path / "s.yaml", good))
    assert got.ap_psk.get_secret_value() == AP_PSK
    assert got.passphrase("FieldMesh") == MESH_PSK and got.passphrase("Open") is None
    for mode in (0o644, 0o640, 0o604):
        with pytest.raises(SecretsError, match="chmod 600") as err:
            load_secrets(write(tmp_path / "s.yaml", good, mode))
        assert AP_PSK not in str(err.value)
    with pytest.raises(SecretsError, match="does not exist"):
        load_secrets(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('ap_psk: "short7!"\n', "8 to 63"),
        (f'ap_psk: "{"x" * 64}"\n', "8 to 63"),
        ('ap_psk: "caf\u00e9-cr\u00e8me-key"\n', "printable ASCII"),
        ('ap_psk: "fine-key-123"\nnetworks:\n  FieldMesh: "tiny"\n', "FieldMesh"),
        ('ap_psk: "fine-key-123"\nextra: 1\n', "extra"),
        ("networks: {}\n", "ap_psk"),
        ('ap_psk: "fine-key-123\n  : [\n', "not valid YAML"),
    ],
)
def test_a_bad_secrets_file_says_what_is_wrong_without_the_value(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(SecretsError, match=message) as err:
        load_secrets(write(tmp_path / "s.yaml", text))
    for value in ("short7!", "tiny", "fine-key-123", "caf"):
        assert value not in str(err.value).replace("FieldMesh", "")


def test_a_64_hex_digit_key_is_a_raw_psk() -> None:
    NetworkSecrets.model_validate({"ap_psk": "ab" * 32})


def test_the_sample_secrets_file_in_deploy_loads(tmp_path: Path) -> None:
    sample = Path(__file__).parent.parent / "deploy" / "network-secrets.example.yaml"
    copy = write(tmp_path / "secrets.yaml", sample.read_text())
    got = load_secrets(copy)
    assert got.ap_psk.get_secret_value().startswith("CHANGE-ME")


def test_network_settings_refuse_a_client_time_out_shorter_than_the_masters() -> None:
    with pytest.raises(ValueError, match="wait longer"):
        NetworkSettings(join_timeout_s=30, client_join_timeout_s=10)
    assert NetworkSettings(join_timeout_s=30).client_timeout_s == 60
    assert NetworkSettings().ap_ssid("CAM_L") == "SOCCER_CAM_L"
    with pytest.raises(ValueError):
        NetworkSettings(networks=["bad:ssid"])
    with pytest.raises(ValueError):
        NetworkSettings(ap_ssid_template="NO_PLACEHOLDER")


def test_the_manager_is_off_by_default_and_the_master_is_syncs(tmp_path: Path) -> None:
    from node_agent.network.wiring import build_network, master_cam_id
    from node_agent.settings import AgentSettings

    assert build_network(AgentSettings(data_dir=tmp_path)) is None
    s = AgentSettings(data_dir=tmp_path, cam_id="CAM_L", network={"manage": True})
    assert master_cam_id(s) == "CAM_C"
    svc = build_network(s)
    assert svc is not None and svc.problem and "secrets_file" in svc.problem
    assert svc.cfg.master_ap == "SOCCER_CAM_C" and svc.cfg.own_ap == "SOCCER_CAM_L"
    s2 = AgentSettings(
        data_dir=tmp_path,
        cam_id="CAM_L",
        sync={"master_cam_id": "CAM_R"},
        network={"manage": True, "master_cam_id": "CAM_L"},
    )
    assert master_cam_id(s2) == "CAM_L"
