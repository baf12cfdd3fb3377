"""Read the network mode from ``sys/class/net``, ``proc/net/route`` and NetworkManager's
connection files, all under one root (``network.sys_root``) so tests use a fake tree.

- an interface is wifi when ``sys/class/net/IF/wireless`` exists, else wired (``lo`` and
  other loopbacks, ``type`` 772, are left out);
- it is up when ``operstate`` is ``up`` (or ``unknown`` with ``carrier`` 1, as some
  drivers and tunnels report);
- the mode is about the default route's interface (``proc/net/route``, destination 0,
  flag RTF_UP), else the first up interface; none when nothing is up;
- ap_host when the settings say so, or a NetworkManager connection has ``mode=ap`` and
  names (or, without ``interface-name``, may be on) an up wireless interface.
"""

from __future__ import annotations

import configparser
import re
import time
from collections.abc import Callable
from pathlib import Path

from node_agent.network.schemas import (
    IFACE_PATTERN,
    MAX_INTERFACES,
    NetworkInterface,
    NetworkMode,
    NetworkStatus,
)
from node_agent.network.settings import NetworkSettings

ARPHRD_LOOPBACK = "772"
RTF_UP = 0x1
_NAME_OK = re.compile(IFACE_PATTERN)


def _text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def interfaces(root: Path) -> list[NetworkInterface]:
    """Every non-loopback interface under ``root/sys/class/net``, sorted by name."""
    net = root / "sys" / "class" / "net"
    out: list[NetworkInterface] = []
    for entry in sorted(net.iterdir(), key=lambda p: p.name):
        name = entry.name
        if not _NAME_OK.match(name) or _text(entry / "type") == ARPHRD_LOOPBACK or name == "lo":
            continue
        oper = _text(entry / "operstate")
        up = oper == "up" or (oper == "unknown" and _text(entry / "carrier") == "1")
        kind = "wifi" if (entry / "wireless").is_dir() else "wired"
        out.append(NetworkInterface(name=name, kind=kind, up=up))
        if len(out) >= MAX_INTERFACES:
            break
    return out


def default_route_interface(root: Path) -> str | None:
    """The interface of the first up default route in ``root/proc/net/route``."""
    text = _text(root / "proc" / "net" / "route")
    for line in (text or "").splitlines()[1:]:
        cols = line.split()
        if len(cols) < 4 or cols[1] != "00000000":
            continue
        try:
            flags = int(cols[3], 16)
        except ValueError:
            continue
        if flags & RTF_UP:
            return cols[0]
    return None


def nm_ap_interfaces(root: Path) -> list[str | None]:
    """The interface named by each NetworkManager connection in AP mode (None: any)."""
    folder = root / "etc" / "NetworkManager" / "system-connections"
    out: list[str | None] = []
    try:
        files = sorted(folder.glob("*.nmconnection"))
    except OSError:
        return out
    for path in files[:200]:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(path.read_text(errors="replace")[:65536])
        except (OSError, configparser.Error):
            continue
        if parser.get("wifi", "mode", fallback="").strip() != "ap":
            continue
        if parser.get("connection", "autoconnect", fallback="true").strip() == "false":
            continue
        out.append(parser.get("connection", "interface-name", fallback="").strip() or None)
    return out


def read_network(settings: NetworkSettings) -> NetworkStatus:
    """The node's network mode now; mode none with the reason when it cannot be read."""
    root = settings.sys_root
    try:
        found = interfaces(root)
    except OSError as err:
        return NetworkStatus(mode=NetworkMode.none, error=f"{root / 'sys/class/net'}: {err}"[:300])
    by_name = {i.name: i for i in found}
    route = default_route_interface(root)
    chosen = by_name.get(route) if route else None
    if chosen is None:
        chosen = next((i for i in found if i.up), None)
    up_wifi = [i.name for i in found if i.kind == "wifi" and i.up]
    ap_ifaces = nm_ap_interfaces(root) if up_wifi else []
    ap_on = next(
        (name or up_wifi[0] for name in ap_ifaces if name is None or name in up_wifi), None
    )
    ap = settings.ap_host or ap_on is not None
    if ap:
        iface = ap_on or (chosen.name if chosen else None)
        return NetworkStatus(mode=NetworkMode.ap_host, interface=iface, ap=True, interfaces=found)
    if chosen is None or not chosen.up:
        return NetworkStatus(mode=NetworkMode.none, interfaces=found)
    mode = NetworkMode.wifi if chosen.kind == "wifi" else NetworkMode.wired
    return NetworkStatus(mode=mode, interface=chosen.name, interfaces=found)


class CachedNetwork:
    """``read_network`` at most once per ``max_age_s``.

    The status is built four times a second while the coordinator watches the node, and
    the mode changes rarely: one read walks sys/class/net and the route table (0.3 ms on
    an x86 core, several ms on a Pi Zero that is also encoding).
    """

    def __init__(
        self,
        settings: NetworkSettings,
        max_age_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.max_age_s = max_age_s
        self.clock = clock
        self._at: float | None = None
        self._last: NetworkStatus | None = None

    def read(self) -> NetworkStatus:
        now = self.clock()
        if self._last is None or self._at is None or now - self._at >= self.max_age_s:
            self._last, self._at = read_network(self.settings), now
        return self._last
