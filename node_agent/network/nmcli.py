"""The one NetworkManager adapter: ``nmcli`` in terse mode, through the agent's CommandRunner.

Passphrases never go on a command line (``/proc/PID/cmdline`` is readable by every user):
a connection profile is added without its key, then brought up with
``nmcli con up id NAME passwd-file FILE``, FILE a 0600 temporary file holding
``802-11-wireless-security.psk:KEY`` that is deleted as soon as nmcli returns.
NetworkManager keeps the key in its own profile (root-only, under
/etc/NetworkManager/system-connections), as it does for any network joined by hand.

Profiles the agent makes are named ``camfleet-ap`` (this node's access point),
``camfleet-client`` (the master's access point) and ``camfleet-net-<SSID>`` (a configured
network); each is deleted and added again before it is brought up, so a changed setting
or key always takes effect and no stale duplicate is left.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from node_agent.commands import CommandRunner, Completed

AP_CONNECTION = "camfleet-ap"
CLIENT_CONNECTION = "camfleet-client"
NET_PREFIX = "camfleet-net-"
MAX_SCAN = 200  # networks kept of one scan
CONNECTED = "100"  # NM_DEVICE_STATE_ACTIVATED, as `dev show` prints it ("100 (connected)")


class NmcliError(RuntimeError):
    """An nmcli call failed; the message is the call and its error (never a key)."""


@dataclass(frozen=True)
class ScanEntry:
    """One network ``dev wifi list`` showed."""

    ssid: str
    signal: int
    security: str
    in_use: bool = False


@dataclass(frozen=True)
class LinkInfo:
    """The Wi-Fi device's state and active connection."""

    connected: bool
    connection: str | None = None  # the profile's name
    ssid: str | None = None
    mode: str | None = None  # "infrastructure", "ap", "mesh", "adhoc"
    address: str | None = None  # the first IPv4 address, CIDR


def split_terse(line: str) -> list[str]:
    """Split one line of ``nmcli -t`` output at unescaped ``:`` and undo ``\\:`` and ``\\\\``."""
    fields: list[str] = []
    cur: list[str] = []
    it = iter(line)
    for ch in it:
        if ch == "\\":
            nxt = next(it, "")
            cur.append(nxt)
        elif ch == ":":
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    fields.append("".join(cur))
    return fields


def parse_scan(text: str) -> list[ScanEntry]:
    """``nmcli -t -f IN-USE,SSID,SIGNAL,SECURITY dev wifi list`` into entries: hidden
    networks (no SSID) left out, one entry per SSID (its strongest access point)."""
    best: dict[str, ScanEntry] = {}
    for line in text.splitlines():
        parts = split_terse(line)
        if len(parts) != 4:
            continue
        in_use, ssid, signal, security = parts
        if not ssid or len(ssid) > 32:
            continue
        try:
            level = max(0, min(100, int(signal)))
        except ValueError:
            level = 0
        entry = ScanEntry(ssid, level, security[:40], in_use.strip() == "*")
        old = best.get(ssid)
        if (
            old is None
            or (entry.in_use and not old.in_use)
            or (entry.in_use == old.in_use and entry.signal > old.signal)
        ):
            best[ssid] = entry
        if len(best) >= MAX_SCAN:
            break
    return sorted(best.values(), key=lambda e: (-e.signal, e.ssid))


def parse_fields(text: str) -> dict[str, str]:
    """``FIELD:value`` lines (``dev show``, ``con show id``) into a dict; the first
    ``IP4.ADDRESS[n]`` is kept as ``IP4.ADDRESS``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, _ = line.partition(":")
        if not sep:
            continue
        value = ":".join(split_terse(line)[1:])
        key = name.split("[", 1)[0]
        out.setdefault(key, value)
    return out


def profile_name(ssid: str) -> str:
    """The agent's profile for the configured network ``ssid``."""
    return NET_PREFIX + ssid.replace(" ", "_")


@contextlib.contextmanager
def passwd_file(psk: str | None) -> Iterator[Path | None]:
    """A 0600 file holding the key as nmcli's passwd-file reads it, removed afterwards."""
    if psk is None:
        yield None
        return
    fd, name = tempfile.mkstemp(prefix="camfleet-nm-", suffix=".secret")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(f"802-11-wireless-security.psk:{psk}\n")
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


class Nmcli:
    """scan, link, join, host and take down, for one Wi-Fi device."""

    def __init__(
        self,
        runner: CommandRunner,
        interface: str = "wlan0",
        program: str = "nmcli",
        timeout_s: float = 30.0,
    ) -> None:
        self.runner = runner
        self.interface = interface
        self.program = program
        self.timeout_s = timeout_s

    def _run(self, *args: str, mutates: bool = True, check: bool = True) -> Completed:
        done = self.runner.run([self.program, *args], timeout_s=self.timeout_s, mutates=mutates)
        if check and not done.ok:
            raise NmcliError(done.describe())
        return done

    def scan(self, rescan: bool = True) -> list[ScanEntry]:
        """The networks in range (``--rescan yes``: a fresh scan, a few seconds)."""
        done = self._run(
            "-t",
            "-f",
            "IN-USE,SSID,SIGNAL,SECURITY",
            "dev",
            "wifi",
            "list",
            "--rescan",
            "yes" if rescan else "no",
            "ifname",
            self.interface,
            mutates=False,
        )
        return parse_scan(done.stdout)

    def link(self) -> LinkInfo:
        """The device's state, its active connection's SSID and mode, its IPv4 address."""
        done = self._run(
            "-t",
            "-f",
            "GENERAL.STATE,GENERAL.CONNECTION,IP4.ADDRESS",
            "dev",
            "show",
            self.interface,
            mutates=False,
        )
        dev = parse_fields(done.stdout)
        state = dev.get("GENERAL.STATE", "").split(" ", 1)[0]
        name = dev.get("GENERAL.CONNECTION", "").strip()
        if state != CONNECTED or not name or name == "--":
            return LinkInfo(connected=False)
        con = parse_fields(
            self._run(
                "-t",
                "-f",
                "802-11-wireless.ssid,802-11-wireless.mode",
                "con",
                "show",
                "id",
                name,
                mutates=False,
            ).stdout
        )
        return LinkInfo(
            connected=True,
            connection=name[:64],
            ssid=con.get("802-11-wireless.ssid") or None,
            mode=con.get("802-11-wireless.mode") or None,
            address=dev.get("IP4.ADDRESS") or None,
        )

    def signal(self) -> int | None:
        """The signal of the network in use, from the last scan's list (no rescan)."""
        try:
            entries = self.scan(rescan=False)
        except NmcliError:
            return None
        return next((e.signal for e in entries if e.in_use), None)

    def join(self, ssid: str, psk: str | None, name: str | None = None) -> None:
        """Join the infrastructure network ``ssid`` (a configured one, or the master's AP)."""
        profile = name or profile_name(ssid)
        extra = ["wifi-sec.key-mgmt", "wpa-psk"] if psk is not None else []
        self._replace_profile(profile, ["ssid", ssid, *extra])
        self._up(profile, psk)

    def host(self, ssid: str, psk: str) -> None:
        """Raise this node's WPA2 access point ``ssid`` (NetworkManager's shared mode: it
        gives clients addresses by DHCP, 10.42.0.0/24)."""
        self._replace_profile(
            AP_CONNECTION,
            [
                "ssid",
                ssid,
                "802-11-wireless.mode",
                "ap",
                "802-11-wireless.band",
                "bg",
                "ipv4.method",
                "shared",
                "wifi-sec.key-mgmt",
                "wpa-psk",
                "wifi-sec.proto",
                "rsn",
                "wifi-sec.pairwise",
                "ccmp",
            ],
        )
        self._up(AP_CONNECTION, psk)

    def down(self, name: str = AP_CONNECTION) -> None:
        """Take the connection ``name`` down (this node's AP by default)."""
        self._run("con", "down", "id", name)

    def _replace_profile(self, name: str, settings: list[str]) -> None:
        self._run("con", "delete", "id", name, check=False)  # absent the first time
        self._run(
            "con",
            "add",
            "type",
            "wifi",
            "con-name",
            name,
            "ifname",
            self.interface,
            "autoconnect",
            "no",
            *settings,
        )

    def _up(self, name: str, psk: str | None) -> None:
        wait = str(max(1, int(self.timeout_s) - 2))  # nmcli gives up before we kill it
        with passwd_file(psk) as secret:
            args = ["--wait", wait, "con", "up", "id", name, "ifname", self.interface]
            if secret is not None:
                args += ["passwd-file", str(secret)]
            self._run(*args)
