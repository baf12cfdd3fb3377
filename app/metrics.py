"""The coordinator's ``/metrics``: fleet gauges from the caches, never a call to a node.

``FleetExposition`` renders what the poller and the status streams last cached, plus a
snapshot of the sessions table that the route refreshes with one query before each
scrape. The series are listed in docs/metrics.md.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.utils import floatToGoString
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from app import __version__
from app.fleet.state import FleetState
from app.fleet.wire import NodeStatus, RecorderState
from app.sessions.models import RecordingSession, SessionState

log = logging.getLogger(__name__)

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
    """Read the sessions snapshot the next render shows (on a database thread).

    A database that cannot answer leaves the last snapshot in place: the fleet's series
    still go out, and the scrape does not fail with them.
    """
    try:
        fleet.sessions_snapshot = await fleet.store.run(read_sessions)
    except SQLAlchemyError as err:
        log.warning("metrics: sessions not read, the last figures stand: %s", err)


# prometheus_client's own float format (1.0, 1e+21, NaN), so both halves of a body agree.
_v: Callable[[float], str] = floatToGoString


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


# Nodes rendered between two offers of the GIL (see FleetExposition._fleet).
YIELD_EVERY = 25
# The coordinator's forced GIL switch interval (the interpreter's default is 5 ms): a
# thread that renders or queries hands the GIL to the event loop's thread within 1 ms.
SWITCH_INTERVAL_S = 0.001


def share_the_gil() -> None:
    """Set the process's GIL switch interval to SWITCH_INTERVAL_S (``camfleet coordinator``
    calls it once at start; docs/benchmarks.md, section 12, has the figures)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


# Per-node series: name -> help. The order is the exposition's.
NODE_SERIES: dict[str, str] = {
    "camfleet_node_up": "1 when the node is online",
    "camfleet_node_recording": "1 while the node records or is armed",
    "camfleet_node_dropped_frames": "Dropped frames in the node's current recording",
    "camfleet_node_encode_fps": "Frames the node encodes per second",
    "camfleet_node_disk_free_bytes": "Free bytes on the node's recordings disk",
    "camfleet_node_disk_recording_seconds_left": (
        "Seconds of video that still fit on the node at its bitrate"
    ),
    "camfleet_node_disk_unoffloaded_bytes": (
        "Bytes of the node's finished recordings with no confirmed copy"
    ),
    "camfleet_node_disk_oldest_unoffloaded_age_seconds": (
        "Age of the node's oldest recording not yet offloaded (0 when none)"
    ),
    "camfleet_node_clock_offset_seconds": "The node's clock minus its reference",
    "camfleet_node_clock_error_bound_seconds": (
        "The node's |offset| + root dispersion + root delay / 2"
    ),
    "camfleet_node_power_battery_percent": "The node's battery charge (0-100)",
    "camfleet_node_thermal_cpu_temperature_celsius": "The node's CPU temperature",
    "camfleet_node_status_age_seconds": "Seconds since the cached status was read from the node",
}


def _values(up: bool, status: NodeStatus | None) -> tuple[float | None, ...]:
    """A node's values in _STATIC's order; None where the series is absent (a node that
    never answered has only its up series)."""
    if status is None:
        return (1 if up else 0, *([None] * (len(_STATIC) - 1)))
    r, d, c, p = status.recorder, status.disk, status.clock, status.power
    percent = p.reading.percent if p and p.reading and p.reading.ok else None
    return (
        1 if up else 0,
        1 if r.state in (RecorderState.recording, RecorderState.armed) else 0,
        r.dropped_frames,
        r.encode_fps,
        d.free_bytes,
        d.minutes_left * 60,
        d.unoffloaded_bytes,
        d.oldest_unoffloaded_age_s or 0.0,
        None if c.offset_ns is None else c.offset_ns / 1e9,
        None if c.error_bound_ns is None else c.error_bound_ns / 1e9,
        percent,
        status.cpu_temp_c,
    )


class _Rendered(NamedTuple):
    """A node as the last scrape rendered it."""

    cam_id: str
    status: NodeStatus | None  # the very object its values were read from (kept alive)
    values: tuple[float | None, ...]  # in _STATIC's order, the up series first
    labels: str
    lines: tuple[str, ...]  # one per _STATIC series, "" where it is absent


_STATIC = [n for n in NODE_SERIES if n != "camfleet_node_status_age_seconds"]


class FleetExposition:
    """The fleet's series as exposition text, written straight from the caches.

    prometheus_client's generic path (a family object per series, a sample tuple per
    value, label names validated and escaped per line) takes about seven times as long
    for 1000 nodes (docs/benchmarks.md, section 12): here each node's labels are
    formatted once and reused for all of its lines, and a node whose values are the ones
    it had at the last scrape reuses that scrape's lines. The output is the same text
    format (``promtool check metrics`` passes).
    """

    def __init__(
        self,
        state: FleetState,
        sessions: Callable[[], SessionSnapshot] = SessionSnapshot,
        offload_jobs: Callable[[], Mapping[str, LiveJob]] = dict,
    ) -> None:
        self.state = state
        self.sessions = sessions
        self.offload_jobs = offload_jobs
        # Replaced whole at the end of each render, so two renders never share a dict.
        self._rendered: dict[str, _Rendered] = {}

    def render(self) -> str:
        """Every fleet, session and offload-progress series (called on a worker thread)."""
        out: list[str] = []
        self._family(
            out,
            "camfleet_build_info",
            "The coordinator's version (always 1)",
            [f'camfleet_build_info{{version="{_escape(__version__)}"}} 1.0\n'],
        )
        self._fleet(out)
        self._sessions(out)
        self._offload(out)
        return "".join(out)

    @staticmethod
    def _family(out: list[str], name: str, doc: str, lines: list[str] | None = None) -> None:
        out.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n")
        if lines:
            out.extend(lines)

    def _fleet(self, out: list[str]) -> None:
        now = time.time_ns()
        # The loop may add or remove nodes while this runs: read copies, and tolerate a
        # node that is gone by the time its row is rendered.
        ids = sorted(list(self.state.addresses))
        cam_ids = dict(self.state.cam_ids)
        online = {n for n in ids if self.state.online(n, now)}
        self._family(
            out, "camfleet_nodes", "Nodes that have joined", [f"camfleet_nodes {_v(len(ids))}\n"]
        )
        self._family(
            out,
            "camfleet_nodes_online",
            "Nodes with a recent successful contact",
            [f"camfleet_nodes_online {_v(len(online))}\n"],
        )
        before, after = self._rendered, {}
        rows: list[tuple[str, ...]] = []
        ages: list[str] = []
        for i, node_id in enumerate(ids):
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                # Offer the GIL: a thread waiting for it (the event loop's) gets it now
                # instead of at the next forced switch.
                time.sleep(0)
            entry = self.state.cache.get(node_id)
            status = entry.status if entry is not None else None
            cam_id, up = cam_ids.get(node_id, ""), node_id in online
            old = before.get(node_id)
            if old is not None and old.cam_id != cam_id:
                old = None  # other labels: nothing to reuse
            if old is not None and old.status is status and old.values[0] == up:
                node = old  # the very status the last scrape read
            else:
                node = self._row(node_id, cam_id, _values(up, status), status, old)
            after[node_id] = node
            rows.append(node.lines)
            if entry is not None and status is not None and entry.status_at_ns is not None:
                age = max(0.0, (now - entry.status_at_ns) / 1e9)
                ages.append(f"camfleet_node_status_age_seconds{node.labels} {_v(age)}\n")
        self._rendered = after
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(_STATIC)
        for name, column in zip(_STATIC, columns, strict=True):
            self._family(out, name, NODE_SERIES[name])
            out.extend(filter(None, column))
        age_name = "camfleet_node_status_age_seconds"
        self._family(out, age_name, NODE_SERIES[age_name], ages)

    @staticmethod
    def _row(
        node_id: str,
        cam_id: str,
        values: tuple[float | None, ...],
        status: NodeStatus | None,
        old: _Rendered | None,
    ) -> _Rendered:
        """A node's lines, reusing the last scrape's line of each value that is the same."""
        if old is None:
            lv = f'{{cam_id="{_escape(cam_id)}",node="{_escape(node_id)}"}}'
            before: tuple[object, ...] = (object(),) * len(_STATIC)  # equal to nothing
            kept: tuple[str, ...] = ("",) * len(_STATIC)
        else:
            lv, before, kept = old.labels, old.values, old.lines
        lines = tuple(
            line if v == was else "" if v is None else f"{name}{lv} {_v(v)}\n"
            for name, v, was, line in zip(_STATIC, values, before, kept, strict=True)
        )
        return _Rendered(cam_id, status, values, lv, lines)

    def _sessions(self, out: list[str]) -> None:
        snap = self.sessions()
        self._family(
            out,
            "camfleet_sessions",
            "Recording sessions by state",
            [
                f'camfleet_sessions{{state="{st.value}"}} {_v(snap.by_state.get(st.value, 0))}\n'
                for st in SessionState
            ],
        )
        if snap.last_skew_s is not None:
            self._family(
                out,
                "camfleet_session_last_skew_seconds",
                "Start skew of the last session with a measured skew (first frames, "
                "corrected by each node's clock offset)",
                [f"camfleet_session_last_skew_seconds {_v(snap.last_skew_s)}\n"],
            )
        if snap.last_skew_bound_s is not None:
            self._family(
                out,
                "camfleet_session_last_skew_bound_seconds",
                "How far the last session's measured skew may be off (the nodes' clock bounds)",
                [f"camfleet_session_last_skew_bound_seconds {_v(snap.last_skew_bound_s)}\n"],
            )

    def _offload(self, out: list[str]) -> None:
        jobs = [j for j in list(self.offload_jobs().values()) if j.state == "running"]
        total = sum(j.bytes_total for j in jobs)
        done = sum(f.progress.bytes_done for j in jobs for f in list(j.files))
        self._family(
            out,
            "camfleet_offload_running_bytes",
            "Bytes the running offload jobs pull in all",
            [f"camfleet_offload_running_bytes {_v(total)}\n"],
        )
        self._family(
            out,
            "camfleet_offload_running_done_bytes",
            "Bytes of the running offload jobs verified",
            [f"camfleet_offload_running_done_bytes {_v(done)}\n"],
        )


def render(registry: CollectorRegistry, fleet: FleetExposition) -> bytes:
    """The whole ``/metrics`` body: the registry's series, then the fleet's."""
    return generate_latest(registry) + fleet.render().encode()
