"""The coordinator's ``/metrics``: fleet gauges from the caches, never a call to a node.

``FleetCollector`` renders what the poller and the status streams last cached, plus a
snapshot of the sessions table that the route refreshes with one query before each
scrape. The series are listed in docs/metrics.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.fleet.state import FleetState
from app.fleet.wire import RecorderState
from app.sessions.models import RecordingSession, SessionState

if TYPE_CHECKING:
    from app.context import Fleet
    from app.offload.live import LiveJob


@dataclass
class SessionSnapshot:
    """Sessions by state and the last measured start skew, as of the last scrape."""

    by_state: dict[str, int] = field(default_factory=dict)
    last_skew_s: float | None = None
    last_skew_bound_s: float | None = None


def read_sessions(db: Session) -> SessionSnapshot:
    """One grouped count and one row: cheap even with years of sessions."""
    rows = db.exec(
        select(RecordingSession.state, func.count()).group_by(col(RecordingSession.state))
    ).all()
    snap = SessionSnapshot(by_state={str(state): int(n) for state, n in rows})
    last = db.exec(
        select(RecordingSession)
        .where(col(RecordingSession.skew_ms).is_not(None))
        .order_by(col(RecordingSession.created_at_ns).desc())
        .limit(1)
    ).first()
    if last is not None and last.skew_ms is not None:
        snap.last_skew_s = last.skew_ms / 1000
        if last.skew_bound_ms is not None:
            snap.last_skew_bound_s = last.skew_bound_ms / 1000
    return snap


async def refresh_sessions(fleet: Fleet) -> None:
    """Read the sessions snapshot the next render shows (on a database thread)."""
    fleet.sessions_snapshot = await fleet.store.run(read_sessions)


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels or [])


class FleetCollector(Collector):
    """Renders the cached fleet state on each scrape (called on a worker thread)."""

    def __init__(
        self,
        state: FleetState,
        sessions: Callable[[], SessionSnapshot] = SessionSnapshot,
        offload_jobs: Callable[[], Mapping[str, LiveJob]] = dict,
    ) -> None:
        self.state = state
        self.sessions = sessions
        self.offload_jobs = offload_jobs

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        yield from self._fleet()
        yield from self._sessions()
        yield from self._offload()

    def _fleet(self) -> Iterator[Metric]:
        now = time.time_ns()
        # A scrape runs in a worker thread while the loop may add or remove nodes: read
        # copies, and tolerate a node that is gone by the time its row is rendered.
        ids = sorted(list(self.state.addresses))
        cam_ids = dict(self.state.cam_ids)
        online = {n for n in ids if self.state.online(n, now)}
        total = _gauge("camfleet_nodes", "Nodes that have joined")
        total.add_metric([], len(ids))
        on = _gauge("camfleet_nodes_online", "Nodes with a recent successful contact")
        on.add_metric([], len(online))
        yield total
        yield on

        labels = ["node_id", "cam_id"]
        g = {
            name: _gauge(name, doc, labels)
            for name, doc in (
                ("camfleet_node_up", "1 when the node is online"),
                ("camfleet_node_recording", "1 while the node records or is armed"),
                ("camfleet_node_dropped_frames", "Dropped frames in the node's current recording"),
                ("camfleet_node_encode_fps", "Frames the node encodes per second"),
                ("camfleet_node_disk_free_bytes", "Free bytes on the node's recordings disk"),
                (
                    "camfleet_node_disk_recording_seconds_left",
                    "Seconds of video that still fit on the node at its bitrate",
                ),
                (
                    "camfleet_node_disk_unoffloaded_bytes",
                    "Bytes of the node's finished recordings with no confirmed copy",
                ),
                (
                    "camfleet_node_disk_oldest_unoffloaded_age_seconds",
                    "Age of the node's oldest recording not yet offloaded (0 when none)",
                ),
                ("camfleet_node_clock_offset_seconds", "The node's clock minus its reference"),
                (
                    "camfleet_node_clock_error_bound_seconds",
                    "The node's |offset| + root dispersion + root delay / 2",
                ),
                ("camfleet_node_power_battery_percent", "The node's battery charge (0-100)"),
                ("camfleet_node_thermal_cpu_temperature_celsius", "The node's CPU temperature"),
                (
                    "camfleet_node_status_age_seconds",
                    "Seconds since the cached status was read from the node",
                ),
            )
        }
        for node_id in ids:
            lv = [node_id, cam_ids.get(node_id, "")]
            g["camfleet_node_up"].add_metric(lv, 1 if node_id in online else 0)
            entry = self.state.cache.get(node_id)
            status = entry.status if entry is not None else None
            if entry is None or status is None:
                continue  # never answered: only its up series
            if entry.status_at_ns is not None:
                g["camfleet_node_status_age_seconds"].add_metric(
                    lv, max(0.0, (now - entry.status_at_ns) / 1e9)
                )
            r, d, c = status.recorder, status.disk, status.clock
            busy = r.state in (RecorderState.recording, RecorderState.armed)
            g["camfleet_node_recording"].add_metric(lv, 1 if busy else 0)
            g["camfleet_node_dropped_frames"].add_metric(lv, r.dropped_frames)
            g["camfleet_node_encode_fps"].add_metric(lv, r.encode_fps)
            g["camfleet_node_disk_free_bytes"].add_metric(lv, d.free_bytes)
            g["camfleet_node_disk_recording_seconds_left"].add_metric(lv, d.minutes_left * 60)
            g["camfleet_node_disk_unoffloaded_bytes"].add_metric(lv, d.unoffloaded_bytes)
            g["camfleet_node_disk_oldest_unoffloaded_age_seconds"].add_metric(
                lv, d.oldest_unoffloaded_age_s or 0.0
            )
            if c.offset_ns is not None:
                g["camfleet_node_clock_offset_seconds"].add_metric(lv, c.offset_ns / 1e9)
            if c.error_bound_ns is not None:
                g["camfleet_node_clock_error_bound_seconds"].add_metric(lv, c.error_bound_ns / 1e9)
            p = status.power
            percent = p.reading.percent if p and p.reading and p.reading.ok else None
            if percent is not None:
                g["camfleet_node_power_battery_percent"].add_metric(lv, percent)
            if status.cpu_temp_c is not None:
                g["camfleet_node_thermal_cpu_temperature_celsius"].add_metric(lv, status.cpu_temp_c)
        yield from g.values()

    def _sessions(self) -> Iterator[Metric]:
        snap = self.sessions()
        by_state = _gauge("camfleet_sessions", "Recording sessions by state", ["state"])
        for st in SessionState:
            by_state.add_metric([st.value], snap.by_state.get(st.value, 0))
        yield by_state
        if snap.last_skew_s is not None:
            skew = _gauge(
                "camfleet_session_last_skew_seconds",
                "Start skew of the last session with a measured skew (first frames, "
                "corrected by each node's clock offset)",
            )
            skew.add_metric([], snap.last_skew_s)
            yield skew
        if snap.last_skew_bound_s is not None:
            bound = _gauge(
                "camfleet_session_last_skew_bound_seconds",
                "How far the last session's measured skew may be off (the nodes' clock bounds)",
            )
            bound.add_metric([], snap.last_skew_bound_s)
            yield bound

    def _offload(self) -> Iterator[Metric]:
        jobs = [j for j in list(self.offload_jobs().values()) if j.state == "running"]
        total = _gauge(
            "camfleet_offload_running_bytes", "Bytes the running offload jobs pull in all"
        )
        done = _gauge(
            "camfleet_offload_running_done_bytes", "Bytes of the running offload jobs verified"
        )
        total.add_metric([], sum(j.bytes_total for j in jobs))
        done.add_metric([], sum(f.progress.bytes_done for j in jobs for f in list(j.files)))
        yield total
        yield done
