"""The finisher: switch, restart, health-check, then commit or roll back.

Restarting the agent's unit kills every process in it, so this part cannot run in the
agent being replaced. The agent writes ``pending.json`` and starts this module from the
OLD version's venv in a unit of its own (``camfleet-update@OLD.service``); it holds
``finisher.lock`` while it works. Each step is written to the marker before it is acted
on, and every action is idempotent (pointing ``current`` again, restarting again), so a
finisher killed at any step is simply started again — by the agent, which re-launches it
whenever it finds a marker whose lock nobody holds — and carries on from the marker.
``current`` always names a whole version (``install.switch``), so the unit always starts
the old version or the new one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from node_agent.commands import CommandFailed, CommandRunner
from node_agent.sync.systemctl import Systemctl
from node_agent.updater.health import recorder_busy, wait_healthy
from node_agent.updater.hooks import checkpoint
from node_agent.updater.install import InstallError, Layout, prune, switch
from node_agent.updater.schemas import UpdateRecord, UpdateState
from node_agent.updater.state import Pending, UpdateFiles, now_iso

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # finisher starts for one update before it rolls back regardless


def _record(files: UpdateFiles, p: Pending, result: str, why: str | None) -> None:
    files.record(
        UpdateRecord(
            version=p.to_version,
            from_version=p.from_version,
            at=now_iso(),
            result=result,
            why=why,
            id=p.id,
        )
    )


def _forward(files: UpdateFiles, p: Pending, layout: Layout, systemctl: Systemctl) -> str | None:
    """Switch to the new version and check it; None when it is healthy, else why not."""
    # Never restart under a recording (one may have started while the release installed).
    while p.phase == "switching" and recorder_busy(p.health_url, p.token):
        files.set_progress(
            UpdateState.switching,
            target=p.to_version,
            detail="waiting for the recording to end",
            id=p.id,
        )
        time.sleep(1.0)
    if p.phase != "checking":  # a finisher killed while checking: the restart was done
        files.set_progress(UpdateState.switching, target=p.to_version, id=p.id)
        try:
            switch(layout, p.to_version)
        except (InstallError, OSError) as err:
            return f"switching current failed: {err}"
        checkpoint(files.dir, "switched")
        p.phase = "restarting"
        files.set_pending(p)
        files.set_progress(UpdateState.restarting, target=p.to_version, id=p.id)
        try:
            systemctl.restart(p.unit)
        except CommandFailed as err:
            return f"restart failed: {err}"
        checkpoint(files.dir, "restarted")
    p.phase = "checking"
    files.set_pending(p)
    files.set_progress(UpdateState.checking, target=p.to_version, id=p.id)

    def alive() -> bool:
        return systemctl.is_active(p.unit)

    why = wait_healthy(p.health_url, p.token, p.to_version, p.health_deadline_s, alive)
    if why is not None:
        return f"health check failed within {p.health_deadline_s:g} s: {why}"
    checkpoint(files.dir, "checked")
    return None


def _rollback(files: UpdateFiles, p: Pending, layout: Layout, systemctl: Systemctl) -> None:
    """Back to the old version; the history says why."""
    log.warning("rolling back %s -> %s: %s", p.to_version, p.from_version, p.why)
    files.set_progress(
        UpdateState.restarting, target=p.from_version, detail=f"rolling back: {p.why}", id=p.id
    )
    why = p.why or "rolled back"
    try:
        switch(layout, p.from_version)
        checkpoint(files.dir, "rolling_back")
        systemctl.restart(p.unit)
        back = wait_healthy(
            p.health_url,
            p.token,
            p.from_version,
            p.health_deadline_s,
            lambda: systemctl.is_active(p.unit),
        )
        if back is not None:
            why += f"; the old version {p.from_version} is not healthy either: {back}"
    except (InstallError, OSError, CommandFailed) as err:
        why += f"; rolling back failed: {err}"
    _record(files, p, "rolled_back", why)
    files.clear_pending()
    files.set_progress(UpdateState.rolled_back, target=p.to_version, detail=why, id=p.id)


def finish(files: UpdateFiles, runner: CommandRunner) -> int:
    """Carry the pending update to its end (0), or leave it to the finisher that holds the
    lock (0 too); 1 when there was nothing to do."""
    fd = files.try_lock()
    if fd is None:
        return 0
    try:
        p = files.pending()
        if p is None:
            return 1
        layout = Layout(Path(p.install_root), Path(p.base))
        systemctl = Systemctl(runner, program=p.systemctl)
        p.attempts += 1
        if p.phase != "rolling_back" and p.attempts > MAX_ATTEMPTS:
            p.phase, p.why = "rolling_back", f"the update was interrupted {MAX_ATTEMPTS} times"
        files.set_pending(p)
        if p.phase != "rolling_back":
            why = _forward(files, p, layout, systemctl)
            if why is None:
                _record(files, p, "installed", None)
                gone = prune(layout, p.keep_versions, {p.from_version, p.to_version})
                files.clear_pending()
                files.set_progress(
                    UpdateState.done, target=p.to_version, detail=None, id=p.id, pruned=gone
                )
                log.info("updated %s -> %s", p.from_version, p.to_version)
                return 0
            p.phase, p.why = "rolling_back", why
            files.set_pending(p)
        _rollback(files, p, layout, systemctl)
        return 0
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """``python -m node_agent.updater.finisher UPDATES_DIR``."""
    parser = argparse.ArgumentParser(prog="camfleet-update-finisher")
    parser.add_argument("updates_dir", help="the agent's data_dir/updates")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    files = UpdateFiles(Path(args.updates_dir).parent)
    return finish(files, CommandRunner(default_timeout_s=120.0))


if __name__ == "__main__":
    sys.exit(main())
