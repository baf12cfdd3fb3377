"""The operator commands' arguments, and the one place that turns their errors into exit 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from app.operator import fleetcmd, nodecmd, updatecmd
from app.operator.client import OperatorClient, OperatorError

COMMANDS: tuple[str, ...] = ("nodes", "fleet", "start", "stop", "sessions", "session", "recordings")
COMMANDS += ("config", "logs", "approve", "remove")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Command = Callable[[str, str], argparse.ArgumentParser]


def common(p: argparse.ArgumentParser, url_help: str, token_help: str) -> None:
    p.add_argument("--url", default=argparse.SUPPRESS, help=url_help)
    p.add_argument("--token", default=argparse.SUPPRESS, help=token_help)
    p.add_argument(
        "--json", action="store_true", help="print the coordinator's answer as JSON (no table)"
    )


def start_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="the session's name")
    p.add_argument("--lead-ms", type=int, help="how far ahead the start is scheduled")
    p.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="planned length: each node checks its storage fits it (it does not stop by itself)",
    )
    p.add_argument("--node", action="append", dest="node_ids", help="only this node (repeatable)")
    p.add_argument(
        "--all-or-nothing",
        action="store_true",
        help="if any node refuses or fails, cancel the start everywhere",
    )
    p.add_argument(
        "--no-wait", action="store_true", help="return at once; do not wait for the start instant"
    )


def add_operator_commands(command: Command, url_help: str, token_help: str) -> None:
    """Every command that talks to a running coordinator (but the footage ones)."""
    helps = {
        "nodes": "the fleet as a table (the same as fleet status)",
        "fleet": "the whole fleet: status, start, stop, selftest, lockview, shutdown, mode, update",
        "start": "start a synchronized recording (the same as fleet start)",
        "stop": "stop a session (the same as fleet stop)",
        "sessions": "list recent sessions",
        "session": "show one session: skew and bound, each node, each manifest's SHA-256",
        "recordings": "list every recording with its checksum",
        "config": "read or change one node's settings",
        "logs": "the coordinator's recent log records",
        "approve": "approve a node that waits to join (approve_new_nodes)",
        "remove": "remove a node; its next join registers it afresh",
    }
    for name, helptext in helps.items():
        p = command(name, helptext)
        if name not in ("fleet", "config"):  # their actions take the options
            common(p, url_help, token_help)
        if name == "fleet":
            fleet_sub = p.add_subparsers(dest="fleet_cmd", required=True, metavar="ACTION")
            for action, text in (
                ("status", "one row per node: state, profile, bitrate, disk, clock, warnings"),
                ("start", "start a synchronized recording and wait for its start instant"),
                ("stop", "stop the running session (or SESSION_ID) and show its manifests"),
                ("selftest", "a short clip on every camera: record, decode, hash, delete"),
                ("lockview", "save a framing still on every node of the running session"),
                ("shutdown", "finish NODE's recording and power it off"),
                ("mode", "production or development mode on the coordinator and every node"),
                ("update", "install a signed release on one node at a time, never mid-take"),
            ):
                q = fleet_sub.add_parser(
                    action, help=text, description=text[0].upper() + text[1:] + "."
                )
                common(q, url_help, token_help)
                if action == "start":
                    start_args(q)
                if action in ("stop", "lockview"):
                    q.add_argument("session_id", nargs="?", metavar="SESSION_ID")
                if action == "selftest":
                    q.add_argument("--duration", type=float, default=5.0, metavar="SECONDS")
                    q.add_argument("--node", action="append", dest="node_ids")
                if action == "mode":
                    q.add_argument("mode", choices=("production", "development"))
                    q.add_argument("--node", action="append", dest="node_ids")
                if action == "update":
                    q.add_argument("--version", help="default: the newest the feed offers")
                    q.add_argument("--node", action="append", dest="node_ids")
                    q.add_argument("--no-wait", action="store_true", help="return at once")
                if action == "shutdown":
                    q.add_argument("node_id", metavar="NODE")
                    q.add_argument("--yes", action="store_true", help="do not ask first")
        if name == "start":
            start_args(p)
        if name == "stop":
            p.add_argument("session_id", nargs="?", metavar="SESSION_ID")
        if name == "session":
            p.add_argument("session_id", metavar="SESSION_ID")
        if name == "sessions":
            p.add_argument("--limit", type=int, default=20)
        if name == "recordings":
            p.add_argument("--session", dest="session_id", metavar="SESSION_ID")
        if name in ("approve", "remove"):
            p.add_argument("node_id", metavar="NODE")
        if name == "config":
            csub = p.add_subparsers(dest="config_cmd", required=True, metavar="get|set")
            g = csub.add_parser("get", help="all of NODE's settings, or KEY's value")
            common(g, url_help, token_help)
            g.add_argument("node_id", metavar="NODE")
            g.add_argument("key", nargs="?", metavar="KEY", help="dotted, like camera.fps")
            s = csub.add_parser("set", help="set KEY to VALUE on NODE (read as YAML: 25, true)")
            common(s, url_help, token_help)
            s.add_argument("node_id", metavar="NODE")
            s.add_argument("key", metavar="KEY")
            s.add_argument("value", metavar="VALUE")
        if name == "logs":
            p.add_argument("--lines", type=int, default=200)
            p.add_argument("--level", default="INFO", type=str.upper, choices=LEVELS)


def dispatch(client: OperatorClient, args: argparse.Namespace) -> int:
    cmd, js = args.cmd, args.json
    if cmd == "fleet":
        cmd = "nodes" if args.fleet_cmd == "status" else args.fleet_cmd
    if cmd == "nodes":
        return fleetcmd.fleet_status(client, js)
    if cmd == "start":
        return fleetcmd.fleet_start(
            client,
            js,
            fleetcmd.StartOptions(
                name=args.name,
                lead_ms=args.lead_ms,
                duration_s=args.duration,
                node_ids=args.node_ids,
                all_or_nothing=args.all_or_nothing,
                wait=not args.no_wait,
            ),
        )
    if cmd == "stop":
        return fleetcmd.fleet_stop(client, js, args.session_id)
    if cmd == "selftest":
        return fleetcmd.fleet_selftest(client, js, args.duration, args.node_ids)
    if cmd == "lockview":
        return fleetcmd.fleet_lockview(client, js, args.session_id)
    if cmd == "mode":
        return fleetcmd.fleet_mode(client, js, args.mode, args.node_ids)
    if cmd == "update":
        return updatecmd.fleet_update(client, js, args.version, args.node_ids, not args.no_wait)
    if cmd == "shutdown":
        return nodecmd.shutdown(client, js, args.node_id, args.yes)
    if cmd == "sessions":
        return fleetcmd.sessions(client, js, args.limit)
    if cmd == "session":
        return fleetcmd.session(client, js, args.session_id)
    if cmd == "recordings":
        return fleetcmd.recordings(client, js, args.session_id)
    if cmd == "config" and args.config_cmd == "get":
        return nodecmd.config_get(client, js, args.node_id, args.key)
    if cmd == "config":
        return nodecmd.config_set(client, js, args.node_id, args.key, args.value)
    if cmd == "logs":
        return nodecmd.logs(client, js, args.lines, args.level)
    return nodecmd.registry(client, js, cmd, args.node_id)


def run_operator(args: argparse.Namespace) -> int:
    """Run one operator command: a usage or connection problem is one line and exit 2."""
    try:
        with OperatorClient(args.url, args.token) as client:
            return dispatch(client, args)
    except OperatorError as err:
        sys.stderr.write(f"camfleet: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("camfleet: interrupted\n")
        return 2
