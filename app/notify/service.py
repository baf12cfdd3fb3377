"""``FleetAlerts``: the fleet's events as alerts, from the cached state and the offload.

A sweep over the fleet's caches (no call to any node) runs every ``interval_s``: a node
that was online and no longer is (its stream broke and a probe failed, or it has not
answered for ``offline_after_s``), a clock whose error bound is over one frame period
(``app.nodes.clockflags``), a battery that entered a more severe level. The offload
engine tells a failed job and a corrupt copy directly. Each event's key names the node
(``node_offline:cam-l-1``); the repeat window holds it back per node.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence

from app.fleet.state import FleetState
from app.nodes.clockflags import frame_flag
from common.notify import (
    DailySummary,
    Level,
    Notifier,
    SummaryScheduler,
    format_daily_summary,
)

log = logging.getLogger(__name__)

# The battery levels a node's power monitor reports, the severe ones only (the values of
# node_agent.power.schemas.PowerLevel).
_BATTERY = {
    "warn": (1, Level.warning, "battery low"),
    "low": (2, Level.warning, "battery low: recordings are refused"),
    "disconnect": (3, Level.error, "battery very low: recording stopped, camera off"),
    "shutdown": (4, Level.critical, "battery empty: the node shuts down"),
}


class FleetAlerts:
    """The fleet's events (see the module docstring)."""

    def __init__(self, notifier: Notifier, state: FleetState, interval_s: float = 2.0) -> None:
        self.notifier = notifier
        self.state = state
        self.interval_s = interval_s
        self._online: dict[str, bool] = {}
        self._battery: dict[str, int] = {}
        self._seen_status: dict[str, int | None] = {}  # status_at_ns of the last look
        self._task: asyncio.Task[None] | None = None
        self.summary: SummaryScheduler | None = None

    def _name(self, node_id: str) -> str:
        cam = self.state.cam_ids.get(node_id)
        return f"{node_id} ({cam})" if cam else node_id

    def sweep(self, now_ns: int | None = None) -> None:
        """One look at every node's cached state."""
        now = now_ns if now_ns is not None else time.time_ns()
        for node_id in list(self.state.addresses):
            entry = self.state.cache.get(node_id)
            if entry is None:
                continue
            online = self.state.online(node_id, now)
            was = self._online.get(node_id)
            self._online[node_id] = online
            if was and not online:
                why = entry.last_error or f"no answer for over {self.state.offline_after_s:g} s"
                self.notifier.notify(
                    f"node {self._name(node_id)} is offline: {why}",
                    Level.error,
                    f"node_offline:{node_id}",
                )
            elif was is False and online:
                self.notifier.notify(
                    f"node {self._name(node_id)} is back online",
                    Level.info,
                    f"node_online:{node_id}",
                )
            status = entry.status
            if status is None or not online:
                continue
            if self._seen_status.get(node_id) == entry.status_at_ns:
                continue  # the same status as last time: judged already
            self._seen_status[node_id] = entry.status_at_ns
            flag = frame_flag(status)
            if flag is not None:
                self.notifier.notify(
                    f"node {self._name(node_id)}: {flag}", Level.warning, f"clock_bound:{node_id}"
                )
            self._check_battery(node_id, status.power.level.value if status.power else None)
        for gone in set(self._online) - set(self.state.addresses):
            self._online.pop(gone, None)
            self._battery.pop(gone, None)
            self._seen_status.pop(gone, None)

    def _check_battery(self, node_id: str, level: str | None) -> None:
        rank, lvl, text = _BATTERY.get(level or "", (0, Level.info, ""))
        before = self._battery.get(node_id, 0)
        self._battery[node_id] = rank
        if rank > before:
            self.notifier.notify(
                f"node {self._name(node_id)}: {text}", lvl, f"battery_{level}:{node_id}"
            )

    # -- the offload --------------------------------------------------------------------

    def offload_corrupt(self, node_id: str, file_name: str, error: str) -> None:
        """A copy did not match its manifest's SHA-256."""
        self.notifier.notify(
            f"offload of {file_name} from {self._name(node_id)} is corrupt: {error}",
            Level.error,
            f"offload_corrupt:{node_id}:{file_name}",
        )

    def offload_failed(self, job_id: str, failures: Sequence[tuple[str, str, str]]) -> None:
        """A job ended with files that failed: (node id, file name, error) each."""
        by_node: dict[str, list[tuple[str, str]]] = {}
        for node_id, file_name, error in failures:
            by_node.setdefault(node_id, []).append((file_name, error))
        for node_id, files in by_node.items():
            first_name, first_error = files[0]
            self.notifier.notify(
                f"offload {job_id}: {len(files)} file(s) from {self._name(node_id)} failed "
                f"({first_name}: {first_error})",
                Level.error,
                f"offload_failed:{node_id}",
            )

    # -- the daily summary ------------------------------------------------------------------

    def fleet_summary(self, day: dt.date) -> DailySummary:
        """The coordinator's summary: the fleet's nodes, each with its stills and disk."""
        lines, online, waiting = [], 0, 0
        for node_id in sorted(self.state.addresses):
            entry = self.state.cache.get(node_id)
            up = self.state.online(node_id)
            online += up
            status = entry.status if entry is not None else None
            parts = ["online" if up else "offline"]
            if status is not None:
                if status.timelapse is not None:
                    parts.append(f"{status.timelapse.captures_today} photos")
                if status.disk.total_bytes > 0:
                    parts.append(f"disk {100 - status.disk.free_percent:.0f}% used")
                waiting += status.disk.unoffloaded_count
            lines.append(f"- {self._name(node_id)}: {', '.join(parts)}")
        since = dt.datetime.combine(day, dt.time()).astimezone().timestamp()
        return DailySummary(
            device_id=self.notifier.device_id,
            date=day,
            backup=f"{waiting} recording(s) not yet offloaded" if waiting else "Complete",
            has_video=False,
            extra=[f"Nodes: {online} of {len(self.state.addresses)} online", *lines],
            errors=self.notifier.problems_since(since),
        )

    def send_summary(self, day: dt.date) -> None:
        """Send the summary of ``day`` now."""
        text = format_daily_summary(self.fleet_summary(day))
        self.notifier.notify_plain(text, Level.info, f"daily_summary:{day}")

    # -- the loop -----------------------------------------------------------------------

    def start(self, daily_summary: bool = False, at: tuple[int, int] = (23, 0)) -> None:
        """Sweep on the running loop (when a channel is set); the summary too when on."""
        if not self.notifier.enabled:
            return
        self._task = asyncio.create_task(self._run(), name="fleet-alerts")
        if daily_summary:
            self.summary = SummaryScheduler(self.send_summary, *at)
            self.summary.start()

    async def stop(self) -> None:
        """Stop sweeping; queued alerts get a moment to go."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.summary is not None:
            self.summary.stop()
        await asyncio.to_thread(self.notifier.close)

    async def _run(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:
                log.exception("fleet alert sweep failed")
            await asyncio.sleep(self.interval_s)
