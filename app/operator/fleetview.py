"""What `camfleet fleet status` shows of each node: pure functions of ``GET /api/v1/nodes``.

Tolerant of the answer's shape (a newer coordinator may add fields, an offline node has no
status): every cell is a short string, "-" when the value is not known.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.operator.progress import human_bytes

# Cards and rows go left to right as the cameras stand; others after, by id.
POSITION_ORDER = {"left": 0, "centre": 1, "center": 1, "right": 2}
CAM_ORDER = {"CAM_L": 0, "CAM_C": 1, "CAM_R": 2}
DASH = "-"
# Thresholds of the disagreement warnings (the dashboard's too).
LOW_MINUTES = 30.0
HOT_C = 75.0


@dataclass
class NodeRow:
    """One row of the fleet table."""

    node_id: str
    cam_id: str
    state: str
    profile: str
    bitrate: str
    encode: str
    disk: str
    unoffloaded: str
    power: str
    temp: str
    clock: str
    version: str
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings


def order_key(node: dict[str, Any]) -> tuple[int, str]:
    """L, C, R by position (or cam id), then the others by node id."""
    rank = POSITION_ORDER.get(str(node.get("position", "")).lower())
    if rank is None:
        rank = CAM_ORDER.get(str(node.get("cam_id", "")), 3)
    return rank, str(node.get("node_id", ""))


def ordered(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(nodes, key=order_key)


def fmt_rate(bps: float | None) -> str:
    if bps is None:
        return DASH
    if bps >= 1e6:
        return f"{bps / 1e6:.1f} Mb/s"
    return f"{bps / 1e3:.0f} kb/s"


def fmt_ns(ns: float | None) -> str:
    """A clock offset or bound: µs under a millisecond, else ms."""
    if ns is None:
        return DASH
    if abs(ns) < 1e6:
        return f"{ns / 1e3:.0f} µs"
    return f"{ns / 1e6:.2f} ms"


def state_of(node: dict[str, Any]) -> str:
    if not node.get("approved", True):
        return "pending"
    if not node.get("online"):
        return "offline"
    recorder = (node.get("status") or {}).get("recorder") or {}
    return str(recorder.get("state") or "unknown")


def cpu_temp_c(status: dict[str, Any]) -> float | None:
    """The CPU temperature if this coordinator's node status carries one."""
    for key in ("cpu_temp_c", "temperature_c"):
        value = status.get(key)
        if isinstance(value, int | float):
            return float(value)
    thermal = status.get("thermal")
    if isinstance(thermal, dict) and isinstance(thermal.get("temp_c"), int | float):
        return float(thermal["temp_c"])
    return None


def power_cell(status: dict[str, Any]) -> str:
    power = status.get("power")
    if not isinstance(power, dict):
        return DASH
    if power.get("provider") == "none":
        return "mains"
    reading = power.get("reading") or {}
    parts = []
    if reading.get("percent") is not None:
        parts.append(f"{reading['percent']:.0f}%")
    if reading.get("on_ac"):
        parts.append("AC")
    level = str(power.get("level") or "")
    if level and level not in ("ok", "ac"):
        parts.append(level)
    return " ".join(parts) or level or DASH


def clock_cell(clock: dict[str, Any]) -> str:
    if not clock:
        return DASH
    if not clock.get("synchronized"):
        text = "unsync"
    else:
        text = fmt_ns(clock.get("offset_ns"))
        if clock.get("error_bound_ns") is not None:
            text += f" ± {fmt_ns(clock['error_bound_ns'])}"
    return text


def node_warnings(node: dict[str, Any]) -> list[str]:
    """What is wrong with this node on its own (disagreements are added by fleet_rows)."""
    out: list[str] = []
    status = node.get("status") or {}
    if not node.get("approved", True):
        out.append("waits for approval (camfleet approve)")
    elif not node.get("online"):
        out.append("offline" + (f": {node['last_error']}" if node.get("last_error") else ""))
    recorder = status.get("recorder") or {}
    disk = status.get("disk") or {}
    if disk.get("alarm"):
        out.append(str(disk["alarm"]))
    elif disk.get("level") not in (None, "ok"):
        out.append(f"disk {disk['level']}")
    elif disk.get("minutes_left") is not None and disk["minutes_left"] < LOW_MINUTES:
        out.append(f"disk: {disk['minutes_left']:.0f} min left")
    power = status.get("power") or {}
    if power.get("level") in ("warn", "low", "disconnect", "shutdown"):
        out.append(f"battery {power['level']}")
    temp = cpu_temp_c(status)
    if temp is not None and temp >= HOT_C:
        out.append(f"hot: {temp:.0f} °C")
    if recorder.get("dropped_frames"):
        out.append(f"{recorder['dropped_frames']} frames dropped")
    for note in recorder.get("profile_notes") or []:
        out.append(str(note))
    if recorder.get("last_error"):
        out.append(f"recorder: {recorder['last_error']}")
    out.extend(str(f) for f in node.get("clock_flags") or [])
    return out


def majority(values: list[str]) -> str | None:
    """The most common value when it is shared by more than one node."""
    if len(values) < 2:
        return None
    value, count = Counter(values).most_common(1)[0]
    return value if count > 1 else None


def row(node: dict[str, Any]) -> NodeRow:
    status = node.get("status") or {}
    recorder = status.get("recorder") or {}
    disk = status.get("disk") or {}
    clock = status.get("clock") or {}
    temp = cpu_temp_c(status)
    fps = recorder.get("fps")
    profile = str(recorder.get("profile") or DASH)
    if profile == DASH and fps:
        profile = f"{recorder.get('width')}x{recorder.get('height')} {fps:g} fps"
    clock_text = clock_cell(clock)
    if node.get("clock_flags"):
        clock_text += " !"
    return NodeRow(
        node_id=str(node.get("node_id", DASH)),
        cam_id=str(node.get("cam_id", DASH)),
        state=state_of(node),
        profile=profile,
        bitrate=fmt_rate(recorder.get("measured_bitrate_bps")),
        encode=(
            f"{recorder['encode_fps']:.1f} / {recorder.get('dropped_frames', 0)}"
            if recorder.get("encode_fps") is not None
            else DASH
        ),
        disk=(
            f"{human_bytes(disk['free_bytes'])}, {disk.get('minutes_left', 0):.0f} min"
            if disk.get("free_bytes") is not None
            else DASH
        ),
        unoffloaded=(
            f"{disk.get('unoffloaded_count', 0)} ({human_bytes(disk.get('unoffloaded_bytes', 0))})"
            if disk
            else DASH
        ),
        power=power_cell(status),
        temp=f"{temp:.0f} °C" if temp is not None else DASH,
        clock=clock_text,
        version=str(node.get("version") or status.get("version") or DASH),
        warnings=node_warnings(node),
    )


def fleet_rows(body: dict[str, Any]) -> list[NodeRow]:
    """One row per node, ordered L, C, R; a node that disagrees with the others is warned."""
    nodes = ordered(list(body.get("nodes") or []))
    rows = [row(n) for n in nodes]
    live = [r for r in rows if r.state not in ("offline", "pending")]
    usual = {
        "state": majority([r.state for r in live]),
        "profile": majority([r.profile for r in live if r.profile != DASH]),
        "version": majority([r.version for r in live if r.version != DASH]),
    }
    for r in live:
        if usual["state"] and r.state != usual["state"]:
            r.warnings.append(f"{r.state} while the others are {usual['state']}")
        if usual["profile"] and r.profile not in (DASH, usual["profile"]):
            r.warnings.append(f"profile differs (others {usual['profile']})")
        if usual["version"] and r.version not in (DASH, usual["version"]):
            r.warnings.append(f"version differs (others {usual['version']})")
    return rows
