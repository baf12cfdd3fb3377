"""The watchdog's decision: whether the live view must give way to the recording.

Pure: fed one ``Health`` reading and the settings, it names the reason to turn the view
off, or None to keep it on. Only a recording is protected: an idle node's view stays on
whatever the CPU does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from node_agent.liveview.settings import LiveViewSettings


@dataclass(frozen=True)
class Health:
    """One reading of what the recording and the node are doing."""

    cpu_percent: float | None  # None: no reading (the first, or no /proc/stat)
    recording: bool = False
    encode_fps: float = 0.0  # 0: not measured yet
    fps: float = 0.0  # the recording's configured rate
    dropped_since_start: int = 0  # frames the recording lost while the view was on
    session_id: str | None = None  # the recording's session (a new one starts a new count)


class DropCounter:
    """Turns the recorder's running count of dropped frames into drops since the view
    began watching this session."""

    def __init__(self) -> None:
        self._base: tuple[str | None, int] | None = None

    def restart(self) -> None:
        """A new stream: count from the next reading."""
        self._base = None

    def since_start(self, h: Health) -> Health:
        """``h`` with ``dropped_since_start`` counted from this stream's first reading."""
        if self._base is None or self._base[0] != h.session_id:
            self._base = (h.session_id, h.dropped_since_start)
        return replace(h, dropped_since_start=max(0, h.dropped_since_start - self._base[1]))


def verdict(h: Health, s: LiveViewSettings) -> str | None:
    """Why the view must turn off now, or None."""
    if not h.recording:  # nothing to give way to
        return None
    if h.cpu_percent is not None and h.cpu_percent > s.max_cpu_percent:
        return (
            f"CPU at {h.cpu_percent:.0f} % (limit {s.max_cpu_percent:g} %): the recording needs it"
        )
    floor = s.min_encode_fps_ratio * h.fps
    if h.encode_fps > 0 and h.encode_fps < floor:
        return (
            f"the recording encodes {h.encode_fps:.1f} fps of its {h.fps:g} "
            f"(below {s.min_encode_fps_ratio:.0%}): the recording needs the CPU"
        )
    if h.dropped_since_start > s.max_dropped_frames:
        return (
            f"the recording dropped {h.dropped_since_start} frames while the view was on "
            f"(limit {s.max_dropped_frames})"
        )
    return None


class Watchdog:
    """``verdict`` held for ``sustain_s`` without a break: one slow reading is not enough."""

    def __init__(self, settings: LiveViewSettings) -> None:
        self.settings = settings
        self._since: float | None = None

    def restart(self) -> None:
        """A new stream: nothing seen yet."""
        self._since = None

    def observe(self, h: Health, now: float) -> str | None:
        """The reason to turn off now (``now``: monotonic seconds), or None."""
        why = verdict(h, self.settings)
        if why is None:
            self._since = None
            return None
        if self._since is None:
            self._since = now
        return why if now - self._since >= self.settings.sustain_s else None
