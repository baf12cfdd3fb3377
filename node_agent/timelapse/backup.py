"""The end-of-day video to the NAS: rsync over ssh, confirmed by the NAS's own SHA-256.

The dashcam's upload path (``node_agent.dashcam.remote``: the key check, ssh options and
host-key trust, the rsync command, the ``sha256sum`` parser) is reused as it is; only the
bookkeeping differs: one file, no ledger, nothing deleted here. The video goes to
``{dest_path}/{cam_id}/videos/timelapse_<CAM_ID>_<YYYYMMDD>.mp4``.

Why rsync and not the coordinator's offload: the offload is a pull by the coordinator
(or a laptop) of recordings, when one is there; the cycle's video is due every evening
on a node that may stand alone in a field, and the observability spec's ``backing_up``
is "running rsync to NAS". The video stays downloadable from the node
(``GET /api/v1/timelapse/videos/{name}``) either way.
"""

from __future__ import annotations

import hashlib
import logging
import math
import posixpath
from pathlib import Path

from node_agent.commands import CommandRunner
from node_agent.dashcam.remote import (
    Remote,
    key_problem,
    mkdir_command,
    parse_sha256sum,
    remote_path,
    rsync_argv,
    sha256sum_command,
    short_error,
)
from node_agent.dashcam.settings import UploadSettings
from node_agent.errors import AgentError

log = logging.getLogger(__name__)

MIN_RATE_BYTES_S = 100_000  # a call's time-out assumes at least this rate (a slow Wi-Fi)


class BackupFailed(AgentError):
    """The video did not reach the backup target, or its copy there is not the same."""

    status_code = 502


def file_sha256(path: Path) -> str:
    """The SHA-256 of a local file, read in chunks."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class RsyncBackup:
    """Send one video to ``target`` and check the NAS's copy; returns where it went."""

    def __init__(
        self,
        target: UploadSettings,
        *,
        data_dir: Path,
        cam_id: str,
        runner: CommandRunner | None = None,
        rsync: str = "rsync",
        ssh: str = "ssh",
    ) -> None:
        self._target = target
        self._data_dir = data_dir
        self._cam_id = cam_id
        self._runner = runner or CommandRunner()
        self._rsync = rsync
        self._ssh = ssh

    def __call__(self, video: Path, rel: str) -> str:
        """rsync ``video`` (``rel`` to the timelapse folder) and confirm it by SHA-256."""
        t = self._target
        problem = key_problem(t.ssh_key)
        if problem is not None:
            raise BackupFailed(problem.replace("dashcam.upload.", "timelapse.backup."))
        remote = Remote.from_settings(t, self._data_dir, ssh=self._ssh)
        remote.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        dest = remote_path(t.dest_path, self._cam_id, rel)
        size = video.stat().st_size
        timeout = t.connect_timeout_s + 30 + size / MIN_RATE_BYTES_S
        made = self._runner.run(
            remote.ssh_argv(mkdir_command(posixpath.dirname(dest))), timeout_s=timeout
        )
        if not made.ok:
            raise BackupFailed(
                f"cannot reach the backup target {remote.login}:{t.port}: "
                f"{remote.fatal_error(made.stderr) or short_error(made)}"
            )
        argv = rsync_argv(
            self._rsync,
            t.rsync_flags,
            remote,
            video,
            dest,
            repair=True,  # compare contents: a same-size copy of an earlier render is replaced
            io_timeout_s=max(10, math.ceil(t.connect_timeout_s * 3)),
        )
        sent = self._runner.run(argv, timeout_s=timeout)
        if not sent.ok:
            raise BackupFailed(f"rsync of {rel} to {remote.login} failed: {short_error(sent)}")
        hashed = self._runner.run(
            remote.ssh_argv(sha256sum_command(dest, t.remote_hasher)),
            timeout_s=timeout,
            mutates=False,
        )
        if not hashed.ok:
            raise BackupFailed(f"the NAS could not hash {dest}: {short_error(hashed)}")
        try:
            theirs = parse_sha256sum(hashed.stdout, dest)
        except ValueError as err:
            raise BackupFailed(f"the NAS's SHA-256 of {dest} cannot be read: {err}") from err
        ours = file_sha256(video)
        if theirs != ours:
            raise BackupFailed(
                f"the NAS's copy of {rel} differs (SHA-256 {theirs[:12]}..., "
                f"ours {ours[:12]}...): the backup is not confirmed"
            )
        where = remote.where(dest)
        log.info("timelapse video %s backed up to %s", rel, where)
        return where
