"""Upload staged footage to the NAS with rsync over ssh, confirmed by the NAS's own SHA-256.

For each staged file not yet confirmed (``Ledger.pending_upload``, oldest first):

1. ``rsync`` it to ``{dest_path}/{cam_id}/{staged_path}`` (the configured flags, default
   ``--archive --partial --inplace``), retried ``poll.upload_retries`` times with the one
   exponential backoff (``node_agent.backoff``, jitter ``add``: base, 2 x base, ... each plus
   up to a second, at most ``backoff_max_s``);
2. ``ssh ... sha256sum -- PATH`` on the NAS; only when its answer equals the manifest's
   SHA-256 is the manifest marked offloaded and written, and only then is the staged copy
   deleted (and that recorded: ``node_agent.dashcam.confirm``). A mismatch confirms nothing and deletes nothing; the next
   run sends the file again with ``--checksum``, so a copy of the right size and time but
   wrong bytes is repaired rather than skipped.

The checksum of one file runs on the NAS while the next file is sent. The run's ssh calls
share one connection (ControlMaster, its socket in a private temp folder), closed at the end:
one handshake per run instead of two per file. A wrong key mode or an unreachable NAS
refuses the whole run before anything is sent; a file that fails all its tries with the NAS
no longer answering ends the run (the others are reported, not tried).
Under ``runner.dry_run`` every command is logged and none is run: no file is sent, no
manifest changes, nothing is deleted. The caller holds the staging lock (``Ledger.locked``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import random
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from node_agent.backoff import backoff_s
from node_agent.commands import CommandRunner, Completed
from node_agent.dashcam.confirm import (
    checksum_error,
    finish_confirmed,
    record_confirmed,
    record_failure,
)
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.remote import (
    Remote,
    key_problem,
    mkdir_command,
    remote_path,
    rsync_argv,
    sha256sum_command,
    short_error,
)
from node_agent.dashcam.schemas import IngestManifest
from node_agent.dashcam.settings import PollSettings, UploadSettings

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
MIN_RATE_BYTES_S = 100_000  # a call's time-out assumes at least this rate (a slow Wi-Fi)
HASH_RATE_BYTES_S = 10_000_000  # and the NAS hashing at least this fast


@dataclass(frozen=True)
class UploadOutcome:
    """What happened to one staged file in one run. ``ok``: the NAS's SHA-256 matched and
    the manifest says so; ``delays_s``: the backoff waited between attempts."""

    staged_path: str
    ok: bool
    attempts: int = 0
    delays_s: tuple[float, ...] = ()
    error: str | None = None
    bytes: int = 0
    offloaded_to: str | None = None
    dry_run: bool = False


@dataclass
class _Sent:
    """The rsync step of one file."""

    attempts: int = 0
    delays_s: list[float] = field(default_factory=list)
    error: str | None = None


class Uploader:
    """Sends staged files to the NAS and confirms them (see the module docstring).

    Extras beside the settings: ``sleep`` (the backoff's wait; tests record it), ``rng``
    (the backoff's jitter), ``rsync`` and ``ssh`` (the programs), ``multiplex`` (share one
    ssh connection per run).
    """

    def __init__(
        self,
        upload: UploadSettings,
        poll: PollSettings,
        ledger: Ledger,
        runner: CommandRunner,
        data_dir: Path,
        node_id: str,
        cam_id: str,
        sleep: Sleep = asyncio.sleep,
        *,
        rng: random.Random | None = None,
        rsync: str = "rsync",
        ssh: str = "ssh",
        multiplex: bool = True,
    ) -> None:
        self.settings = upload
        self.retries = poll.upload_retries
        self.ledger = ledger
        self.runner = runner
        self.data_dir = data_dir
        self.node_id = node_id
        self.cam_id = cam_id
        self.sleep = sleep
        self.rng = rng
        self.rsync = rsync
        self.ssh = ssh
        self.multiplex = multiplex
        self._folders: set[str] = set()  # made on the NAS in this run

    def reachable(self) -> bool:
        """Whether the configured NAS accepts a TCP connection within ``connect_timeout_s``."""
        return self._unreachable() is None

    def _unreachable(self) -> str | None:
        s = self.settings
        try:
            with socket.create_connection((s.host, s.port), timeout=s.connect_timeout_s):
                return None
        except OSError as err:
            reason = err.strerror or type(err).__name__
            return f"the NAS {s.host}:{s.port} is not reachable ({reason}): nothing was sent"

    async def upload_pending(self) -> list[UploadOutcome]:
        """Upload and confirm every pending staged file; one outcome per file, oldest first."""
        if not self.runner.dry_run:
            finish_confirmed(self.ledger)  # a run stopped between a confirm and its delete
        pending = self.ledger.pending_upload()
        if not pending:
            return []
        refused = key_problem(self.settings.ssh_key) or await asyncio.to_thread(self._unreachable)
        if refused is not None:
            log.error("dashcam upload refused: %s", refused)
            return [UploadOutcome(m.staged_path, False, error=refused) for m in pending]
        outcomes: list[UploadOutcome] = []
        self._folders.clear()
        async with self._remote() as remote:
            checking: asyncio.Task[UploadOutcome] | None = None
            try:
                for i, m in enumerate(pending):
                    sent = await self._send(remote, m)
                    if checking is not None:
                        outcomes.append(await checking)
                    checking = asyncio.create_task(self._confirm(remote, m, sent))
                    if sent.error is not None and not await asyncio.to_thread(self.reachable):
                        outcomes.append(await checking)
                        checking = None
                        outcomes += self._skip(pending[i + 1 :], sent.error)
                        break
                if checking is not None:
                    outcomes.append(await checking)
                    checking = None
            finally:
                if checking is not None:
                    checking.cancel()
        return outcomes

    # -- one file --------------------------------------------------------------------------

    async def _send(self, remote: Remote, m: IngestManifest) -> _Sent:
        """rsync one file, with retries and backoff; never raises for a failed transfer."""
        sent = _Sent()
        local = self.ledger.staged_file(m)
        try:
            size = local.stat().st_size
        except OSError:
            sent.error = f"the staged copy {local} is missing"
            return sent
        if size != m.size_bytes:
            sent.error = f"the staged copy {local} has {size} bytes, its manifest {m.size_bytes}"
            return sent
        dest = remote_path(self.settings.dest_path, self.cam_id, m.staged_path)
        argv = rsync_argv(
            self.rsync,
            self.settings.rsync_flags,
            remote,
            local,
            dest,
            repair=m.upload_attempts > 0,
            io_timeout_s=max(30, round(3 * self.settings.connect_timeout_s)),
        )
        timeout_s = 120 + m.size_bytes / MIN_RATE_BYTES_S
        tries = 1 + self.retries
        while True:
            sent.attempts += 1
            done = await self._mkdir(remote, posixpath.dirname(dest))
            if done.ok:
                done = await asyncio.to_thread(self.runner.run, argv, timeout_s=timeout_s)
            if done.ok:
                sent.error = None
                return sent
            fatal = remote.fatal_error(done.stderr)
            sent.error = fatal or _command_error(done)
            if fatal is not None or sent.attempts >= tries:
                log.error(
                    "upload %s: attempt %d of %d failed: %s",
                    m.staged_path,
                    sent.attempts,
                    tries,
                    sent.error,
                )
                return sent
            delay = backoff_s(
                sent.attempts,
                self.settings.backoff_base_s,
                self.settings.backoff_max_s,
                jitter="add",
                rng=self.rng,
            )
            sent.delays_s.append(delay)
            log.warning(
                "upload %s: attempt %d of %d failed (%s); retrying in %.1f s",
                m.staged_path,
                sent.attempts,
                tries,
                sent.error,
                delay,
            )
            await self.sleep(delay)

    async def _mkdir(self, remote: Remote, folder: str) -> Completed:
        """Create the file's folder on the NAS, once per folder and run."""
        if folder in self._folders:
            return Completed((), 0)
        done = await asyncio.to_thread(
            self.runner.run, remote.ssh_argv(mkdir_command(folder)), timeout_s=60
        )
        if done.ok:
            self._folders.add(folder)
        return done

    async def _confirm(self, remote: Remote, m: IngestManifest, sent: _Sent) -> UploadOutcome:
        """Check the NAS's SHA-256 of a sent file; record the result in its manifest."""
        dest = remote_path(self.settings.dest_path, self.cam_id, m.staged_path)
        where = remote.where(dest)
        delays = tuple(sent.delays_s)
        check = remote.ssh_argv(sha256sum_command(dest, self.settings.remote_hasher))
        if self.runner.dry_run:
            # Nothing was sent, so there is nothing to read: the check is only logged.
            self.runner.run(check, mutates=True)
            return UploadOutcome(m.staged_path, False, sent.attempts, delays, None, 0, where, True)
        error = sent.error
        if error is None:
            timeout_s = 60 + m.size_bytes / HASH_RATE_BYTES_S
            done = await asyncio.to_thread(
                self.runner.run, check, timeout_s=timeout_s, mutates=False
            )
            error = checksum_error(done, dest, m.sha256)
        if error is not None:
            record_failure(self.ledger, m, sent.attempts, error)
            log.error("upload %s not confirmed: %s", m.staged_path, error)
            return UploadOutcome(m.staged_path, False, sent.attempts, delays, error, 0, where)
        record_confirmed(self.ledger, m, sent.attempts, where)
        log.info("upload %s confirmed at %s", m.staged_path, where)
        return UploadOutcome(m.staged_path, True, sent.attempts, delays, None, m.size_bytes, where)

    def _skip(self, rest: list[IngestManifest], why: str) -> list[UploadOutcome]:
        error = f"not tried: the NAS stopped answering ({why})"
        return [UploadOutcome(m.staged_path, False, error=error) for m in rest]

    @contextlib.asynccontextmanager
    async def _remote(self) -> AsyncIterator[Remote]:
        """The NAS for one run; with ``multiplex``, its calls share one ssh connection."""
        if self.settings.known_hosts is None:
            (self.data_dir / "dashcam").mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.multiplex or self.runner.dry_run:
            yield Remote.from_settings(self.settings, self.data_dir, ssh=self.ssh)
            return
        # A socket path is limited to about 100 bytes: a short private folder, not data_dir.
        folder = Path(tempfile.mkdtemp(prefix="camfleet-ssh-"))
        remote = Remote.from_settings(
            self.settings, self.data_dir, ssh=self.ssh, control_path=str(folder / "master")
        )
        try:
            yield remote
        finally:
            await asyncio.to_thread(self._close, remote, folder)

    def _close(self, remote: Remote, folder: Path) -> None:
        """Close the run's shared connection now (not 60 s later) and drop its folder."""
        if (folder / "master").exists():  # a master was started
            self.runner.run(remote.close_argv(), timeout_s=10, mutates=False)
        shutil.rmtree(folder, ignore_errors=True)


def _command_error(done: Completed) -> str:
    name = Path(done.argv[0]).name if done.argv else "?"
    return f"{name} {short_error(done)}"
