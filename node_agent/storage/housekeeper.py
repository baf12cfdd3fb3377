"""The housekeeper: the recordings disk's state, confirm, retention and deletes, on one lock.

Confirm, retention, the operator's delete and each rescan hold ``lock`` (a threading
lock: the routes run them in a worker thread), so no two of them interleave on one
node. The status reads the last scan plus one ``statvfs`` and takes no lock, so it
stays cheap however often it is polled; the scan is refreshed on the housekeeping tick,
after a confirm or delete, and when the recorder says a recording began or ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from node_agent.errors import BadRequest
from node_agent.schemas import ConfirmRequest, ConfirmResult, DeleteResult, DiskLevel, DiskStatus
from node_agent.settings import StorageSettings
from node_agent.storage.confirm import confirm_recording
from node_agent.storage.deletion import Applied, apply_plan, remove_orphans
from node_agent.storage.inventory import Inventory, Scan
from node_agent.storage.levels import (
    critical_refusal,
    disk_level,
    free_percent,
    full_of_unoffloaded,
    size_text,
    standing_alarm,
)
from node_agent.storage.retention import plan_deletions
from node_agent.telemetry.disk import minutes_left

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Space:
    """The filesystem holding the recordings, read now."""

    total_bytes: int
    free_bytes: int


def read_space(directory: Path) -> Space:
    """``statvfs`` of the recordings folder (free = what an ordinary user may still write)."""
    st = os.statvfs(directory)
    return Space(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize)


# How often a held round looks again whether it may run.
HOLD_POLL_S = 0.2


class Housekeeper:
    """Keeps the recordings disk: its status, confirm by checksum, retention of offloaded
    footage only, and the alarm when the disk is full of footage not yet offloaded."""

    def __init__(
        self,
        directory: Path,
        settings: StorageSettings,
        node_id: str,
        active_file: Callable[[], str | None] = lambda: None,
        now_ns: Callable[[], int] = time.time_ns,
        hold: Callable[[], bool] = lambda: False,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.node_id = node_id
        self.active_file = active_file
        # True while a round must wait: the recorder is armed for a scheduled start.
        self.hold = hold
        self._now_ns = now_ns
        self.lock = threading.Lock()
        self.inventory = Inventory(directory)
        self.scan = Scan()
        self.deleted_bytes_total = 0
        self._stopped_alarm: str | None = None  # a recording stopped for want of room ...
        self._stopped_need_bytes = 0  # ... of this many bytes
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Told the disk's level after each housekeeping round (the notifications).
        self.on_level: Callable[[DiskLevel, float, int], None] | None = None

    # -- the status: no lock, no scan ------------------------------------------------------

    def disk_status(self, bitrate_bps: int) -> DiskStatus:
        """The status's ``disk``: one statvfs plus the last scan's totals."""
        try:
            space = read_space(self.directory)
        except OSError as err:
            log.warning("recordings disk %s unreadable: %s", self.directory, err)
            space = Space(0, 0)
        pct = free_percent(space.free_bytes, space.total_bytes)
        level = self._level(pct)
        footage = self.scan.footage
        oldest = footage.oldest_unoffloaded_ns
        return DiskStatus(
            path=str(self.directory),
            total_bytes=space.total_bytes,
            free_bytes=space.free_bytes,
            minutes_left=round(minutes_left(space.free_bytes, bitrate_bps), 1),
            free_percent=round(pct, 2),
            level=level,
            unoffloaded_bytes=footage.unoffloaded_bytes,
            unoffloaded_count=footage.unoffloaded_count,
            offloaded_bytes=footage.offloaded_bytes,
            oldest_unoffloaded_age_s=(
                None if oldest is None else round(max(0, self._now_ns() - oldest) / 1e9, 1)
            ),
            alarm=standing_alarm(level, footage, self._stopped_alarm),
            deleted_bytes_total=self.deleted_bytes_total,
        )

    def _level(self, pct: float) -> DiskLevel:
        s = self.settings
        return disk_level(pct, s.warn_free_percent, s.critical_free_percent)

    # -- work on the folder: under the lock ---------------------------------------------------

    def refresh(self) -> Scan:
        """Rescan the folder now."""
        with self.lock:
            return self._refresh()

    def _refresh(self) -> Scan:
        self.scan = self.inventory.scan(self.active_file())
        self._check_alarm()
        return self.scan

    def _check_alarm(self) -> None:
        if self._stopped_alarm is not None and self._room_again():
            self._stopped_alarm = None  # offloaded and deleted, or freed otherwise

    def _room_again(self) -> bool:
        """Out of the critical level, with room for the reserve the stopped recording lacked."""
        try:
            space = read_space(self.directory)
        except OSError:
            return False
        return (
            self._level_of(space) != DiskLevel.critical
            and space.free_bytes >= 2 * self._stopped_need_bytes
        )

    def tick(self) -> DeleteResult | None:
        """One housekeeping round: rescan, then retention while free space is under
        ``retention_free_percent``; what it deleted, if anything."""
        with self.lock:
            self._refresh()
            if self.scan.orphans:
                self._count(remove_orphans(self.directory, self.scan.orphans, self._videos()))
            done = self._retain()
        if self.on_level is not None:
            space = read_space(self.directory)
            pct = free_percent(space.free_bytes, space.total_bytes)
            self.on_level(self._level(pct), pct, space.free_bytes)
        return self._result(done) if done.recordings else None

    def confirm(self, name: str, req: ConfirmRequest) -> ConfirmResult:
        """``POST /api/v1/recordings/{name}/confirm``; with ``delete_after_confirm`` the
        recording is deleted right after its manifest says offloaded."""
        with self.lock:
            result = confirm_recording(
                self.directory, name, req, self.active_file(), self.scan.manifests, self._now_ns()
            )
            if any(f.name == name for f in self.scan.files):
                self.scan = self.scan.changed(offloaded=name)  # no rescan per confirm
            else:
                self._refresh()  # a recording the last scan had not seen yet
            if self.settings.delete_after_confirm:
                done = self._retain(everything=True)
                result.deleted = name in done.recordings
            return result

    def delete_offloaded(self, offloaded: bool) -> DeleteResult:
        """``DELETE /api/v1/recordings?offloaded=true``: every offloaded recording."""
        if not offloaded:
            raise BadRequest(
                "only offloaded footage can be deleted: send offloaded=true to delete every "
                "recording whose copy elsewhere was confirmed by its SHA-256; recordings not "
                "yet offloaded are never deleted"
            )
        with self.lock:
            self._refresh()
            done = self._retain(everything=True)
            return self._result(done)

    def room_for_start(self, need_bytes: int) -> tuple[int, str | None]:
        """The storage gate's reading: retention first when the disk is short or critical;
        the free bytes after it, and why a start is refused (still critical)."""
        with self.lock:
            try:
                space = read_space(self.directory)
            except OSError:
                return 0, None  # the storage gate then says that nothing fits
            if space.free_bytes < need_bytes or self._level_of(space) == DiskLevel.critical:
                self._refresh()  # only then: a start on a roomy disk pays for no scan
                self._retain(min_free_bytes=need_bytes)
                space = read_space(self.directory)
            if self._level_of(space) != DiskLevel.critical:
                return space.free_bytes, None
            pct = free_percent(space.free_bytes, space.total_bytes)
            reason = critical_refusal(
                pct, self.settings.critical_free_percent, self.scan.footage, space.free_bytes
            )
            return space.free_bytes, reason

    def make_room(self, need_bytes: int, why: str) -> str | None:
        """A recording reached its reserve: free offloaded footage, or say why it must stop
        (and raise the alarm). Never deletes footage without a confirmed copy."""
        with self.lock:
            self._refresh()
            self._retain(min_free_bytes=need_bytes)
            space = read_space(self.directory)
            if space.free_bytes >= need_bytes:
                log.warning("retention made room for the recording: %s", why)
                return None
            footage = self.scan.footage
            if footage.unoffloaded_count:
                reason = f"{why}; {full_of_unoffloaded(footage)}"
            else:
                reason = (
                    f"{why}; nothing offloaded is left to delete and the rest of the disk is not "
                    f"recordings: free space on {self.directory}"
                )
            self._stopped_alarm = f"recording stopped: {reason}"
            self._stopped_need_bytes = need_bytes
            return reason

    def request_refresh(self) -> None:
        """Rescan soon (called from the recorder's thread when a recording ends)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to wake
            loop.call_soon_threadsafe(wake.set)

    # -- retention ---------------------------------------------------------------------------

    def _retain(self, everything: bool = False, min_free_bytes: int = 0) -> Applied:
        """Plan over the current scan (refreshed by the caller) and apply it."""
        space = read_space(self.directory)
        plan = plan_deletions(
            self.scan.files,
            space.free_bytes,
            space.total_bytes,
            self.settings.retention_free_percent,
            delete_after_confirm=everything,
            min_free_bytes=min_free_bytes,
        )
        if not plan:
            return Applied()
        done = apply_plan(self.directory, plan, self.active_file())
        self._count(done)
        if done.recordings:
            log.info(
                "retention deleted %d offloaded recording(s), %s: %s",
                len(done.recordings),
                size_text(done.freed_bytes),
                ", ".join(done.recordings),
            )
        self.scan = self.scan.changed(removed=set(done.recordings))
        self._check_alarm()
        return done

    def _count(self, done: Applied) -> None:
        self.deleted_bytes_total += done.freed_bytes

    def _result(self, done: Applied) -> DeleteResult:
        return DeleteResult(
            node_id=self.node_id,
            deleted=done.removed,
            freed_bytes=done.freed_bytes,
            kept_unoffloaded=self.scan.footage.unoffloaded_count,
        )

    def _videos(self) -> set[str]:
        return {f.name for f in self.scan.files}

    def _level_of(self, space: Space) -> DiskLevel:
        return self._level(free_percent(space.free_bytes, space.total_bytes))

    # -- the loop ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the housekeeping loop on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="housekeeper")

    async def stop(self) -> None:
        """Stop the loop (a round in progress finishes in its thread)."""
        task, self._task = self._task, None
        self._loop = None
        self._stopping = True  # a cancel that races a wake-up must not be lost
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            # No round begins while a scheduled start is armed: a rescan reads and
            # validates every manifest under the GIL, which the start's last
            # millisecond of spinning needs to itself.
            if self.hold():
                await asyncio.sleep(HOLD_POLL_S)
                continue
            try:
                await asyncio.to_thread(self.tick)
            except OSError as err:  # a missing or broken disk: said each round, not fatal
                log.warning("housekeeping of %s failed: %s", self.directory, err)
            except Exception:
                log.exception("housekeeping round failed")
            # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancel that
            # arrives as the wake-up does (a recording ending at shutdown), and never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.housekeeping_interval_s):
                    await self._wake.wait()
            self._wake.clear()
