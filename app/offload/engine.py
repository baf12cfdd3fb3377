"""OffloadEngine: runs offload jobs as asyncio tasks, each file through the same steps.

For each file, in this order and never another: pull it into ``.part`` (Range resume,
hashed as it arrives), fsync it, compare with the manifest's SHA-256, rename it into
place and fsync the folder, write the manifest and the Lock View beside it, commit
``archived`` durably in the database, and only then confirm it to the node, then record
the confirmation. A coordinator killed anywhere in that sequence leaves nothing confirmed
that the archive does not hold, verified; the next offload picks up where it stopped.

One file is worked on by one task at a time (an in-process lock per archive path, and an
exclusive lock on its ``.part`` against another process); nodes get ``offload_per_node``
transfers at once and the fleet ``offload_concurrency``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session

from app.context import Fleet
from app.fleet.wire import ConfirmRequest, Manifest, RecorderState
from app.offload import repository
from app.offload.archive import (
    ArchivePaths,
    UnsafeName,
    copy_place,
    drop,
    install,
    intact,
    make_folder,
    paths_for,
    set_aside,
    sha256_of,
)
from app.offload.live import LiveFile, LiveJob
from app.offload.metrics import OffloadMetrics
from app.offload.models import FileState, JobState
from app.offload.transfer import PartBusy, PartFile, Paused, Pull, TransferFailed, pull
from app.recordings.models import ArchiveState
from common.fsutil import atomic_write_bytes

log = logging.getLogger(__name__)

_RECORDING = (RecorderState.armed, RecorderState.recording, RecorderState.stopping)


@dataclass
class _Snapshot:
    """What the database says about a file before it is worked on."""

    manifest: Manifest
    archive_state: str
    archive_sha256: str | None
    archived_at_ns: int | None
    taken_by: str | None  # another node's recording already archived at this path


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class OffloadEngine:
    """Offload jobs of one coordinator, and the locks and slots they share."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.settings = fleet.settings
        self.root: Path = fleet.settings.archive_root
        self.metrics = OffloadMetrics.register(fleet.registry)
        self.live: dict[str, LiveJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._total = asyncio.Semaphore(self.settings.offload_concurrency)
        self._nodes: dict[str, asyncio.Semaphore] = {}
        self._locks: dict[str, _KeyLock] = {}

    async def recover(self) -> int:
        """At start: the archive folder exists, and jobs a killed coordinator left running
        are marked interrupted (their .part files stay, for the next offload to resume)."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        return await self.fleet.store.run(
            lambda db: repository.interrupt_unfinished(db, time.time_ns())
        )

    def launch(self, job: LiveJob) -> None:
        """Run ``job`` in the background."""
        self.live[job.job_id] = job
        task = asyncio.create_task(self._run(job), name=f"offload-{job.job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        """Stop every job; what they were doing is marked interrupted."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if tasks:
            await self.fleet.store.run(
                lambda db: repository.interrupt_unfinished(db, time.time_ns())
            )

    async def _run(self, job: LiveJob) -> None:
        self.metrics.jobs_running.inc()
        try:
            outcomes = await asyncio.gather(
                *(self._run_file(job, f) for f in job.files), return_exceptions=True
            )
        except asyncio.CancelledError:
            job.state = JobState.interrupted
            self.live.pop(job.job_id, None)
            raise
        finally:
            self.metrics.jobs_running.dec()
        for f, outcome in zip(job.files, outcomes, strict=True):
            if isinstance(outcome, BaseException):  # even its failure could not be saved
                log.error("offload of %s: %r", f.file_name, outcome)
        job.state = JobState.done if all(f.settled for f in job.files) else JobState.failed
        job.finished_at_ns = time.time_ns()
        failed = [
            (f.node_id, f.file_name, f.progress.error or "failed")
            for f in job.files
            if f.state == FileState.failed
        ]
        if failed and self.fleet.alerts is not None:
            self.fleet.alerts.offload_failed(job.job_id, failed)
        state, at = job.state, job.finished_at_ns
        try:
            await self.fleet.store.run(lambda db: repository.finish_job(db, job.job_id, state, at))
        finally:
            self.live.pop(job.job_id, None)

    async def _run_file(self, job: LiveJob, f: LiveFile) -> None:
        if f.state != FileState.queued:
            return  # failed when the job was made (a name that is not safe)
        try:
            async with self._key_lock(f"{f.session_id}/{f.file_name}"):
                if f.node_id in job.gone:
                    await self._finish(f, FileState.failed, job.gone[f.node_id])
                    return
                await self._process(job, f)
                if self._gave_up(f):
                    job.gone[f.node_id] = (
                        f"not tried: this job gave up on node {f.node_id} "
                        f"({f.progress.error}); offload again when it is back"
                    )
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug, or the archive's disk: this file fails, not the job
            log.exception("offload of %s from %s failed", f.file_name, f.node_id)
            await self._finish(f, FileState.failed, f"{type(err).__name__}: {err}"[:500])

    @contextlib.asynccontextmanager
    async def _key_lock(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[key]

    def _node_slot(self, node_id: str) -> asyncio.Semaphore:
        slot = self._nodes.get(node_id)
        if slot is None:
            slot = self._nodes[node_id] = asyncio.Semaphore(self.settings.offload_per_node)
        return slot

    @contextlib.asynccontextmanager
    async def _transfer_slot(self, node_id: str) -> AsyncIterator[None]:
        """A place among the transfers from ``node_id`` and over the fleet. It covers the
        pull of the bytes only: the commit and the confirm of one file overlap the next
        file's pull (``make bench`` section 9, 8 files of 64 MB from one node: 2.35 s with
        the slot held to the confirm, 2.02 s like this)."""
        async with self._node_slot(node_id), self._total:
            yield

    def _gave_up(self, f: LiveFile) -> bool:
        """Every attempt of ``f`` failed: its node is not there."""
        return f.state == FileState.failed and f.progress.attempts >= (
            self.settings.offload_max_attempts
        )

    def _backoff_s(self, attempt: int) -> float:
        s = self.settings
        return float(min(s.offload_retry_max_s, s.offload_retry_base_s * 2 ** (attempt - 1)))

    def _pace(self, node_id: str) -> float:
        """Bytes/s allowed from ``node_id`` now (0: no limit); Paused when it records and
        the policy is to skip recording nodes."""
        s = self.settings
        entry = self.fleet.state.cache.get(node_id)
        status = entry.status if entry is not None else None
        limit = float(s.offload_max_bytes_per_s)
        if status is None or status.recorder.state not in _RECORDING:
            return limit
        if s.offload_while_recording == "skip":
            raise Paused(
                "the node is recording (offload_while_recording=skip); offload again when it "
                "stops, and the transfer resumes where it is"
            )
        if s.offload_while_recording == "throttle":
            rate = float(s.offload_recording_bytes_per_s)
            return min(limit, rate) if limit > 0 else rate
        return limit

    async def _process(self, job: LiveJob, f: LiveFile) -> None:
        snap = await self.fleet.store.run(lambda db: _snapshot(db, f.recording_id, self.root))
        if snap is None:
            await self._finish(f, FileState.failed, "the recording is no longer known")
            return
        m = snap.manifest
        try:
            paths = paths_for(self.root, m)
        except UnsafeName as err:
            await self._finish(f, FileState.failed, f"not archived: {err}")
            return
        if snap.archive_state in (ArchiveState.archived, ArchiveState.confirmed) and (
            await asyncio.to_thread(intact, paths.video, m.size_bytes)
        ):
            f.progress.bytes_done = m.size_bytes
            if snap.archive_state == ArchiveState.confirmed:
                f.settled = True
                # Nothing went wrong and nothing was left to do: no error to report.
                await self._finish(f, FileState.skipped, None)
                return
            await self._confirm(f, paths, snap.archive_sha256 or m.sha256, snap.archived_at_ns)
            return
        if snap.taken_by is not None:
            await self._finish(
                f, FileState.failed, f"{paths.relative} is already archived for {snap.taken_by}"
            )
            return
        async with self._transfer_slot(f.node_id):
            if f.node_id in job.gone:  # given up on while this file waited for its turn
                await self._finish(f, FileState.failed, job.gone[f.node_id])
                return
            try:
                self._pace(f.node_id)
            except Paused as err:
                await self._finish(f, FileState.skipped, str(err))
                return
            await self._save(f, FileState.transferring)
            digest = await self._fetch(f, paths, m)
        if digest is None:
            return
        note = await self._side_files(f, paths, m)
        at = time.time_ns()
        await self.fleet.store.run(
            lambda db: repository.mark_archived(db, f.recording_id, paths.relative, digest, at)
        )
        f.progress.error = note
        await self._confirm(f, paths, digest, at)

    async def _fetch(self, f: LiveFile, paths: ArchivePaths, m: Manifest) -> str | None:
        """The verified file in place, by its SHA-256; None when it could not be (the
        file's state says why)."""
        await asyncio.to_thread(make_folder, paths.folder)
        try:
            part = await asyncio.to_thread(PartFile.open_sync, paths.part, m.size_bytes)
        except PartBusy as err:
            await self._finish(f, FileState.failed, str(err))
            return None
        try:
            if await asyncio.to_thread(paths.video.exists):
                # Renamed by a run killed before its commit, or put there by someone else.
                if await asyncio.to_thread(sha256_of, paths.video) == m.sha256:
                    await asyncio.to_thread(drop, part.path)
                    f.progress.bytes_done = m.size_bytes
                    return m.sha256
                kept = await asyncio.to_thread(set_aside, paths.video, paths.video)
                log.warning("%s did not match its manifest; kept as %s", paths.video, kept.name)
            job = Pull(
                client=self.fleet.client,
                address=lambda: self.fleet.address(f.node_id),
                name=m.file_name,
                size=m.size_bytes,
                idle_timeout_s=self.settings.offload_idle_timeout_s,
                max_attempts=self.settings.offload_max_attempts,
                backoff_s=self._backoff_s,
                pace=lambda: self._pace(f.node_id),
            )
            before = f.progress.bytes_received
            try:
                await pull(job, part, f.progress)
            except TransferFailed as err:
                await self._finish(f, FileState.failed, str(err))
                return None
            except Paused as err:
                await self._finish(f, FileState.skipped, str(err))
                return None
            finally:
                self.metrics.bytes_total.inc(f.progress.bytes_received - before)
            await asyncio.to_thread(part.fsync_sync)
            digest = part.hasher.hexdigest()
            if digest != m.sha256:
                kept = await asyncio.to_thread(set_aside, paths.part, paths.video)
                await self.fleet.store.run(lambda db: repository.mark_corrupt(db, f.recording_id))
                self.metrics.corrupt_total.inc()
                await self._finish(
                    f,
                    FileState.corrupt,
                    f"SHA-256 mismatch: the copy is {digest}, the manifest says {m.sha256}; "
                    f"the copy is kept as {kept.name}, the node's file is left alone and "
                    "nothing was confirmed",
                )
                return None
            await asyncio.to_thread(install, paths.part, paths.video)
            return digest
        finally:
            part.close()

    async def _side_files(self, f: LiveFile, paths: ArchivePaths, m: Manifest) -> str | None:
        """The manifest and the Lock View beside the video; what went wrong, if anything
        (a missing still does not hold the recording back)."""
        await asyncio.to_thread(
            atomic_write_bytes, paths.manifest, m.model_dump_json(indent=2).encode()
        )
        still = paths.still
        if still is None or await asyncio.to_thread(still.exists):
            return None
        addr = self.fleet.address(f.node_id)
        if addr is None:
            return "the Lock View was not copied: the node is no longer in the fleet"
        name = still.name
        call = await self.fleet.fanout.call(
            addr, "lockview_file", lambda a: self.fleet.client.lockview_file(a, name)
        )
        if not call.ok or call.value is None:
            return f"the Lock View was not copied: {call.error}"
        await asyncio.to_thread(atomic_write_bytes, still, call.value)
        return None

    async def _confirm(
        self, f: LiveFile, paths: ArchivePaths, sha256: str, at_ns: int | None
    ) -> None:
        """Tell the node; retried with backoff while it does not answer."""
        req = ConfirmRequest(sha256=sha256, copied_to=copy_place(paths.video), copied_at_ns=at_ns)
        client, last = self.fleet.client, "the node is no longer in the fleet"
        for attempt in range(1, self.settings.offload_max_attempts + 1):
            addr = self.fleet.address(f.node_id)
            if addr is None:
                break
            (call,) = await self.fleet.fanout.each(
                [addr], "confirm", lambda a: client.confirm(a, f.file_name, req)
            )
            if call.ok and call.value is not None:
                m = call.value.manifest
                text = m.model_dump_json() if m.file_name == f.file_name else None
                await self._mark_confirmed(f.recording_id, text)
                f.settled = True
                await self._finish(f, FileState.confirmed, f.progress.error)
                return
            last = call.error or "failed"
            if call.status_code is not None and call.status_code < 500:
                break  # the node answered no: asking again will not change it
            if attempt < self.settings.offload_max_attempts:
                await asyncio.sleep(self._backoff_s(attempt))
        await self._finish(
            f,
            FileState.archived,
            f"archived and verified, but the node did not take the confirm: {last}; "
            "the next offload confirms it",
        )

    async def _mark_confirmed(self, recording_id: int, manifest_json: str | None) -> None:
        now = time.time_ns()
        await self.fleet.store.run(
            lambda db: repository.mark_confirmed(db, recording_id, now, manifest_json)
        )

    async def _save(self, f: LiveFile, state: FileState) -> None:
        f.state = state
        p = f.progress
        values = {
            "state": state.value,
            "bytes_done": p.bytes_done,
            "bytes_received": p.bytes_received,
            "resume_offsets": ",".join(str(o) for o in p.resume_offsets[-50:]),
            "attempts": p.attempts,
            "error": p.error,
            "updated_at_ns": time.time_ns(),
        }
        await self.fleet.store.run(lambda db: repository.update_file(db, f.id, **values))

    async def _finish(self, f: LiveFile, state: FileState, error: str | None) -> None:
        f.progress.error = error
        if state == FileState.corrupt and self.fleet.alerts is not None:
            self.fleet.alerts.offload_corrupt(f.node_id, f.file_name, error or "corrupt")
        self.metrics.files_total.labels(state.value).inc()
        await self._save(f, state)


def _snapshot(db: Session, recording_id: int, root: Path) -> _Snapshot | None:
    row = repository.recording(db, recording_id)
    if row is None:
        return None
    manifest = row.manifest()
    taken_by = None
    try:
        relative = paths_for(root, manifest).relative
    except UnsafeName:
        relative = None
    if relative is not None:
        owner = repository.path_owner(db, relative, recording_id)
        if owner is not None:
            taken_by = f"node {owner.node_id}"
    return _Snapshot(manifest, row.archive_state, row.archive_sha256, row.archived_at_ns, taken_by)
