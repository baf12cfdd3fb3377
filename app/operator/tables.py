"""The operator commands' tables (rich): they wrap to the terminal's width, never overflow."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from app.operator.fleetview import DASH, NodeRow, fmt_ns
from app.operator.progress import human_bytes

STATE_STYLE = {
    "recording": "bold green",
    "idle": "cyan",
    "offline": "bold red",
    "pending": "yellow",
    "error": "bold red",
}


def table(title: str | None = None) -> Table:
    # fold: a long cell wraps inside its column instead of widening the table
    # at least as wide as the title, so an id in it is not folded
    return Table(
        title=title,
        show_lines=False,
        expand=False,
        pad_edge=False,
        title_justify="left",
        min_width=len(title) if title else None,
    )


# Under this many columns the fleet table stacks two fields per cell and lists the
# warnings under it: twelve columns at 80 would wrap every word.
WIDE_COLUMNS = 130


def styled_state(state: str) -> str:
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/]" if style else state


def fleet_table(rows: list[NodeRow], online: int, total: int, width: int) -> RenderableType:
    """The fleet, one row per node; narrow terminals get a stacked table and a warning list."""
    title = f"{online}/{total} online"
    if width >= WIDE_COLUMNS:
        t = table(title)
        for name in ("node", "state", "profile", "bitrate", "enc fps/drop", "disk free"):
            t.add_column(name, overflow="fold")
        for name in ("not offl.", "power", "temp", "clock ± bound", "version", "warnings"):
            t.add_column(name, overflow="fold")
        for r in rows:
            t.add_row(
                f"{r.cam_id}\n{r.node_id}",
                styled_state(r.state),
                r.profile,
                r.bitrate,
                r.encode,
                r.disk,
                r.unoffloaded,
                r.power,
                r.temp,
                r.clock,
                r.version,
                "[yellow]" + "\n".join(escape(w) for w in r.warnings) + "[/]" if r.warnings else "",
            )
        return t
    t = table(title)
    for name in (
        "node",
        "state\nversion",
        "profile\nrate, fps/drop",
        "disk free\nnot offl.",
        "power\ntemp",
        "clock",
    ):
        t.add_column(name, overflow="fold")
    for r in rows:
        t.add_row(
            f"{r.cam_id}\n{r.node_id}",
            f"{styled_state(r.state)}\n{r.version}",
            f"{r.profile}\n{r.bitrate}, {r.encode}",
            f"{r.disk}\n{r.unoffloaded}",
            f"{r.power}\n{r.temp}",
            r.clock,
        )
    warnings = [f"[bold]{r.cam_id}[/] [yellow]{escape(w)}[/]" for r in rows for w in r.warnings]
    if not warnings:
        return t
    return Group(t, Text.from_markup("warnings:\n  " + "\n  ".join(warnings)))


def when(iso: str | None) -> str:
    """An ISO time from the API as local date and time."""
    if not iso:
        return DASH
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def ms(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f} ms"


def started(session: dict[str, Any]) -> str:
    nodes = session.get("nodes") or []
    ok = sum(1 for n in nodes if (n.get("start") or {}).get("ok"))
    return f"{ok}/{len(nodes)}"


def sessions_table(sessions: list[dict[str, Any]]) -> Table:
    t = table(f"{len(sessions)} sessions")
    # the id whole on one line: it is what a script or a person copies
    t.add_column("session", no_wrap=True, min_width=20)
    for name in ("name", "state", "start", "started", "skew", "bound"):
        t.add_column(name, overflow="fold")
    for s in sessions:
        t.add_row(
            str(s.get("session_id")),
            str(s.get("name") or ""),
            str(s.get("state")),
            when(s.get("start_at")),
            started(s),
            ms(s.get("skew_ms")),
            ms(s.get("skew_bound_ms")),
        )
    return t


def call_cell(call: dict[str, Any] | None) -> str:
    if not call:
        return DASH
    if call.get("ok"):
        return "ok"
    return f"[red]failed[/] {call.get('error') or call.get('status_code') or ''}".strip()


def session_detail(console: Console, s: dict[str, Any], recordings: list[dict[str, Any]]) -> None:
    """One session: its times, skew and bound, a row per node, a row per manifest."""
    head = table(f"session {s.get('session_id')}")
    head.add_column("", style="bold")
    head.add_column("", overflow="fold")
    head.show_header = False
    for key, value in (
        ("name", s.get("name") or ""),
        ("state", s.get("state")),
        ("mode", s.get("mode")),
        ("start", when(s.get("start_at"))),
        ("stopped", when(s.get("stopped_at"))),
        ("skew", ms(s.get("skew_ms"))),
        ("skew bound", ms(s.get("skew_bound_ms"))),
        ("frame period", ms(s.get("frame_period_ms"))),
        ("end reason", s.get("end_reason") or ""),
    ):
        head.add_row(key, str(value))
    for warning in s.get("skew_warnings") or []:
        head.add_row("warning", f"[yellow]{warning}[/]")
    console.print(head)

    nodes = table("nodes")
    for name in ("node", "start", "stop", "file", "frames/drop", "offset ± bound", "late"):
        nodes.add_column(name, overflow="fold")
    for n in s.get("nodes") or []:
        bound = n.get("clock_error_bound_ns")
        frames = n.get("frame_count")
        nodes.add_row(
            f"{n.get('cam_id') or ''}\n{n.get('node_id')}",
            call_cell(n.get("start")),
            call_cell(n.get("stop")),
            str(n.get("file_name") or DASH),
            DASH if frames is None else f"{frames} / {n.get('dropped_frames') or 0}",
            fmt_ns(n.get("clock_offset_ns")) + ("" if bound is None else f" ± {fmt_ns(bound)}"),
            fmt_ns(n.get("start_late_ns")),
        )
    console.print(nodes)
    console.print(recordings_view(recordings, console.width, "manifests"))


def recordings_view(
    recordings: list[dict[str, Any]], width: int, title: str | None = None
) -> RenderableType:
    """A row per recording; on a narrow terminal each SHA-256 on a line of its own below."""
    wide = width >= WIDE_COLUMNS
    t = table(title or f"{len(recordings)} recordings")
    names = ["file", "cam", "session", "size", "frames/drop", "archive"]
    if wide:
        names.insert(5, "sha256")
    for name in names:
        t.add_column(name, overflow="fold", no_wrap=name == "sha256")
    sums = []
    for r in recordings:
        manifest = r.get("manifest") or {}
        cam = str(manifest.get("cam_id") or r.get("node_id"))
        state = str(r.get("archive_state") or "none")
        if r.get("offloaded") and state == "none":
            state = "offloaded"
        cells = [
            str(r.get("file_name")),
            cam,
            str(r.get("session_id")),
            human_bytes(int(r.get("size_bytes") or 0)),
            f"{manifest.get('frame_count', DASH)} / {manifest.get('dropped_frames', 0)}",
            state,
        ]
        if wide:
            cells.insert(5, str(r.get("sha256")))
        t.add_row(*cells)
        sums.append(f"{cam:<6} {r.get('sha256')}")
    if wide or not sums:
        return t
    return Group(t, Text("SHA-256:\n  " + "\n  ".join(sums)))
