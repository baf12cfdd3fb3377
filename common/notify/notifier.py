"""The notifier: level filter, no repeat inside a window, fire-and-forget on one thread.

``notify()`` is what the capture loop, a request handler or a session start calls. It
never does I/O: it filters, checks the repeat window and puts the alert on a bounded
queue (a full queue drops the alert and counts it), so a channel that fails or hangs
costs the caller a few microseconds. One worker thread, started with the first alert,
sends each alert to every channel with a time-out per send; a failure is logged (with
the channel's secrets scrubbed) and counted, never raised.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from common.notify.channels import Channel, DiscordChannel, TelegramChannel, WebhookChannel
from common.notify.levels import Level
from common.notify.settings import NotificationSettings

log = logging.getLogger(__name__)

# Keys remembered for the repeat window before old ones are forgotten.
MAX_KEYS = 1024
# Problems remembered for the daily summary's list.
MAX_HISTORY = 200


@dataclass(frozen=True)
class Alert:
    """One notification. ``key`` names the event for the repeat window
    (``disk_critical:cam-c``); ``plain`` sends the message as it is (the daily summary
    carries its own heading)."""

    message: str
    level: Level
    device_id: str
    key: str
    plain: bool = False

    @property
    def text(self) -> str:
        """What a person reads in Telegram or Discord."""
        if self.plain:
            return self.message
        return f"{self.level.value} {self.device_id}: {self.message}"


@dataclass
class NotifierStats:
    """What the notifier did since it was made."""

    queued: int = 0
    sent: int = 0  # one per channel that took an alert
    failed: int = 0  # one per channel send that failed or timed out
    dropped: int = 0  # the queue was full
    suppressed: int = 0  # a repeat inside the window
    filtered: int = 0  # under min_level
    last_error: str | None = None


@dataclass
class Notifier:
    """Sends alerts to ``channels`` (see the module docstring)."""

    channels: Sequence[Channel]
    device_id: str
    min_level: Level = Level.warning
    repeat_window_s: float = 3600.0
    timeout_s: float = 5.0
    queue_size: int = 100
    clock: Callable[[], float] = time.monotonic
    transport: httpx.BaseTransport | None = None
    wall: Callable[[], float] = time.time
    stats: NotifierStats = field(default_factory=NotifierStats)

    def __post_init__(self) -> None:
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=self.queue_size)
        self._last: dict[str, float] = {}
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition(self._mutex)
        self._busy = 0  # alerts queued or being sent
        self._closed = False
        # (wall time, level, message) of each new problem (WARNING and up), sent or not:
        # the daily summary lists the day's.
        self.history: deque[tuple[float, Level, str]] = deque(maxlen=MAX_HISTORY)

    @property
    def enabled(self) -> bool:
        """Whether any channel is configured."""
        return bool(self.channels)

    def notify(
        self, message: str, level: Level | str = Level.error, key: str | None = None
    ) -> bool:
        """Queue ``message`` for every channel; True when it was queued. Never blocks,
        never raises."""
        try:
            return self._notify(message, Level.parse(level), key, plain=False)
        except Exception:  # a caller's capture loop must never die of a notification
            log.exception("notification not queued")
            return False

    def notify_plain(self, message: str, level: Level | str, key: str) -> bool:
        """Like ``notify``, the message sent as it is (no level and device prefix) and
        whatever ``min_level`` says: the daily summary, which its own setting turns on."""
        try:
            return self._notify(message, Level.parse(level), key, plain=True)
        except Exception:
            log.exception("notification not queued")
            return False

    def _notify(self, message: str, level: Level, key: str | None, plain: bool) -> bool:
        key = key or message
        with self._mutex:
            now = self.clock()
            last = self._last.get(key)
            if last is not None and now - last < self.repeat_window_s:
                self.stats.suppressed += 1
                return False
            if level.rank >= Level.warning.rank and not plain:
                self.history.append((self.wall(), level, message))
            # The event counts as told from now, sent or filtered: the window holds it.
            self._last[key] = now
            if len(self._last) > MAX_KEYS:
                self._forget(now)
            if not self.channels or self._closed:
                return False
            if level.rank < self.min_level.rank and not plain:
                self.stats.filtered += 1
                return False
            alert = Alert(message, level, self.device_id, key, plain)
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                self.stats.dropped += 1
                if last is None:  # not told: the next occurrence may go
                    self._last.pop(key, None)
                else:
                    self._last[key] = last
                log.warning("notification dropped (queue of %d full): %s", self.queue_size, key)
                return False
            self.stats.queued += 1
            self._busy += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="notifier", daemon=True)
                self._thread.start()
        return True

    def problems_since(self, wall_s: float) -> list[str]:
        """The problems (WARNING and up) noted since ``wall_s``, oldest first."""
        with self._mutex:
            return [f"{level.value}: {msg}" for at, level, msg in self.history if at >= wall_s]

    def _forget(self, now: float) -> None:
        """Drop keys whose window has passed (and the oldest, if that is not enough)."""
        for k in [k for k, at in self._last.items() if now - at >= self.repeat_window_s]:
            del self._last[k]
        while len(self._last) > MAX_KEYS:
            del self._last[min(self._last, key=self._last.__getitem__)]

    # -- the worker -----------------------------------------------------------------------

    def _work(self) -> None:
        timeout = httpx.Timeout(self.timeout_s)
        with httpx.Client(timeout=timeout, transport=self.transport) as client:
            while True:
                alert = self._queue.get()
                if alert is None:
                    return
                try:
                    for channel in self.channels:
                        self._send(client, channel, alert)
                finally:
                    with self._mutex:
                        self._busy -= 1
                        self._idle.notify_all()

    def _send(self, client: httpx.Client, channel: Channel, alert: Alert) -> None:
        try:
            channel.send(client, alert)
        except Exception as err:
            reason = _describe(err)
            for secret in channel.secrets():
                if secret:
                    reason = reason.replace(secret, "**********")
            with self._mutex:
                self.stats.failed += 1
                self.stats.last_error = f"{channel.name}: {reason}"
            log.warning("%s notification %s failed: %s", channel.name, alert.key, reason)
        else:
            with self._mutex:
                self.stats.sent += 1

    # -- for shutdown and tests -------------------------------------------------------------

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued alert was sent (or failed); False on time-out."""
        deadline = time.monotonic() + timeout_s
        with self._mutex:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop taking alerts; give the queued ones ``timeout_s`` to go, then leave (the
        worker is a daemon thread: a hanging channel never holds a shutdown)."""
        with self._mutex:
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self.flush(timeout_s)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            return
        thread.join(0.1)


def _describe(err: Exception) -> str:
    if isinstance(err, httpx.HTTPStatusError):
        return f"HTTP {err.response.status_code} {err.response.reason_phrase}"
    if isinstance(err, httpx.TimeoutException):
        return f"no answer in time ({type(err).__name__})"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def channels_of(settings: NotificationSettings) -> list[Channel]:
    """The channels whose keys are set."""
    out: list[Channel] = []
    if settings.telegram_bot_token is not None and settings.telegram_chat_id is not None:
        token = settings.telegram_bot_token.get_secret_value()
        out.append(TelegramChannel(token, settings.telegram_chat_id, settings.telegram_api_base))
    if settings.discord_webhook_url is not None:
        out.append(DiscordChannel(settings.discord_webhook_url.get_secret_value()))
    if settings.webhook_url is not None:
        out.append(WebhookChannel(settings.webhook_url.get_secret_value()))
    return out


def build_notifier(
    settings: NotificationSettings,
    default_device_id: str,
    *,
    clock: Callable[[], float] = time.monotonic,
    transport: httpx.BaseTransport | None = None,
) -> Notifier:
    """A notifier for ``settings`` (it sends nothing when no channel is set)."""
    return Notifier(
        channels_of(settings),
        settings.device_id or default_device_id,
        min_level=settings.min_level,
        repeat_window_s=settings.repeat_window_s,
        timeout_s=settings.timeout_s,
        queue_size=settings.queue_size,
        clock=clock,
        transport=transport,
    )
