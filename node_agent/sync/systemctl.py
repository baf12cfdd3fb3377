"""``systemctl`` as an adapter: restart or start a unit and ask whether it is active (the
updater starts its finisher, which must outlive the unit it restarts, as a unit of its own)."""

from __future__ import annotations

from dataclasses import dataclass

from node_agent.commands import CommandRunner, Completed


@dataclass
class Systemctl:
    """Runs ``systemctl`` through the runner (logged, timed out, dry-run aware)."""

    runner: CommandRunner
    program: str = "systemctl"
    timeout_s: float = 60.0

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

    def start(self, unit: str, no_block: bool = False) -> Completed:
        """``systemctl start [--no-block] UNIT``; raises CommandFailed unless it worked.
        ``no_block``: queue the start and return (a oneshot would otherwise be waited for)."""
        argv = [self.program, "start", *(["--no-block"] if no_block else []), unit]
        return self.runner.run(argv, timeout_s=self.timeout_s, check=True)
