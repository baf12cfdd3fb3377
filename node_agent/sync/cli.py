"""``camfleet sync role master|client|auto``: the node's chrony role, applied."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

DESCRIPTION = """\
Render this node's chrony configuration from the agent's sync: settings, write it
atomically and restart chrony. auto: master when cam_id is sync.master_cam_id."""


def add_sync_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """``sync role ...`` under the camfleet command (``command`` adds a subcommand)."""
    p = command("sync", "the fleet's clock: apply this node's chrony role")
    actions = p.add_subparsers(dest="sync_cmd", required=True, metavar="ACTION")
    role = actions.add_parser("role", help="write the role's chrony config and restart chrony")
    role.description = DESCRIPTION
    role.add_argument("role", choices=("master", "client", "auto"))
    role.add_argument("--config", help="the agent's YAML settings file (its sync: section)")
    role.add_argument(
        "--conf-path", help="where to write (default sync.conf_path: /etc/chrony/conf.d/...)"
    )
    role.add_argument(
        "--dry-run", action="store_true", help="print the config; write and restart nothing"
    )


def run_sync(args: argparse.Namespace) -> int:
    """Run ``camfleet sync role``; 0 done, 1 the restart failed, 2 bad settings."""
    from common.settings import SettingsError
    from node_agent.commands import CommandFailed, CommandRunner
    from node_agent.settings import load_agent_settings
    from node_agent.sync.apply import apply_role
    from node_agent.sync.role import resolve_role
    from node_agent.sync.systemctl import Systemctl

    # Under --dry-run the plan is printed below; the log would only repeat it.
    logging.basicConfig(
        level=logging.WARNING if args.dry_run else logging.INFO, format="%(message)s"
    )
    if args.config:
        os.environ["CAMFLEET_AGENT_CONFIG"] = args.config
    try:
        settings = load_agent_settings()
    except SettingsError as err:
        print(err, file=sys.stderr)
        return 2
    sync = settings.sync
    role = resolve_role(sync, settings.cam_id) if args.role == "auto" else args.role
    if role == "none":
        print("sync.role is none: this node's clock is not the fleet's; nothing to do")
        return 0
    conf = Path(args.conf_path or sync.conf_path)
    systemctl = Systemctl(CommandRunner(dry_run=args.dry_run))
    try:
        done = apply_role(role, sync, conf, systemctl, dry_run=args.dry_run)
    except OSError as err:
        print(f"camfleet sync: cannot write {conf}: {err.strerror or err}", file=sys.stderr)
        return 1
    except CommandFailed as err:
        print(f"camfleet sync: wrote {conf}, but restarting chrony failed: {err}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(f"# would write {conf} ({'changed' if done.changed else 'unchanged'}):")
        print(done.text, end="")
        print(f"# would run: systemctl restart {sync.chrony_unit}")
    else:
        print(f"{role}: wrote {conf}; restarted {sync.chrony_unit}")
    return 0
