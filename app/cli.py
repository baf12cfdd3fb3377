"""The camfleet command: run the coordinator, an agent, the demo, or operate the fleet."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from node_agent.sync.cli import add_sync_command, run_sync
from node_agent.updater.cli import add_release_command, run_release

DEFAULT_URL = "http://127.0.0.1:8080"

DESCRIPTION = """\
Run a fleet of Raspberry Pi cameras as one instrument: the coordinator, a node agent,
a demo fleet on loopback, or operator commands against a running coordinator."""

EPILOG = """\
environment:
  CAMFLEET_URL              the coordinator's URL for the operator commands
                            (default http://127.0.0.1:8080; --url wins)
  CAMFLEET_OPERATOR_TOKEN   the operator token (camfleet demo prints it; --token wins)
  CAMFLEET_*                settings of coordinator and agent (see the README)

examples:
  camfleet demo
  camfleet --url http://rig.local:8080 fleet status
  camfleet fleet start --name kick-off       waits for the start instant
  camfleet fleet stop                        the running session; its manifests
  camfleet session SESSION_ID                skew and bound, nodes, checksums
  camfleet fleet status --json               the coordinator's answer, for scripts
  camfleet config set cam-c camera.fps 25
  camfleet offload SESSION_ID ~/footage      pull, verify, confirm to the nodes
  camfleet offload ~/footage                 every recording not yet offloaded
  camfleet download SESSION_ID ~/footage     the same pull; never confirms
  camfleet archive SESSION_ID --wait         the coordinator offloads into its archive
  camfleet dashcam --config /etc/camfleet/agent.yaml --dry-run --once
                                             print the dashcam loop's plan, run nothing
  camfleet sync role client --dry-run        print this node's chrony config
  camfleet release sign camfleet-0.2.0.tar.gz --key release.pem
                                             write the archive's .sha256 and .sig
  camfleet user add alice --config /etc/camfleet/coordinator.yaml
                                             a user who signs in to the pages

exit codes of the operator commands: 0 ok, 1 some node failed (refused a start,
did not pass the self-test, is offline), 2 usage or connection problem (a refused
token, an unknown session or node, no coordinator). Of offload, download and
archive: 0 every file verified, 1 some file failed or was corrupt (kept as
FILE.corrupt, nothing confirmed), 2 usage or connection problem."""


# Idle keep-alive a server holds (see _serve).
SERVER_KEEP_ALIVE_S = 75


def _serve(app: Any, host: str, port: int, log_level: str) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # Let the app end its endless responses (event streams) first.
            notify = getattr(getattr(app, "state", None), "on_server_shutdown", None)
            if notify is not None:
                notify()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=20,
        # Longer than the coordinator's client keeps an idle connection (its connector's
        # keepalive_timeout): with uvicorn's 5 s a call reusing a connection just as the
        # server closes it is lost ("closed before answering"), seen over a delaying link.
        timeout_keep_alive=SERVER_KEEP_ALIVE_S,
        # The coordinator calls back the TCP peer of a join; an X-Forwarded-For header
        # (which uvicorn trusts from 127.0.0.1 by default) must not choose that address.
        proxy_headers=False,
    )
    Server(config).run()


def run_coordinator(args: argparse.Namespace) -> int:
    """``camfleet coordinator``."""
    from app.main import create_app
    from app.metrics import share_the_gil
    from app.settings import load_coordinator_settings
    from common.settings import SettingsError

    if args.config:
        os.environ["CAMFLEET_COORDINATOR_CONFIG"] = args.config
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = load_coordinator_settings(**overrides)
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    share_the_gil()  # a scrape's render thread never holds the event loop up for long
    _serve(create_app(settings), settings.host, settings.port, args.log_level)
    return 0


def run_agent(args: argparse.Namespace) -> int:
    """``camfleet agent``."""
    from common.settings import SettingsError
    from node_agent.main import create_app
    from node_agent.settings import load_agent_settings

    if args.config:
        os.environ["CAMFLEET_AGENT_CONFIG"] = args.config
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        settings = load_agent_settings(**overrides)
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    _serve(create_app(settings), settings.host, settings.port, args.log_level)
    return 0


def run_dashcam_command(args: argparse.Namespace) -> int:
    """``camfleet dashcam``: the dashcam loop alone (the agent's YAML settings)."""
    from common.settings import SettingsError
    from node_agent.dashcam.daemon import run_dashcam
    from node_agent.settings import load_agent_settings

    if args.config:
        os.environ["CAMFLEET_AGENT_CONFIG"] = args.config
    try:
        settings = load_agent_settings()
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    return run_dashcam(settings, dry_run=args.dry_run, once=args.once)


def run_demo(args: argparse.Namespace) -> int:
    """``camfleet demo``."""
    from app.demo import run

    return run(
        args.port,
        args.data_dir,
        args.width,
        args.height,
        args.fps,
        agent_config=args.agent_config,
        coordinator_config=args.coordinator_config,
    )


def add_footage_commands(
    command: Callable[[str, str], argparse.ArgumentParser], url_help: str, token_help: str
) -> None:
    """``offload``, ``download`` and ``archive``."""
    from app.operator.pull import SOURCES

    helps = {
        "offload": "pull a session (or everything not yet offloaded) into DIR, verify every "
        "byte, confirm to the nodes the files taken from them",
        "download": "pull one session into DIR and verify every byte; never confirms",
        "archive": "have the coordinator offload into its own archive (verified, then "
        "confirmed to the nodes)",
    }
    for name, helptext in helps.items():
        p = command(name, helptext)
        p.add_argument("--url", default=argparse.SUPPRESS, help=url_help)
        p.add_argument("--token", default=argparse.SUPPRESS, help=token_help)
        p.add_argument(
            "--json", action="store_true", help="print one JSON object (no progress bars)"
        )
        if name == "offload":
            p.add_argument(
                "session_id",
                nargs="?",
                metavar="SESSION_ID",
                help="one session (default: every recording not yet offloaded)",
            )
        elif name == "download":
            p.add_argument("session_id", metavar="SESSION_ID", help="the session")
        if name in ("offload", "download"):
            p.add_argument("dir", metavar="DIR", help="files go to DIR/SESSION_ID/")
            p.add_argument(
                "--from",
                dest="source",
                choices=SOURCES,
                default="auto",
                help="where each file comes from: the coordinator's archive, the nodes "
                "(relayed by the coordinator), or auto: the archive when it has the file "
                "(default auto)",
            )
            p.add_argument(
                "--jobs",
                type=int,
                default=2,
                help="files in flight at once, one per node (default 2)",
            )
        else:
            p.add_argument(
                "session_id",
                nargs="?",
                metavar="SESSION_ID",
                help="one session (default: every recording not yet confirmed)",
            )
            p.add_argument(
                "--node", action="append", dest="node_ids", metavar="NODE_ID", help="repeatable"
            )
            p.add_argument(
                "--wait", action="store_true", help="follow the job with progress bars until done"
            )


def run_footage(args: argparse.Namespace) -> int:
    """``camfleet offload``, ``download``, ``archive``."""
    if args.cmd == "archive":
        from app.operator.archive import run_archive

        return run_archive(
            args.url,
            args.token,
            args.session_id,
            args.node_ids,
            wait=args.wait,
            json_output=args.json,
        )
    from app.operator.pull import run_pull

    return run_pull(
        args.url,
        args.token,
        args.session_id,
        args.dir,
        command=args.cmd,
        source=args.source,
        jobs=args.jobs,
        json_output=args.json,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(
        prog="camfleet",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # --url and --token go before the command or after it; after wins. The subcommands'
    # copies default to SUPPRESS so they do not overwrite a value given before.
    url_default = os.environ.get("CAMFLEET_URL", DEFAULT_URL)
    url_help = f"coordinator URL (default: $CAMFLEET_URL or {DEFAULT_URL})"
    token_help = "operator token (default: $CAMFLEET_OPERATOR_TOKEN)"
    parser.add_argument("--url", default=url_default, help=url_help)
    parser.add_argument("--token", help=token_help)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def command(name: str, helptext: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, help=helptext, description=helptext[0].upper() + helptext[1:] + "."
        )

    for name, helptext in (("coordinator", "run the coordinator"), ("agent", "run a node agent")):
        p = command(name, helptext)
        p.add_argument("--config", help="YAML settings file (environment CAMFLEET_* wins)")
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.add_argument("--log-level", default="info")

    p = command(
        "dashcam",
        "run the dashcam loop alone: copy a USB dashcam's footage when home, upload it to "
        "a NAS by rsync, confirmed by checksum",
    )
    p.add_argument("--config", help="the agent's YAML settings file (its dashcam: section)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="log every command it would run (uhubctl, mount, rsync, shutdown); run none",
    )
    p.add_argument("--once", action="store_true", help="run one cycle and exit")

    add_sync_command(command)
    add_release_command(command)

    p = command("demo", "run a coordinator and three synthetic cameras on loopback")
    p.add_argument("--port", type=int, default=8080, help="coordinator port; agents use the next 3")
    p.add_argument(
        "--data-dir", default="./demo-data", help="data, logs and configs of the children"
    )
    p.add_argument("--width", type=int, help="camera width (default 1280; wins over the file)")
    p.add_argument("--height", type=int, help="camera height (default 720)")
    p.add_argument("--fps", type=float, help="camera frame rate (default 30)")
    p.add_argument(
        "--agent-config",
        metavar="FILE",
        help="YAML settings merged into every agent's (identity, port, data_dir, "
        "coordinator_url and tokens stay the demo's)",
    )
    p.add_argument(
        "--coordinator-config",
        metavar="FILE",
        help="YAML settings merged into the coordinator's (port, data_dir and tokens stay "
        "the demo's)",
    )

    from app.operator.cliargs import COMMANDS as OPERATOR_COMMANDS
    from app.operator.cliargs import add_operator_commands, run_operator

    add_operator_commands(command, url_help, token_help)

    add_footage_commands(command, url_help, token_help)

    from app.auth.usercmd import add_user_command, run_user

    add_user_command(command)

    args = parser.parse_args(argv)
    if args.cmd in ("offload", "download", "archive"):
        return run_footage(args)
    if args.cmd == "coordinator":
        return run_coordinator(args)
    if args.cmd == "agent":
        return run_agent(args)
    if args.cmd == "demo":
        return run_demo(args)
    if args.cmd == "dashcam":
        return run_dashcam_command(args)
    if args.cmd == "sync":
        return run_sync(args)
    if args.cmd == "release":
        return run_release(args)
    if args.cmd == "user":
        return run_user(args)
    if args.cmd in OPERATOR_COMMANDS:
        return run_operator(args)
    parser.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
