"""The dashcam loop (the seed's ``camera_service.py``): one ``cycle()`` every
``poll.interval_seconds``.

A cycle, under the staging folder's flock:

1. read the power decision; if the camera may not have power (battery under
   ``power.disconnect_percent``), power it off (once) and stop there;
2. if the NAS is reachable and the battery allows uploads (or on AC): data mode, find the
   block device, mount it read-only, copy new files while hashing, delete from the camera
   what the NAS confirmed (hashed again first), sync, unmount, back to recording (or off,
   ``camera.after_copy``), then upload every staged file (``uploader.upload_pending``);
3. else the camera keeps recording.

At start every port is switched off (the seed: start disconnected), then recording. On
``stop()`` (SIGINT/SIGTERM) a copy in progress ends between chunks, the card is unmounted
and the camera left in ``camera.safe_state``. One failing cycle is recorded in the status
and the next one tries again; it never ends the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from node_agent.commands import CommandRunner, Completed
from node_agent.dashcam.copy import CopyAborted
from node_agent.dashcam.detect import CameraNotFound, describe_target, find_camera, wait_for_camera
from node_agent.dashcam.errors import DashcamBusy, DashcamStepFailed
from node_agent.dashcam.ingest import Ingestor
from node_agent.dashcam.ledger import Ledger, StagingBusy
from node_agent.dashcam.mount import Mounter, mount_point
from node_agent.dashcam.schemas import DashcamState, DashcamStatus, IngestManifest
from node_agent.dashcam.settings import DashcamSettings
from node_agent.power.policy import Decision
from node_agent.power.schemas import PowerLevel
from node_agent.power.usb import UsbControl

log = logging.getLogger(__name__)

CameraMode = Literal["off", "recording", "data"]
STOP_WAIT_S = 20.0  # within the unit's TimeoutStopSec=30


class UploaderLike(Protocol):
    """What the loop needs of the uploader (``node_agent.dashcam.upload.Uploader``)."""

    async def upload_pending(self) -> Sequence[object]:
        """Upload every staged file not yet confirmed; confirm each by the NAS's SHA-256."""
        ...

    def reachable(self) -> bool:
        """Whether the NAS answers now (blocking: called off the event loop)."""
        ...


class Dashcam:
    """The dashcam mode's loop and its status (see the module docstring)."""

    def __init__(
        self,
        settings: DashcamSettings,
        usb: UsbControl,
        runner: CommandRunner,
        power: Callable[[], Decision],
        uploader: UploaderLike,
        ingestor: Ingestor,
        mounter: Mounter | None = None,
        *,
        udevadm: str = "udevadm",
        sleep: Callable[[float], None] = time.sleep,
        on_camera: Callable[[bool | None], None] | None = None,
    ) -> None:
        self.settings = settings
        self.usb = usb
        self.runner = runner
        self.power = power
        self.uploader = uploader
        self.ingestor = ingestor
        self.ledger: Ledger = ingestor.ledger
        self.mounter = mounter or Mounter(runner)
        self.udevadm = udevadm
        self.sleep = sleep
        self.on_camera = on_camera  # told whether the camera has power after each switch
        # Told ("upload" | "cycle", what went wrong) when a backup or a cycle fails.
        self.on_problem: Callable[[str, str], None] | None = None
        self.dry_run = runner.dry_run
        self.camera: CameraMode | None = None  # what the camera was last switched to
        self._state = DashcamState.idle
        self._stopping = threading.Event()  # read from the copy's thread between chunks
        self._wake = asyncio.Event()
        self._cycle_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._status = DashcamStatus(state=DashcamState.idle, dry_run=self.dry_run)
        ingestor.abort = self._stopping.is_set

    # -- life cycle ------------------------------------------------------------------

    async def start(self, loop: bool = True) -> None:
        """Every port off (start disconnected), then recording; then the loop (unless
        ``loop`` is false: ``camfleet dashcam --once`` runs ``cycle()`` itself)."""
        await asyncio.to_thread(self._start_camera)
        await asyncio.to_thread(self._refresh_staged)
        if loop:
            self._task = asyncio.create_task(self._loop(), name="dashcam")

    def wake(self) -> None:
        """Run the next cycle now (the battery crossed a threshold), not at the next poll."""
        self._wake.set()

    def request_stop(self) -> None:
        """Ask a cycle in progress to end now (a signal handler calls it; ``stop()`` after)."""
        self._stopping.set()
        self._wake.set()

    def _start_camera(self) -> None:
        self._switch("off", all_ports=True)
        if self.power().camera_on is not False:
            self._switch("recording")
        self._state = (
            DashcamState.recording if self.camera == "recording" else DashcamState.camera_off
        )

    async def stop(self) -> None:
        """End the loop: a copy stops between chunks, the card is unmounted, and the
        camera is left in ``camera.safe_state``."""
        self.request_stop()
        self._state = DashcamState.stopping
        try:
            await asyncio.wait_for(self._cycle_lock.acquire(), STOP_WAIT_S)
            self._cycle_lock.release()
        except TimeoutError:
            log.error("a dashcam cycle did not end within %g s; cancelling it", STOP_WAIT_S)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._leave_safe)

    def _leave_safe(self) -> None:
        if self.mounter.mounted is not None:
            self.mounter.umount()
        if self.camera != self.settings.camera.safe_state:
            self._switch(self.settings.camera.safe_state)
        self._state = DashcamState.camera_off if self.camera == "off" else DashcamState.recording
        log.info("dashcam stopped; camera left in %s", self.camera)

    async def _loop(self) -> None:
        interval = self.settings.poll.interval_seconds
        while not self._stopping.is_set():
            await self.cycle()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    # -- one cycle -------------------------------------------------------------------

    async def run_now(self) -> DashcamStatus:
        """One cycle now (the route); DashcamBusy if one is running."""
        if self._cycle_lock.locked():
            raise DashcamBusy("a dashcam cycle is running; try again when it is done")
        return await self.cycle(refuse_busy=True)

    async def cycle(self, *, refuse_busy: bool = False) -> DashcamStatus:
        """One pass of the loop; never raises (a failure is in the status), except
        DashcamBusy with ``refuse_busy`` when another run holds the staging lock."""
        async with self._cycle_lock:
            t0 = time.time_ns()
            error: str | None = None
            self._status = self._status.model_copy(update={"last_error": None})
            try:
                result = await self._cycle()
            except StagingBusy as err:
                if refuse_busy:
                    raise DashcamBusy(f"{err}; try again when it is done") from err
                result = error = f"skipped: {err}"
            except (DashcamStepFailed, CameraNotFound, OSError, RuntimeError) as err:
                result = error = f"failed: {err}"
                log.error("dashcam cycle %s", result)
            except Exception as err:  # the loop outlives any one failure
                log.exception("dashcam cycle failed")
                result = error = f"failed: {type(err).__name__}: {err}"
            if error is not None and error.startswith("failed") and self.on_problem is not None:
                self.on_problem("cycle", error)
            await asyncio.to_thread(self._refresh_staged)
            if not self._stopping.is_set():
                self._state = {
                    "off": DashcamState.camera_off,
                    "recording": DashcamState.recording,
                }.get(self.camera or "", DashcamState.idle)
            self._status = self._status.model_copy(
                update={
                    "state": self._state,
                    "last_cycle_at_ns": t0,
                    "last_cycle_result": result,
                    "last_error": error if error else self._status.last_error,
                }
            )
            log.info("dashcam cycle: %s", result)
            return self.status()

    async def _cycle(self) -> str:
        if self._stopping.is_set():
            return "stopping"
        decision = await asyncio.to_thread(self.power)  # a fallback reader may block
        if decision.camera_on is False:
            if self.camera != "off":
                await asyncio.to_thread(self._switch, "off")
            return f"camera off: {decision.reason}"
        if self.camera == "off" and decision.camera_on:
            await asyncio.to_thread(self._switch, "recording")  # the battery is back
        reachable = await asyncio.to_thread(self.uploader.reachable)
        self._status = self._status.model_copy(update={"host_reachable": reachable})
        host = self.settings.upload.host
        if not reachable:
            return f"{host} unreachable: the camera keeps recording"
        if not (decision.may_upload or decision.level == PowerLevel.ac):
            return f"no uploads on this battery ({decision.reason}): the camera keeps recording"
        lock = contextlib.nullcontext() if self.dry_run else self.ledger.locked()
        with lock:
            copy_failed: Exception | None = None
            try:
                copied = await asyncio.to_thread(self._offload)
            except (DashcamStepFailed, CameraNotFound, OSError) as err:
                # Footage staged on earlier visits still goes to the NAS; the cycle is
                # reported failed once that is done.
                copy_failed, copied = err, f"copy failed: {err}"
            if self._stopping.is_set():
                return f"{copied}; stopped before the upload"
            pending = await asyncio.to_thread(self.ledger.pending_upload)
            uploaded = await self._upload() if pending else "nothing to upload"
        if copy_failed is not None:
            raise DashcamStepFailed(f"{copied}; {uploaded}") from copy_failed
        return f"{copied}; {uploaded}"

    def _offload(self) -> str:
        """Data mode, find, mount, copy, clean, unmount, back: the blocking part."""
        cam = self.settings.camera
        self._state = DashcamState.copying
        done = self._switch("data")
        try:
            if not done.ok:
                raise DashcamStepFailed(f"data mode failed: {done.describe()}")
            if self.dry_run:
                found = find_camera(cam)
                if found is None:
                    log.info(
                        "would wait up to %g s for %s to show a block device, mount it "
                        "read-only under %s-DEVICE, copy new footage, sync and unmount",
                        self.settings.poll.mount_timeout_seconds,
                        describe_target(cam),
                        cam.mount_base,
                    )
                    return "dry run: the camera shows no block device now (not in data mode)"
            else:
                found = wait_for_camera(
                    cam,
                    self.runner,
                    self.settings.poll.mount_timeout_seconds,
                    sleep=self.sleep,
                    abort=self._stopping.is_set,
                    udevadm=self.udevadm,
                )
            target = mount_point(cam.mount_base, found.device_id)
            if self.dry_run:
                self.mounter.mount_ro(found.node, target)  # logged, not run
                log.info("would copy new footage from %s into %s", target, self.ledger.staging)
                self.mounter.umount()
                return f"dry run: would copy new footage from {found.description}"
            with self.mounter.mounted_ro(found.node, target) as root:
                got = self.ingestor.ingest(root, found)
                self._status = self._status.model_copy(
                    update={"ingested_total": self._status.ingested_total + len(got.copied)}
                )
                cleaned = 0
                if cam.delete_from_camera and not self._stopping.is_set():
                    clean = self.ingestor.clean_camera(root, found, self.mounter.remount_rw)
                    cleaned = len(clean.deleted)
        except CopyAborted:
            return "stopped during a copy (the partial file was discarded)"
        finally:
            back: CameraMode = cam.safe_state if self._stopping.is_set() else cam.after_copy
            self._switch(back)
        text = f"copied {len(got.copied)} new file(s) from {found.device_id}, "
        text += f"{got.skipped} already staged"
        if got.refused:
            text += f", {len(got.refused)} refused ({got.refused[0]})"
        if cleaned:
            text += f", {cleaned} deleted from the camera (confirmed on the NAS)"
        return text

    async def _upload(self) -> str:
        self._state = DashcamState.uploading
        before = await asyncio.to_thread(self._attempts)
        outcomes = await self.uploader.upload_pending()
        after = await asyncio.to_thread(self.ledger.manifests)
        ok = failed = 0
        for m in after:
            if m.staged_path not in before:
                continue
            if m.offloaded:
                ok += 1
            else:
                failed += max(0, m.upload_attempts - before[m.staged_path])
        self._status = self._status.model_copy(
            update={
                "uploaded_total": self._status.uploaded_total + ok,
                "failed_total": self._status.failed_total + failed,
            }
        )
        errors = [e for o in outcomes if (e := getattr(o, "error", None))]
        if errors and self.on_problem is not None:
            left = len(before) - ok
            self.on_problem("upload", f"{left} of {len(before)} file(s) not confirmed: {errors[0]}")
        return f"{ok} of {len(before)} staged file(s) confirmed on the NAS"

    def _attempts(self) -> dict[str, int]:
        return {m.staged_path: m.upload_attempts for m in self.ledger.pending_upload()}

    def _switch(self, mode: CameraMode, all_ports: bool = False) -> Completed:
        """Switch the camera; a failure is logged and kept, never raised."""
        if mode == "data":
            done = self.usb.data_mode()
        elif mode == "recording":
            done = self.usb.recording_mode()
        else:
            done = self.usb.all_off() if all_ports else self.usb.power_off()
        if done.ok:
            self.camera = mode
        else:
            self.camera = None  # not known any more: the next switch is always made
            self._status = self._status.model_copy(
                update={"last_error": f"camera {mode}: {done.describe()}"}
            )
        if self.on_camera is not None:
            self.on_camera(None if self.camera is None else self.camera != "off")
        return done

    # -- status ----------------------------------------------------------------------

    def _refresh_staged(self) -> None:
        staged = [m for m in self.ledger.manifests() if m.staging_deleted_at_ns is None]
        self._status = self._status.model_copy(
            update={
                "staged_files": len(staged),
                "staged_bytes": sum(m.size_bytes for m in staged),
                "pending_upload": sum(1 for m in staged if not m.offloaded),
            }
        )

    def status(self) -> DashcamStatus:
        """The loop's status, from its cache (no file is read)."""
        return self._status.model_copy(update={"state": self._state})

    @property
    def running(self) -> bool:
        """Whether a cycle is running now."""
        return self._cycle_lock.locked()

    def recent_manifests(self, limit: int) -> list[IngestManifest]:
        """The newest ``limit`` manifests, newest first (reads the ledger: off the loop)."""
        return list(reversed(self.ledger.manifests()[-limit:]))
