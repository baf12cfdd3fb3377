"""``systemctl`` as an adapter: restart a unit and ask whether it is active; ``systemd-run``
for a transient unit (the updater's finisher, which must outlive the unit it restarts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node_agent.commands import CommandRunner, Completed


@dataclass
class Systemctl:
    """Runs ``systemctl`` through the runner (logged, timed out, dry-run aware)."""

    runner: CommandRunner
    program: str = "systemctl"
    timeout_s: float = 60.0
    systemd_run: str = "systemd-run"

    def restart(self, unit: str) -> Completed:
        """``systemctl restart UNIT``; raises CommandFailed unless it worked."""
        return self.runner.run(
            [self.program, "restart", unit], timeout_s=self.timeout_s, check=True
        )

    def is_active(self, unit: str) -> bool:
        """``systemctl is-active --quiet UNIT`` (a read: it runs under dry-run too)."""
        done = self.runner.run(
            [self.program, "is-active", "--quiet", unit], timeout_s=self.timeout_s, mutates=False
        )
        return done.ok

    def run_transient(self, unit: str, argv: Sequence[str]) -> Completed:
        """``systemd-run --unit UNIT --collect -- ARGV``: a service of its own, outside the
        caller's cgroup, so restarting the caller's unit does not kill it."""
        return self.runner.run(
            [self.systemd_run, "--unit", unit, "--collect", "--quiet", "--", *argv],
            timeout_s=self.timeout_s,
            check=True,
        )
