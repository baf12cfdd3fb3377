"""The network mode reader against fake sysfs/procfs trees, and its place in the status."""

from __future__ import annotations

from pathlib import Path

import pytest

from node_agent.network.reader import CachedNetwork, read_network
from node_agent.network.schemas import NetworkMode, NetworkStatus
from node_agent.network.settings import NetworkSettings

ROUTE_HEADER = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
)


def iface(root: Path, name: str, oper: str, wifi: bool = False, kind: str = "1") -> None:
    d = root / "sys" / "class" / "net" / name
    d.mkdir(parents=True)
    (d / "operstate").write_text(oper + "\n")
    (d / "type").write_text(kind + "\n")
    (d / "carrier").write_text("1\n" if oper == "up" else "0\n")
    if wifi:
        (d / "wireless").mkdir()


def route(root: Path, *rows: tuple[str, str, int]) -> None:
    p = root / "proc" / "net" / "route"
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{i}\t{dest}\t0101A8C0\t{flags:04X}\t0\t0\t100\t00000000\t0\t0\t0"
        for i, dest, flags in rows
    ]
    p.write_text(ROUTE_HEADER + "\n".join(lines) + "\n")


def read(root: Path, **kw: bool) -> NetworkStatus:
    return read_network(NetworkSettings(sys_root=root, **kw))


def test_the_default_routes_interface_decides(tmp_path: Path) -> None:
    iface(tmp_path, "lo", "unknown", kind="772")
    iface(tmp_path, "eth0", "up")
    iface(tmp_path, "wlan0", "up", wifi=True)
    route(tmp_path, ("eth0", "0000A8C0", 0x1), ("wlan0", "00000000", 0x3))
    got = read(tmp_path)
    assert (got.mode, got.interface, got.ap) == (NetworkMode.wifi, "wlan0", False)
    assert [(i.name, i.kind, i.up) for i in got.interfaces] == [
        ("eth0", "wired", True),
        ("wlan0", "wifi", True),
    ]


def test_without_a_default_route_the_first_up_interface_counts(tmp_path: Path) -> None:
    iface(tmp_path, "eth0", "down")
    iface(tmp_path, "eth1", "up")
    got = read(tmp_path)
    assert (got.mode, got.interface) == (NetworkMode.wired, "eth1")


def test_nothing_up_is_none(tmp_path: Path) -> None:
    iface(tmp_path, "eth0", "down")
    iface(tmp_path, "wlan0", "dormant", wifi=True)
    assert read(tmp_path).mode == NetworkMode.none


def test_a_missing_tree_is_none_with_the_reason(tmp_path: Path) -> None:
    got = read(tmp_path / "nowhere")
    assert got.mode == NetworkMode.none and got.error and "sys/class/net" in got.error


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        ("[connection]\nid=field\ninterface-name=wlan0\n[wifi]\nmode=ap\nssid=rig\n", True),
        ("[connection]\nid=field\n[wifi]\nmode=ap\n", True),  # no interface named: any
        ("[connection]\nid=home\ninterface-name=wlan0\n[wifi]\nmode=infrastructure\n", False),
        ("[connection]\nid=off\nautoconnect=false\n[wifi]\nmode=ap\n", False),
        ("[connection]\ninterface-name=wlan9\n[wifi]\nmode=ap\n", False),  # not this radio
        ("not an ini file at all [", False),
    ],
)
def test_a_networkmanager_ap_connection_makes_an_ap_host(
    tmp_path: Path, connection: str, expected: bool
) -> None:
    iface(tmp_path, "eth0", "up")
    iface(tmp_path, "wlan0", "up", wifi=True)
    route(tmp_path, ("eth0", "00000000", 0x3))
    nm = tmp_path / "etc" / "NetworkManager" / "system-connections"
    nm.mkdir(parents=True)
    (nm / "field.nmconnection").write_text(connection)
    got = read(tmp_path)
    assert got.ap is expected
    assert got.mode == (NetworkMode.ap_host if expected else NetworkMode.wired)
    if expected:
        assert got.interface == "wlan0"


def test_the_setting_says_ap_host(tmp_path: Path) -> None:
    iface(tmp_path, "eth0", "up")
    got = read(tmp_path, ap_host=True)
    assert (got.mode, got.ap, got.interface) == (NetworkMode.ap_host, True, "eth0")


def test_the_mode_enum_has_what_the_mesh_work_needs() -> None:
    assert {m.value for m in NetworkMode} == {
        "mesh",
        "ap_host",
        "ap_client",
        "wired",
        "wifi",
        "none",
    }


def test_the_wire_shape_is_bounded() -> None:
    with pytest.raises(ValueError):
        NetworkStatus.model_validate({"mode": "wired", "interface": "x" * 40})
    with pytest.raises(ValueError):
        NetworkStatus.model_validate(
            {
                "mode": "wired",
                "interfaces": [{"name": f"e{i}", "kind": "wired", "up": True} for i in range(40)],
            }
        )


def test_the_status_reads_the_tree_at_most_once_per_max_age(tmp_path: Path) -> None:
    iface(tmp_path, "eth0", "up")
    now = [100.0]
    cached = CachedNetwork(NetworkSettings(sys_root=tmp_path), max_age_s=2.0, clock=lambda: now[0])
    assert cached.read().mode == NetworkMode.wired
    (tmp_path / "sys" / "class" / "net" / "eth0" / "operstate").write_text("down\n")
    now[0] += 1.9
    assert cached.read().mode == NetworkMode.wired  # within max_age: the last reading
    now[0] += 0.1
    assert cached.read().mode == NetworkMode.none  # read again: the link went down
