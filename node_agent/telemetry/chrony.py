"""Clock telemetry from chrony: the parsers (``chrony_parse``) and ``ClockMonitor``.

``ClockMonitor`` is the one adapter that runs ``chronyc``: one call a poll,
``chronyc [-h HOST|SOCKET] [-p PORT] -c -n -m tracking sources sourcestats``, through a
``CommandRunner`` with a time-out, parsed into the full ``ClockStatus``
(``clock_status``). A failure is data (``error``, unsynchronised), never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from node_agent.commands import NOT_FOUND, TIMED_OUT, CommandRunner
from node_agent.schemas import ClockStatus
from node_agent.telemetry.chrony_parse import (
    TRACKING_FIELDS,
    ChronyReport,
    ChronyTracking,
    SourceStats,
    TrackingParseError,
    join_sources,
    parse_report,
    parse_sources,
    parse_sourcestats,
    parse_tracking,
)
from node_agent.telemetry.clock_status import (
    ClockRole,
    error_bound_ns,
    status_from_report,
    status_unread,
)
from node_agent.telemetry.reading import Reading

log = logging.getLogger(__name__)

REPORTS = ("tracking", "sources", "sourcestats")
ROLE_REFRESH_S = 60.0  # how often the master's host name is resolved again


def chronyc_argv(
    chronyc: str,
    host: str | None = None,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
) -> list[str]:
    """The one chronyc call a poll makes: all three reports in CSV, numeric addresses."""
    argv = [chronyc]
    if host:
        argv += ["-h", host]  # a host name, an address, or chronyd's Unix socket path
    if port:
        argv += ["-p", str(port)]
    return [*argv, *extra_args, "-c", "-n", "-m", *REPORTS]


class ClockMonitor:
    """Polls chronyc and keeps the latest ``ClockStatus``; never raises."""

    def __init__(
        self,
        chronyc: str = "chronyc",
        interval_s: float = 5.0,
        extra_args: tuple[str, ...] = (),
        *,
        host: str | None = None,
        port: int | None = None,
        timeout_s: float = 3.0,
        role: ClockRole | None = None,
        refresh_role: Callable[[], ClockRole] | None = None,
        runner: CommandRunner | None = None,
    ) -> None:
        self.chronyc = chronyc
        self.interval_s = interval_s
        self.argv = chronyc_argv(chronyc, host, port, extra_args)
        self.timeout_s = timeout_s
        self.role = role or ClockRole()
        self._refresh_role = refresh_role
        self._role_at = float("-inf")  # the first poll resolves the role
        # Its own runner: a poll every few seconds must not crowd the journal of the
        # runner that switches power and mounts cards. Reading only: runs under dry-run.
        self.runner = runner or CommandRunner(journal_size=10, quiet=True)
        self.latest = status_unread("not read yet", None, self.role)
        self.ok = False
        self._task: asyncio.Task[None] | None = None

    def reading(self) -> Reading[ClockStatus]:
        """The latest status as a collector result: ok when the last chronyc run succeeded."""
        return Reading("clock", self.latest, None if self.ok else self.latest.error or "failed")

    def read_sync(self) -> ClockStatus:
        """Run chronyc once (blocking) and update ``latest``."""
        if self._refresh_role and time.monotonic() - self._role_at > ROLE_REFRESH_S:
            self.role = self._refresh_role()
            self._role_at = time.monotonic()
        now_ns = time.time_ns()
        done = self.runner.run(self.argv, timeout_s=self.timeout_s, mutates=False)
        if done.returncode == NOT_FOUND:
            status, ok = status_unread(f"{self.chronyc} not found", now_ns, self.role), False
        elif done.returncode == TIMED_OUT:
            why = f"chronyc: no answer within {self.timeout_s:g} s"
            status, ok = status_unread(why, now_ns, self.role), False
        elif not done.ok:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            text = last[0] if last else f"exit code {done.returncode}"
            status, ok = status_unread(f"chronyc: {text}", now_ns, self.role), False
        else:
            try:
                status = status_from_report(parse_report(done.stdout), now_ns, self.role)
                ok = True
            except TrackingParseError as err:
                status, ok = status_unread(f"chronyc: {err}", now_ns, self.role), False
        self.latest, self.ok = status, ok
        return status

    async def read_once(self) -> ClockStatus:
        """Run chronyc once in a worker thread and update ``latest``."""
        return await asyncio.to_thread(self.read_sync)

    async def _run(self) -> None:
        while True:
            await self.read_once()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Begin polling in the background."""
        self._task = asyncio.create_task(self._run(), name="clock-monitor")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


__all__ = [
    "TRACKING_FIELDS",
    "ChronyReport",
    "ChronyTracking",
    "ClockMonitor",
    "ClockRole",
    "SourceStats",
    "TrackingParseError",
    "chronyc_argv",
    "error_bound_ns",
    "join_sources",
    "parse_report",
    "parse_sources",
    "parse_sourcestats",
    "parse_tracking",
]
