"""The agent's side of an update: check the feed, download, verify, install, hand over.

``apply`` answers at once (202) once the release is known; a worker thread downloads,
verifies and installs it, writes the pending marker and starts the finisher (see
``finisher``) in a transient unit. A loop (``updater-watch``, once a second) starts a
queued update when the recorder is idle again (``updater.retry_when_idle``) and starts
the finisher again when a pending marker has nobody working on it (a kill -9 or power
cut mid-update). It polls the recorder's state: a cheap read of a cached value, and it
needs no hook in the recorder that a recorder change could forget.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from node_agent import __version__
from node_agent.commands import CommandFailed, CommandRunner
from node_agent.errors import AgentError, NotFound, RecordingConflict
from node_agent.schemas import RecorderState
from node_agent.sync.systemctl import Systemctl
from node_agent.updater.download import DownloadError, download
from node_agent.updater.feed import FeedError, Release, fetch_feed, is_newer, parse_feed, pick
from node_agent.updater.hooks import checkpoint
from node_agent.updater.install import InstallError, Layout, install
from node_agent.updater.schemas import (
    UpdateCheck,
    UpdateProgress,
    UpdateRecord,
    UpdateState,
)
from node_agent.updater.settings import UpdaterSettings
from node_agent.updater.state import Pending, UpdateFiles, now_iso
from node_agent.updater.verify import VerifyError, verify_archive

log = logging.getLogger(__name__)

SMALL_FILE_BYTES = 4096  # a .sha256 or .sig file
WORKING = (UpdateState.downloading, UpdateState.verifying, UpdateState.installing)
HANDED_OVER = (UpdateState.switching, UpdateState.restarting, UpdateState.checking)


class UpdateConflict(AgentError):
    """An update cannot start now (one is running, or the updater is not set up)."""

    status_code = 409
    code = "update_conflict"


class FeedUnreachable(AgentError):
    """The release feed could not be read."""

    status_code = 502
    code = "feed_unreachable"


class Updater:
    """Checks, applies and tracks updates of this node (docs/updates.md)."""

    def __init__(
        self,
        settings: UpdaterSettings,
        data_dir: Path,
        health_url: str,
        token: Callable[[], str],
        recorder_state: Callable[[], RecorderState],
        runner: CommandRunner,
        version: str = __version__,
    ) -> None:
        self.settings = settings
        self.files = UpdateFiles(data_dir)
        self.layout = Layout(settings.install_root, settings.base)
        self.health_url = health_url
        self.token = token
        self.recorder_state = recorder_state
        self.runner = runner
        self.systemctl = Systemctl(runner, program=settings.systemctl)
        self.version = version
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._last_launch = 0.0

    # --- reading -------------------------------------------------------------------

    def _releases(self) -> list[Release]:
        if not self.settings.feed_url:
            raise FeedError("updater.feed_url is not set")
        releases, skipped = parse_feed(
            fetch_feed(self.settings.feed_url, self.settings.feed_timeout_s)
        )
        for line in skipped:
            log.debug("feed: skipped %s", line)
        return releases

    def check(self) -> UpdateCheck:
        """The current version and the newest release (``error`` says why there is none)."""
        try:
            best = pick(self._releases(), None, self.settings.allow_prerelease)
        except FeedError as err:
            return UpdateCheck(current=self.version, error=str(err))
        if best is None:
            return UpdateCheck(current=self.version, error="the feed offers no usable release")
        return UpdateCheck(
            current=self.version,
            available=best.version,
            update_available=is_newer(best.version, self.version),
            notes=best.notes,
            published_at=best.published_at,
        )

    def status(self) -> UpdateProgress:
        """The update in progress or the last one's end, and the history."""
        doc = self.files.progress()
        try:
            state = UpdateState(doc.get("state", "idle"))
        except ValueError:
            state = UpdateState.idle
        return UpdateProgress(
            state=state,
            current=self.version,
            target=doc.get("target"),
            queued=state == UpdateState.queued,
            detail=doc.get("detail"),
            history=self.files.history(),
        )

    # --- applying ------------------------------------------------------------------

    def _recording(self) -> bool:
        return self.recorder_state() != RecorderState.idle

    def _busy(self) -> str | None:
        if self._worker is not None and self._worker.is_alive():
            return "an update is already being downloaded and installed"
        pending = self.files.pending()
        if pending is not None:
            return f"the update to {pending.to_version} is being finished"
        return None

    def apply(self, version: str | None) -> UpdateProgress:
        """Start installing ``version`` (None: the newest); raises the 4xx/5xx answers."""
        if not self.settings.public_key:
            raise UpdateConflict("updater.public_key is not set: no release can be verified")
        with self._lock:
            busy = self._busy()
            if busy:
                raise UpdateConflict(busy)
            if self._recording():
                if self.settings.retry_when_idle:
                    self.files.set_progress(
                        UpdateState.queued,
                        target=version,
                        detail="waiting for the recording to end",
                    )
                    raise RecordingConflict(
                        "a recording is in progress: the update is queued and applies when "
                        "the recorder is idle (GET /api/v1/update/status)"
                    )
                raise RecordingConflict(
                    "a recording is in progress: updates wait until it ends (try again "
                    "then, or set updater.retry_when_idle)"
                )
            release = self._resolve(version)
            self._start(release)
        return self.status()

    def _resolve(self, version: str | None) -> Release:
        try:
            releases = self._releases()
        except FeedError as err:
            raise FeedUnreachable(str(err)) from err
        release = pick(releases, version, self.settings.allow_prerelease)
        if release is None:
            offered = ", ".join(r.version for r in releases[:10]) or "none"
            raise NotFound(f"the feed has no release {version or '(any)'}; it offers {offered}")
        if release.version == self.version:
            raise UpdateConflict(f"{release.version} is the version this node runs")
        if version is None and not is_newer(release.version, self.version):
            raise UpdateConflict(
                f"the newest release, {release.version}, is not newer than {self.version} "
                "(name a version to go back to it)"
            )
        if self.layout.current_version() != self.version or not self.layout.is_complete(
            self.version
        ):
            raise UpdateConflict(
                f"this agent does not run from {self.layout.current}/ (versions/"
                f"{self.version}): install it with deploy/setup-node.sh first"
            )
        return release

    def _start(self, release: Release) -> None:
        attempt = uuid.uuid4().hex[:12]
        self.files.set_progress(UpdateState.downloading, target=release.version, id=attempt)
        self._worker = threading.Thread(
            target=self._run, args=(release, attempt), name="updater-install", daemon=True
        )
        self._worker.start()

    def _end(self, release: Release, attempt: str, result: str, why: str) -> None:
        log.error("update to %s %s: %s", release.version, result, why)
        self.files.record(
            UpdateRecord(
                version=release.version,
                from_version=self.version,
                at=now_iso(),
                result=result,
                why=why,
                id=attempt,
            )
        )
        self.files.set_progress(UpdateState.failed, target=release.version, detail=why, id=attempt)

    def _run(self, release: Release, attempt: str) -> None:
        downloads = self.files.dir / "downloads"
        cap = self.settings.max_download_bytes
        size = release.archive.size
        half = max(1, size // 2)

        def on_chunk(have: int) -> None:
            if have >= half:
                checkpoint(self.files.dir, "downloading")

        def fetch(asset_url: str, name: str, asset_size: int | None, limit: int) -> Path:
            return download(
                asset_url,
                downloads / name,
                size=asset_size,
                max_bytes=limit,
                attempts=self.settings.download_attempts,
                timeout_s=self.settings.feed_timeout_s,
                on_chunk=on_chunk if name == release.archive.name else lambda _n: None,
            )

        try:
            archive = fetch(release.archive.url, release.archive.name, size, cap)
            sha = fetch(release.sha256.url, release.sha256.name, None, SMALL_FILE_BYTES)
            sig = fetch(release.sig.url, release.sig.name, None, SMALL_FILE_BYTES)
            self.files.set_progress(UpdateState.verifying, target=release.version, id=attempt)
            assert self.settings.public_key is not None
            digest = verify_archive(
                archive,
                release.archive.name,
                sha.read_text(errors="replace"),
                sig.read_text(errors="replace"),
                self.settings.public_key,
            )
            self.files.set_progress(UpdateState.installing, target=release.version, id=attempt)
            install(
                self.layout,
                archive,
                release.version,
                digest,
                self.runner,
                on_step=lambda step: checkpoint(self.files.dir, step),
            )
        except VerifyError as err:
            shutil.rmtree(downloads, ignore_errors=True)  # the next try downloads again
            self._end(release, attempt, "refused", str(err))
            return
        except (DownloadError, InstallError, OSError) as err:
            self._end(release, attempt, "failed", str(err))
            return
        shutil.rmtree(downloads, ignore_errors=True)
        checkpoint(self.files.dir, "installed")
        pending = Pending(
            id=attempt,
            from_version=self.version,
            to_version=release.version,
            install_root=str(self.layout.root),
            base=str(self.layout.base),
            unit=self.settings.unit,
            systemctl=self.settings.systemctl,
            health_url=self.health_url,
            token=self.token(),
            health_deadline_s=self.settings.health_deadline_s,
            keep_versions=self.settings.keep_versions,
            created_at=time.time(),
        )
        self.files.set_pending(pending)
        self.files.set_progress(UpdateState.switching, target=release.version, id=attempt)
        checkpoint(self.files.dir, "pending")
        try:
            self._launch(pending)
        except CommandFailed as err:
            self.files.clear_pending()
            self._end(release, attempt, "failed", f"cannot start the finisher: {err}")

    def _launch(self, pending: Pending) -> None:
        """Start the finisher from the old version's venv, in a unit of its own: the
        template instance ``camfleet-update@FROM.service``, whose ExecStart runs
        ``versions/FROM/venv/bin/python -m node_agent.updater.finisher`` (a fixed command:
        the agent's user may start it and nothing else, deploy/polkit/50-camfleet.rules)."""
        self._last_launch = time.monotonic()
        unit = self.settings.finisher_unit.replace("@.", f"@{pending.from_version}.", 1)
        self.systemctl.start(unit, no_block=True)

    # --- the watch loop ------------------------------------------------------------

    def start(self) -> None:
        """Tidy what a restart interrupted, then watch (a thread)."""
        self._settle_interrupted()
        self._stop.clear()
        self._loop = threading.Thread(target=self._watch, name="updater-watch", daemon=True)
        self._loop.start()

    def stop(self) -> None:
        """End the watch loop (an install under way carries on in its thread)."""
        self._stop.set()
        if self._loop is not None:
            self._loop.join(timeout=5)

    def _settle_interrupted(self) -> None:
        doc = self.files.progress()
        state = doc.get("state")
        if self.files.pending() is not None:
            return  # the finisher's business
        if state in WORKING:
            target = str(doc.get("target"))
            self.files.record(
                UpdateRecord(
                    version=target,
                    from_version=self.version,
                    at=now_iso(),
                    result="failed",
                    why="interrupted by a restart before it was installed",
                    id=doc.get("id"),
                )
            )
            self.files.set_progress(
                UpdateState.failed, target=target, detail="interrupted by a restart"
            )
        elif state in HANDED_OVER:
            last = next((r for r in self.files.history() if r.id == doc.get("id")), None)
            done = last is not None and last.result == "installed"
            self.files.set_progress(
                UpdateState.done if done else UpdateState.failed,
                target=doc.get("target"),
                detail=None if done else "interrupted",
            )

    def tick(self) -> None:
        """One round of the watch loop."""
        pending = self.files.pending()
        worker_alive = self._worker is not None and self._worker.is_alive()
        if pending is not None and not worker_alive:
            if (
                time.monotonic() - self._last_launch >= self.settings.finisher_grace_s
                and not self.files.finisher_running()
            ):
                log.warning("update to %s has no finisher: starting one", pending.to_version)
                try:
                    self._launch(pending)
                except CommandFailed as err:
                    log.error("cannot start the update finisher: %s", err)
            return
        progress = self.files.progress()
        if progress.get("state") == UpdateState.queued and not self._recording():
            version = progress.get("target")
            try:
                self.apply(version if isinstance(version, str) else None)
            except RecordingConflict:
                pass  # a recording started again: still queued (or refused, if not retrying)
            except AgentError as err:
                log.error("the queued update did not start: %s", err.message)
                self.files.record(
                    UpdateRecord(
                        version=str(version or "(newest)"),
                        from_version=self.version,
                        at=now_iso(),
                        result="failed",
                        why=f"the queued update did not start: {err.message}",
                    )
                )
                self.files.set_progress(UpdateState.failed, target=version, detail=err.message)

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.tick()
            except Exception:
                log.exception("updater watch")
