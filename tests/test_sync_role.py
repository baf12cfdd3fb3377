"""Clock roles: chrony's configurations rendered from sync:, checked by the real chronyd,
and `camfleet sync role` writing one and restarting chrony through systemctl."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from node_agent.sync.render import render
from node_agent.sync.role import resolve_role
from node_agent.sync.settings import SyncSettings
from tests.chrony import CHRONYD, ChronyPair, _free_udp_port, chrony_pair, start_chronyd
from tests.fakebin import FakeBin

ROOT = Path(__file__).resolve().parent.parent
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="chronyd -u root needs root")


def test_roles_resolve_from_the_cam_id() -> None:
    sync = SyncSettings()
    assert resolve_role(sync, "CAM_C") == "master" and resolve_role(sync, "CAM_L") == "client"
    assert resolve_role(SyncSettings(role="none"), "CAM_C") == "none"
    assert resolve_role(SyncSettings(role="client"), "CAM_C") == "client"


def test_the_client_follows_the_master_closely() -> None:
    sync = SyncSettings(master_host="10.42.0.3", master_port=1123, client_minpoll=0)
    text = render("client", sync)
    assert "server 10.42.0.3 port 1123 iburst prefer minpoll 0 maxpoll 3\n" in text
    assert "makestep 0.1 3\n" in text and "local stratum" not in text


def test_the_master_serves_the_fleet_and_falls_back_to_its_own_clock() -> None:
    sync = SyncSettings(upstream_servers=["ntp.example.org", "pool.example.org"], allow=["10/8"])
    text = render("master", sync)
    assert "server ntp.example.org iburst\npool pool.example.org iburst\n" in text
    assert "local stratum 8 orphan\nallow 10/8\n" in text and "\nport " not in text
    assert "port 1123\n" in render("master", SyncSettings(master_port=1123))
    with pytest.raises(ValueError, match="master or client"):
        render("none", sync)


@pytest.mark.parametrize("role", ["master", "client"])
def test_chronyd_accepts_the_rendered_configuration(tmp_path: Path, role: str) -> None:
    conf = tmp_path / f"{role}.conf"
    conf.write_text(render(role, SyncSettings()))
    done = subprocess.run([CHRONYD, "-p", "-f", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # and it is a real check: a mistyped directive fails it
    conf.write_text(render(role, SyncSettings()) + "makestepp 1 3\n")
    done = subprocess.run([CHRONYD, "-p", "-f", str(conf)], capture_output=True, text=True)
    assert done.returncode != 0 and "Invalid directive" in done.stderr


@AS_ROOT
def test_a_chronyd_on_the_rendered_client_config_follows_a_master(tmp_path: Path) -> None:
    # A real master (the pair's), and a second client whose configuration is the rendering
    # for sync.master_host 127.0.0.1 on the master's port, plus loopback-only extras.
    with chrony_pair(tmp_path / "pair") as pair:
        sync = SyncSettings(
            master_host="127.0.0.1",
            master_port=pair.ntp_port,
            client_minpoll=-4,
            client_maxpoll=-4,
        )
        cmdport = _free_udp_port()
        conf = tmp_path / "rendered.conf"
        conf.write_text(
            render("client", sync) + f"port 0\ncmdport {cmdport}\nbindcmdaddress 127.0.0.1\n"
            f"driftfile {tmp_path}/drift\npidfile {tmp_path}/rendered.pid\n"
        )
        proc = start_chronyd("rendered", conf, tmp_path / "pair")
        try:
            probe = ChronyPair(server_cmdport=0, client_cmdport=cmdport, root=tmp_path / "pair")
            probe.wait("the rendered client did not synchronise", probe.client_synchronised, 30)
            assert probe.chronyc("client", "sources").startswith("^,*,127.0.0.1,8,")
        finally:
            proc.terminate()
            proc.wait(10)


def run_cli(tmp_path: Path, fake: FakeBin, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in fake.env().items() if not k.startswith("CAMFLEET_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "sync", "role", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


def agent_yaml(tmp_path: Path, cam_id: str, **sync: object) -> Path:
    path = tmp_path / "agent.yaml"
    body = {"cam_id": cam_id, "data_dir": str(tmp_path / "data"), "sync": sync}
    path.write_text(yaml.safe_dump(body))
    return path


def test_sync_role_writes_the_config_and_restarts_chrony(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    fake.add("systemctl")
    cfg = agent_yaml(tmp_path, "CAM_L", master_host="10.42.0.3", chrony_unit="chronyd.service")
    conf = tmp_path / "etc" / "chrony" / "conf.d" / "camfleet.conf"
    done = run_cli(tmp_path, fake, "auto", "--config", str(cfg), "--conf-path", str(conf))
    assert done.returncode == 0, done.stderr
    assert conf.read_text() == render("client", SyncSettings(master_host="10.42.0.3"))
    assert oct(conf.stat().st_mode & 0o777) == "0o644"
    assert fake.argvs("systemctl") == [["systemctl", "restart", "chronyd.service"]]
    assert list(conf.parent.iterdir()) == [conf]  # no temp file left behind


def test_sync_role_dry_run_writes_and_restarts_nothing(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    fake.add("systemctl")
    conf = tmp_path / "camfleet.conf"
    cfg = agent_yaml(tmp_path, "CAM_C")
    done = run_cli(
        tmp_path, fake, "master", "--config", str(cfg), "--conf-path", str(conf), "--dry-run"
    )
    assert done.returncode == 0, done.stderr
    assert "local stratum 8 orphan" in done.stdout
    assert "would run: systemctl restart chrony.service" in done.stdout
    assert not conf.exists() and fake.argvs() == []


def test_sync_role_reports_a_failed_restart(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    fake.add("systemctl", script="echo 'Unit chrony.service not found.' >&2; exit 5")
    conf = tmp_path / "camfleet.conf"
    cfg = agent_yaml(tmp_path, "CAM_L")
    done = run_cli(tmp_path, fake, "client", "--config", str(cfg), "--conf-path", str(conf))
    assert done.returncode == 1
    assert "restarting chrony failed" in done.stderr and "not found" in done.stderr
    assert conf.exists()  # written: chrony reads it on its next start


def test_sync_role_refuses_bad_settings(tmp_path: Path) -> None:
    fake = FakeBin(tmp_path)
    fake.add("systemctl")
    cfg = agent_yaml(tmp_path, "CAM_L", client_minpoll=99)
    done = run_cli(tmp_path, fake, "client", "--config", str(cfg), "--dry-run")
    assert done.returncode == 2 and "client_minpoll" in done.stderr
    assert fake.argvs() == []


def test_minpoll_may_not_exceed_maxpoll() -> None:
    with pytest.raises(ValueError, match="client_minpoll 4 > client_maxpoll 3"):
        SyncSettings(client_minpoll=4)
