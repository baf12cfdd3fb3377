"""A stand-in for ``nmcli`` (the subset the agent's adapter runs), over a shared "air".

``install(bin_dir, world, node)`` writes an executable ``nmcli`` into ``bin_dir`` that runs
this file for the node ``node``. Every node's fake shares one world file (JSON, locked
with flock while a call reads and writes it)::

    {"air": {"FieldMesh": {"signal": 70, "psk": "..."}},   # networks in range of all
     "nodes": {"CAM_C": {"profiles": {NAME: {...}}, "active": NAME | null, "ap_psk": ...}}}

What a node sees is the air plus every access point another node has up; a client
connection whose network vanished is dropped (NetworkManager would say "disconnected"),
so one node taking its AP down cuts its clients off, as the real radio does. Scanning
while hosting an AP fails as NetworkManager refuses it. Every call's argv is appended to
the log (``FAKE_NMCLI_LOG``, JSON lines ``{"node", "argv", "t"}``); the contents of a
passwd-file are read and checked against the network's key, never logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PSK_FIELD = "802-11-wireless-security.psk"


def install(bin_dir: Path, world: Path, node: str, log: Path) -> Path:
    """Write ``bin_dir/nmcli`` for ``node``; returns its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / "nmcli"
    path.write_text(
        "#!/bin/sh\n"
        f"FAKE_NMCLI_WORLD={shlex.quote(str(world))} FAKE_NMCLI_NODE={shlex.quote(node)} "
        f"FAKE_NMCLI_LOG={shlex.quote(str(log))} "
        f'exec {shlex.quote(sys.executable)} {shlex.quote(__file__)} "$@"\n'
    )
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def locked_world(path: Path) -> Iterator[dict[str, Any]]:
    """The world, locked for the call; written back (temp + rename) afterwards."""
    with open(str(path) + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            world = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            world = {}
        world.setdefault("air", {})
        world.setdefault("nodes", {})
        yield world
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(world, indent=1))
        os.replace(tmp, path)


def edit_world(path: Path, **air: dict[str, Any] | None) -> None:
    """Set (a dict) or remove (None) networks in the air, for tests."""
    with locked_world(path) as world:
        for ssid, value in air.items():
            if value is None:
                world["air"].pop(ssid, None)
            else:
                world["air"][ssid] = value


def read_world(path: Path) -> dict[str, Any]:
    with locked_world(path) as world:
        return world


def _hosted(world: dict[str, Any], exclude: str | None) -> dict[str, dict[str, Any]]:
    """Access points nodes other than ``exclude`` have up: ssid -> {signal, psk, node}."""
    out: dict[str, dict[str, Any]] = {}
    for name, node in world["nodes"].items():
        if name == exclude:
            continue
        prof = node["profiles"].get(node.get("active") or "")
        if prof and prof.get("mode") == "ap":
            out[prof["ssid"]] = {"signal": 60, "psk": node.get("ap_psk"), "node": name}
    return out


def _visible(world: dict[str, Any], me: str) -> dict[str, dict[str, Any]]:
    seen = {s: dict(v) for s, v in world["air"].items()}
    seen.update(_hosted(world, me))
    return seen


def _node(world: dict[str, Any], me: str) -> dict[str, Any]:
    node: dict[str, Any] = world["nodes"].setdefault(me, {"profiles": {}, "active": None})
    node.setdefault("profiles", {})
    node.setdefault("active", None)
    prof = node["profiles"].get(node["active"] or "")
    if node["active"] and (
        prof is None or (prof.get("mode") != "ap" and prof["ssid"] not in _visible(world, me))
    ):
        node["active"] = None  # the network vanished: disconnected
    return node


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _address(me: str, prof: dict[str, Any], world: dict[str, Any]) -> str:
    host = 10 + zlib.crc32(me.encode()) % 200
    if prof.get("mode") == "ap":
        return "10.42.0.1/24"
    if prof["ssid"] in _hosted(world, me):
        return f"10.42.0.{host}/24"
    return f"192.168.50.{host}/24"


def fail(code: int, message: str) -> int:
    sys.stderr.write(f"Error: {message}\n")
    return code


def main(argv: list[str]) -> int:
    me = os.environ["FAKE_NMCLI_NODE"]
    world_path = Path(os.environ["FAKE_NMCLI_WORLD"])
    with open(os.environ["FAKE_NMCLI_LOG"], "a") as log:
        log.write(json.dumps({"node": me, "argv": argv, "t": time.time()}) + "\n")
    args = list(argv)
    fields: list[str] = []
    while args and args[0].startswith("-"):  # global options
        opt = args.pop(0)
        if opt in ("-f", "--fields"):
            fields = args.pop(0).split(",")
        elif opt in ("-w", "--wait"):
            args.pop(0)
        elif opt not in ("-t", "--terse"):
            return fail(2, f"Option '{opt}' is unknown.")
    with locked_world(world_path) as world:
        node = _node(world, me)
        return dispatch(args, fields, world, node, me)


def dispatch(
    args: list[str], fields: list[str], world: dict[str, Any], node: dict[str, Any], me: str
) -> int:
    out = sys.stdout
    if args[:3] == ["dev", "wifi", "list"]:
        prof = node["profiles"].get(node["active"] or "")
        if prof and prof.get("mode") == "ap":
            return fail(10, "Scanning not allowed while in AP mode.")
        for ssid, net in sorted(_visible(world, me).items()):
            in_use = "*" if prof and prof["ssid"] == ssid else " "
            security = "WPA2" if net.get("psk") else ""
            row = {
                "IN-USE": in_use,
                "SSID": ssid,
                "SIGNAL": str(net.get("signal", 50)),
                "SECURITY": security,
            }
            out.write(":".join(_esc(row[f]) for f in fields) + "\n")
        return 0
    if args[:2] == ["dev", "show"]:
        prof = node["profiles"].get(node["active"] or "")
        rows = {
            "GENERAL.STATE": "100 (connected)" if prof else "30 (disconnected)",
            "GENERAL.CONNECTION": node["active"] or "",
        }
        for f in fields:
            if f == "IP4.ADDRESS":
                if prof:
                    out.write(f"IP4.ADDRESS[1]:{_address(me, prof, world)}\n")
            else:
                out.write(f"{f}:{_esc(rows.get(f, ''))}\n")
        return 0
    if args[:3] == ["con", "show", "id"]:
        prof = node["profiles"].get(args[3])
        if prof is None:
            return fail(10, f"{args[3]} - no such connection profile.")
        rows = {
            "802-11-wireless.ssid": prof["ssid"],
            "802-11-wireless.mode": prof.get("mode", "infrastructure"),
        }
        for f in fields:
            out.write(f"{f}:{_esc(rows.get(f, ''))}\n")
        return 0
    if args[:2] == ["con", "add"]:
        opts = dict(zip(args[2::2], args[3::2], strict=False))
        name = opts.get("con-name", "")
        if opts.get("type") != "wifi" or not name or "ssid" not in opts:
            return fail(2, "type, con-name and ssid are needed")
        if "wifi-sec.psk" in opts or "password" in opts:
            return fail(2, "this stand-in refuses a key on the command line")
        node["profiles"][name] = {
            "ssid": opts["ssid"],
            "mode": opts.get("802-11-wireless.mode", opts.get("mode", "infrastructure")),
            "key_mgmt": opts.get("wifi-sec.key-mgmt"),
        }
        out.write(f"Connection '{name}' successfully added.\n")
        return 0
    if args[:3] == ["con", "delete", "id"]:
        if node["profiles"].pop(args[3], None) is None:
            return fail(10, f"unknown connection '{args[3]}'.")
        if node["active"] == args[3]:
            node["active"] = None
        return 0
    if args[:3] == ["con", "down", "id"]:
        if node["active"] != args[3]:
            return fail(10, f"'{args[3]}' is not an active connection.")
        node["active"] = None
        return 0
    if args[:3] == ["con", "up", "id"]:
        return up(args, world, node, me)
    return fail(2, f"argument '{' '.join(args)}' not understood by the stand-in")


def up(args: list[str], world: dict[str, Any], node: dict[str, Any], me: str) -> int:
    name = args[3]
    prof = node["profiles"].get(name)
    if prof is None:
        return fail(10, f"unknown connection '{name}'.")
    opts = dict(zip(args[4::2], args[5::2], strict=False))
    psk = None
    if "passwd-file" in opts:
        for line in Path(opts["passwd-file"]).read_text().splitlines():
            key, _, value = line.partition(":")
            if key == PSK_FIELD:
                psk = value
    if prof["mode"] == "ap":
        if prof.get("key_mgmt") != "wpa-psk" or psk is None or not 8 <= len(psk) <= 63:
            return fail(4, "Connection activation failed: Secrets were required, but not provided.")
        node["active"], node["ap_psk"] = name, psk
        return 0
    net = _visible(world, me).get(prof["ssid"])
    if net is None:
        node["active"] = None
        return fail(10, f"No network with SSID '{prof['ssid']}' found.")
    if (net.get("psk") or None) != psk:
        node["active"] = None
        return fail(4, "Connection activation failed: Secrets were required, but not provided.")
    node["active"] = name
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
