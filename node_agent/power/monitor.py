"""The power monitor: reads the battery every ``power.poll_interval_s``, asks the pure policy
(``policy.decide``) what level that is, and acts when the level changes.

- entering ``disconnect`` (or ``shutdown`` straight away): the disconnect callbacks
  (the agent stops the recording cleanly and the timelapse; the dashcam powers the
  camera down);
- leaving ``disconnect`` for a less severe level (past the hysteresis): the reconnect
  callbacks;
- entering ``shutdown``: the shutdown callbacks in registration order (every file and
  manifest finished, nothing left holding the disk), then ``sync``, unmount the
  recordings disk, and ``power.shutdown_command``.

A failed or stale reading is data (level ``unknown``): shown, never acted on, and the
hysteresis is judged against the last good reading. A callback that raises or hangs is
logged and noted in the actions, and the sequence goes on: a shutdown must still happen.
Under ``runner.dry_run`` no callback is invoked and no program is run; the actions say
what would have been done.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shlex
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from node_agent.commands import CommandRunner, Completed
from node_agent.power.host import Host
from node_agent.power.policy import START, Decision, Thresholds, decide
from node_agent.power.provider import PowerProvider, failed
from node_agent.power.schemas import PowerLevel, PowerReading, PowerStatus
from node_agent.power.settings import PowerSettings

log = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None]]
MAX_ACTIONS = 20


def _name(cb: Callback) -> str:
    return getattr(cb, "__name__", None) or repr(cb)


class PowerMonitor:
    """The loop that acts on the policy's decisions (see the module docstring)."""

    callback_timeout_s: float = 60.0  # one callback may take this long before it is abandoned

    def __init__(
        self,
        settings: PowerSettings,
        thresholds: Thresholds,
        provider: PowerProvider,
        runner: CommandRunner,
        recordings_path: Path | None,
        *,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.thresholds = thresholds
        self.provider = provider
        self.runner = runner
        self.recordings_path = recordings_path
        self.host = Host(runner, settings.shutdown_command)
        self.camera_powered: bool | None = None  # set by whoever switches the camera
        self.problems: list[str] = []  # preflight's findings, shown in the status reason
        self._now_ns = now_ns
        self._reading: PowerReading | None = None
        # The last decision on a usable reading (hysteresis and confirmation count from
        # it) and the latest decision (may be 'unknown').
        self._known = decide(None, now_ns(), START, thresholds, provider.name)
        self._latest = self._known
        self._disconnected = False
        self._shutting_down = False
        self.shutdown_reason: str | None = None  # set when asked through the API
        self._callbacks: dict[str, list[Callback]] = {
            "disconnect": [],
            "reconnect": [],
            "shutdown": [],
        }
        self._actions: deque[str] = deque(maxlen=MAX_ACTIONS)
        # Told each change of level (old, new, why): the notifications.
        self.on_level: Callable[[PowerLevel, PowerLevel, str], None] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # -- registration -----------------------------------------------------------------------

    def on_disconnect(self, cb: Callback) -> None:
        """Run ``cb`` on entering ``disconnect`` (or ``shutdown``, when not yet disconnected)."""
        self._callbacks["disconnect"].append(cb)

    def on_reconnect(self, cb: Callback) -> None:
        """Run ``cb`` on leaving ``disconnect`` for a less severe level."""
        self._callbacks["reconnect"].append(cb)

    def on_shutdown(self, cb: Callback) -> None:
        """Run ``cb`` on entering ``shutdown``, in registration order, before the machine
        is synced, unmounted and powered off."""
        self._callbacks["shutdown"].append(cb)

    # -- what others read -------------------------------------------------------------------

    @property
    def decision(self) -> Decision:
        """The latest decision; ``unknown`` when the last reading has gone stale."""
        d, r = self._latest, self._reading
        if r is not None and r.ok and d.level not in (PowerLevel.shutdown, PowerLevel.mains):
            age_s = (self._now_ns() - r.read_at_ns) / 1e9
            if age_s > self.thresholds.stale_after_s:
                return Decision(
                    PowerLevel.unknown,
                    f"the last battery reading is {age_s:.0f} s old (over "
                    f"{self.thresholds.stale_after_s:g} s); nothing is done on old news",
                    d.under_shutdown,
                )
        return d

    @property
    def last_known(self) -> Decision:
        """The decision on the last usable reading (what a failed reading does not erase)."""
        return self._known

    @property
    def reading(self) -> PowerReading | None:
        """The provider's last answer (a failed one too)."""
        return self._reading

    @property
    def shutting_down(self) -> bool:
        """Whether the shutdown sequence has begun (it is never called off)."""
        return self._shutting_down

    def status(self) -> PowerStatus:
        """The node's power, for the status page and metrics."""
        d, r = self.decision, self._reading
        reason = d.reason
        if self.problems:
            reason += "; preflight: " + "; ".join(self.problems)
        if self.runner.dry_run:
            reason = f"dry run (nothing is done): {reason}"
        return PowerStatus(
            provider=self.provider.name,
            level=d.level,
            reason=reason,
            reading=r,
            age_s=None if r is None else round((self._now_ns() - r.read_at_ns) / 1e9, 3),
            camera_powered=self.camera_powered,
            shutting_down=self._shutting_down,
            actions=list(self._actions),
        )

    # -- the loop ---------------------------------------------------------------------------

    async def poll_once(self) -> Decision:
        """Read the provider (in a thread), decide, and act on a change of level."""
        async with self._lock:
            if self._shutting_down:
                return self.decision
            try:
                reading = await asyncio.to_thread(self.provider.read)
            except Exception as err:  # the protocol says read never raises; a bug is data too
                log.exception("battery provider %s raised", self.provider.name)
                reading = failed(self.provider.name, f"{type(err).__name__}: {err}")
            self._reading = reading
            shown = self._latest.level
            new = decide(reading, self._now_ns(), self._known, self.thresholds, self.provider.name)
            self._latest = new
            if new.level == PowerLevel.unknown:
                if shown != PowerLevel.unknown:
                    log.warning("battery reading unusable: %s", new.reason)
                    self._note(f"{shown} -> unknown: {new.reason}")
                return new
            before, self._known = self._known.level, new
            if new.level != shown:
                level_log = (
                    log.warning if new.level not in (PowerLevel.ok, PowerLevel.ac) else log.info
                )
                level_log("power %s -> %s: %s", shown, new.level, new.reason)
                self._note(f"{shown} -> {new.level}: {new.reason}")
                if self.on_level is not None:
                    self.on_level(shown, new.level, new.reason)
            if new.level != before:
                await self._act(new.level)
            return new

    def start(self) -> None:
        """Start polling on the running event loop (the first reading is taken at once)."""
        self._task = asyncio.create_task(self._run(), name="power-monitor")

    async def stop(self) -> None:
        """Stop polling (a provider call in progress finishes in its thread)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._shutting_down:
            try:
                await self.poll_once()
            except Exception:
                log.exception("power monitor round failed")
            await asyncio.sleep(self.settings.poll_interval_s)

    # -- asked through the API --------------------------------------------------------------

    def planned_steps(self) -> list[str]:
        """The steps of the shutdown sequence, in the order they run."""
        kinds = ["shutdown"] if self._disconnected else ["disconnect", "shutdown"]
        steps = [f"{kind} step {_name(cb)}" for kind in kinds for cb in self._callbacks[kind]]
        steps.append("sync")
        if self.settings.unmount_recordings and self.recordings_path is not None:
            steps.append(f"unmount the disk holding {self.recordings_path} (if it has its own)")
        steps.append(shlex.join(self.host.shutdown_command))
        return [f"would run {s}" if self.runner.dry_run else s for s in steps]

    async def shut_down_now(self, reason: str) -> bool:
        """Run the shutdown sequence now (the same as the battery's); False when it has
        already begun."""
        async with self._lock:
            if self._shutting_down:
                return False
            self.shutdown_reason = reason
            log.warning("shutdown asked: %s", reason)
            self._note(f"shutdown asked: {reason}")
            await self._shut_down()
        return True

    # -- acting -----------------------------------------------------------------------------

    async def _act(self, level: PowerLevel) -> None:
        if level == PowerLevel.shutdown:
            await self._shut_down()
        elif level == PowerLevel.disconnect:
            if not self._disconnected:
                await self._run_callbacks("disconnect")
                self._disconnected = True
        elif self._disconnected:
            await self._run_callbacks("reconnect")
            self._disconnected = False

    async def _shut_down(self) -> None:
        self._shutting_down = True
        if not self._disconnected:
            await self._run_callbacks("disconnect")
            self._disconnected = True
        await self._run_callbacks("shutdown")
        await asyncio.to_thread(self._finish)

    async def _run_callbacks(self, kind: str) -> None:
        for cb in self._callbacks[kind]:
            name = _name(cb)
            if self.runner.dry_run:
                log.info("would run %s step %s", kind, name)
                self._note(f"would run {kind} step {name}")
                continue
            try:
                async with asyncio.timeout(self.callback_timeout_s):
                    await cb()
            except Exception as err:
                if isinstance(err, TimeoutError):
                    err = TimeoutError(f"still running after {self.callback_timeout_s:g} s")
                log.error("%s step %s failed: %s", kind, name, err, exc_info=err)
                self._note(f"{kind} step {name} failed: {type(err).__name__}: {err}")
            else:
                self._note(f"{kind} step {name} done")

    def _finish(self) -> None:
        """In a thread: sync, unmount the recordings disk, power off (each noted)."""
        self._note_run(self.host.sync())
        if self.settings.unmount_recordings and self.recordings_path is not None:
            mount, why = self.host.recordings_mount(self.recordings_path)
            if mount is None:
                self._note(f"recordings disk not unmounted: {self.recordings_path}: {why}")
            else:
                done = self.host.unmount(mount.mount_point)
                self._note_run(done)
                if not done.ok:
                    log.error("%s still mounted (busy?); powering off anyway", mount.mount_point)
        done = self.host.poweroff()
        self._note_run(done)
        if not done.ok:
            log.error("the machine did not shut down (%s): shut it down by hand", done.describe())

    def _note_run(self, done: Completed) -> None:
        self._note(f"would run {shlex.join(done.argv)}" if done.dry_run else done.describe())

    def _note(self, text: str) -> None:
        at = dt.datetime.fromtimestamp(self._now_ns() / 1e9, dt.UTC)
        self._actions.append(f"{at.isoformat(timespec='seconds')} {text}")
