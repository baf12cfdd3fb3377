"""``camfleet sync role``: render the role's chrony configuration, write it atomically,
restart chrony."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from common.fsutil import atomic_write_bytes
from node_agent.sync.render import render
from node_agent.sync.settings import SyncSettings
from node_agent.sync.systemctl import Systemctl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """What ``apply_role`` did."""

    role: str
    conf_path: Path
    changed: bool  # the file's content differed (or it did not exist)
    restarted: bool
    text: str


def apply_role(
    role: str,
    sync: SyncSettings,
    conf_path: Path,
    systemctl: Systemctl,
    dry_run: bool = False,
) -> Applied:
    """Write ``role``'s configuration to ``conf_path`` (temp + fsync + rename) and restart
    ``sync.chrony_unit``. Under ``dry_run`` nothing is written and the restart is only
    logged (the runner's dry-run). The restart happens even when the file was already
    right: a unit that runs this at boot wants chrony running with it."""
    text = render(role, sync)
    try:
        changed = conf_path.read_text() != text
    except OSError:
        changed = True
    if dry_run:
        log.info("would write %s (%s)", conf_path, "changed" if changed else "unchanged")
    else:
        conf_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(conf_path, text.encode(), mode=0o644)
        log.info("wrote %s for the %s role", conf_path, role)
    done = systemctl.restart(sync.chrony_unit)
    return Applied(role, conf_path, changed, not done.dry_run, text)
