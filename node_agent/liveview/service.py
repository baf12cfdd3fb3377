"""``LiveView``: one producer thread that encodes the live frames while anyone watches,
hands each to every viewer, and steps aside when the watchdog says the recording needs it.

Each viewer has a queue of one: a slow viewer gets the newest frame when it is ready
for one and misses those in between, never holding the others (or the camera) back.
The producer runs only while there are viewers; encoding is done once per frame, not
once per viewer.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import av

from node_agent.errors import AgentError, NotFound
from node_agent.liveview.schemas import LiveViewStatus
from node_agent.liveview.settings import LiveViewSettings
from node_agent.liveview.source import LiveSource, LiveUnavailable
from node_agent.liveview.watchdog import DropCounter, Health, Watchdog

log = logging.getLogger(__name__)


class LiveOff(AgentError):
    """The view is off for now (the watchdog, or every viewer slot taken): a 503."""

    status_code = 503
    code = "liveview_off"


@dataclass(frozen=True)
class End:
    """The last item a viewer gets: why its stream ends."""

    reason: str


@dataclass
class Viewer:
    """One client's queue of one, on its event loop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[bytes | End] = field(default_factory=lambda: asyncio.Queue(maxsize=1))
    number: int = 0

    def offer(self, item: bytes | End) -> None:
        """On the viewer's loop: replace what it has not taken yet with ``item``."""
        if self.queue.full():
            stale = self.queue.get_nowait()
            if isinstance(stale, End):  # an end is never replaced
                self.queue.put_nowait(stale)
                return
        self.queue.put_nowait(item)


def encode(frame: av.VideoFrame, quality: int) -> bytes:
    """An RGB frame as a JPEG (Pillow)."""
    buf = io.BytesIO()
    frame.to_image().save(buf, format="JPEG", quality=quality)  # type: ignore[no-untyped-call]
    return buf.getvalue()


class LiveView:
    """Viewers, the producer thread, the watchdog and the counters."""

    def __init__(
        self,
        settings: LiveViewSettings,
        source: LiveSource,
        health: Callable[[], Health],
    ) -> None:
        self.settings = settings
        self.source = source
        self._health = health  # dropped_since_start: the recorder's running count
        self._drops = DropCounter()
        self._watchdog = Watchdog(settings)
        self._lock = threading.Lock()
        self._viewers: dict[int, Viewer] = {}
        self._numbers = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self.frames_served = 0
        self.frames_encoded = 0
        self._served_at: deque[float] = deque(maxlen=256)
        self.off_reason: str | None = None
        self._off_until = 0.0
        self._closing = False

    # -- viewers ----------------------------------------------------------------------------

    def admit(self) -> Viewer:
        """A new viewer, or why not: 404 disabled, 409 nothing to show, 503 off or full."""
        s = self.settings
        if not s.enabled:
            raise NotFound("the live view is off on this node (liveview.enabled is false)")
        if self._closing:
            raise LiveOff("the agent is shutting down")
        with self._lock:
            left = self._off_until - time.monotonic()
            if left > 0:
                raise LiveOff(
                    f"the live view turned itself off: {self.off_reason}; "
                    f"viewers are let in again in {left:.0f} s"
                )
            if len(self._viewers) >= s.max_clients:
                raise LiveOff(
                    f"the live view already has {len(self._viewers)} viewer(s), "
                    f"the most this node serves (liveview.max_clients); close one"
                )
            self.source.check()
            viewer = Viewer(asyncio.get_running_loop(), number=next(self._numbers))
            self._viewers[viewer.number] = viewer
            if self._thread is None:
                self._wake.clear()
                self._drops.restart()
                self._watchdog.restart()
                self._thread = threading.Thread(target=self._run, name="liveview", daemon=True)
                self._thread.start()
        return viewer

    def leave(self, viewer: Viewer) -> None:
        """The viewer went away (or its stream ended)."""
        with self._lock:
            self._viewers.pop(viewer.number, None)
            if not self._viewers:
                self._wake.set()

    def served(self) -> None:
        """One frame went out to a viewer."""
        with self._lock:
            self.frames_served += 1
            self._served_at.append(time.monotonic())

    # -- the producer -----------------------------------------------------------------------

    def _run(self) -> None:
        s = self.settings
        period = 1.0 / s.fps
        next_check = 0.0
        try:
            while True:
                with self._lock:
                    if not self._viewers:
                        self._thread = None
                        return
                t0 = time.monotonic()
                if t0 >= next_check:
                    next_check = t0 + s.check_interval_s
                    why = self._watchdog.observe(self._drops.since_start(self._health()), t0)
                    if why is not None:
                        self._turn_off(why)
                        return
                try:
                    frame = self.source.grab()
                except LiveUnavailable as err:
                    self._end_all(str(err))
                    return
                if frame is not None:
                    data = encode(frame, s.jpeg_quality)
                    self.frames_encoded += 1
                    self._publish(data)
                if self._wake.wait(max(0.0, period - (time.monotonic() - t0))):
                    self._wake.clear()
        except Exception as err:  # the view fails, never the agent
            log.exception("the live view failed")
            self._end_all(f"the live view failed: {type(err).__name__}: {err}")
        finally:
            self.source.close_idle()

    def _publish(self, item: bytes) -> None:
        with self._lock:
            viewers = list(self._viewers.values())
        self._offer(viewers, item)

    def _offer(self, viewers: list[Viewer], item: bytes | End) -> None:
        for v in viewers:
            try:
                v.loop.call_soon_threadsafe(v.offer, item)
            except RuntimeError:  # its loop is closed: it is gone
                self.leave(v)

    def _end_all(self, reason: str) -> None:
        log.info("live view ended: %s", reason)
        # Gone from the count before any of them reads its end: a viewer told the reason
        # never finds itself still counted in the status.
        with self._lock:
            viewers = list(self._viewers.values())
            self._viewers.clear()
            self._thread = None
        self._offer(viewers, End(reason))

    def _turn_off(self, reason: str) -> None:
        log.warning("live view turned off: %s", reason)
        with self._lock:
            self.off_reason = reason
            self._off_until = time.monotonic() + self.settings.cooldown_s
        self._end_all(f"the live view turned itself off: {reason}")

    def close(self) -> None:
        """The server is stopping: every stream ends now (an open one would hold the
        shutdown, and with it the recording's finish, for the server's grace period)."""
        self._closing = True
        self._end_all("the agent is shutting down")
        self._wake.set()

    # -- state ------------------------------------------------------------------------------

    def status(self) -> LiveViewStatus:
        """The live view's part of the node status."""
        s = self.settings
        now = time.monotonic()
        with self._lock:
            clients = len(self._viewers)
            recent = [t for t in self._served_at if now - t <= 5.0]
            cooling = max(0.0, self._off_until - now)
            served = self.frames_served
        per_viewer = len(recent) / 5.0 / max(1, clients)
        if not s.enabled:
            state = "disabled"
        elif cooling > 0:
            state = "cooling"
        elif clients:
            state = "streaming"
        else:
            state = "off"
        return LiveViewStatus(
            state=state,
            clients=clients,
            max_clients=s.max_clients,
            width=s.width,
            height=s.height,
            fps=s.fps,
            fps_served=round(per_viewer, 2) if clients else 0.0,
            frames_served=served,
            source=self.source.kind,
            off_reason=self.off_reason,
            cooldown_s=round(cooling, 1),
        )
