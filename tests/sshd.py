"""The real sshd the dashcam upload's tests send to: ``bench.sshd.running_sshd`` (written once
for the tests and the benchmark), plus the upload settings that reach it."""

from __future__ import annotations

from pathlib import Path

from bench.sshd import Sshd, SshdError, running_sshd
from node_agent.dashcam.settings import UploadSettings

__all__ = ["Sshd", "SshdError", "running_sshd", "upload_settings"]


def upload_settings(sshd: Sshd, dest: Path, **overrides: object) -> UploadSettings:
    """``dashcam.upload`` for ``sshd``: its key, its host key (strict), ``dest`` as the NAS."""
    values: dict[str, object] = {
        "host": sshd.host,
        "user": sshd.user,
        "port": sshd.port,
        "dest_path": str(dest),
        "ssh_key": sshd.client_key,
        "known_hosts": sshd.known_hosts,
        "connect_timeout_s": 5.0,
        "backoff_base_s": 2.0,
        "backoff_max_s": 60.0,
    }
    return UploadSettings.model_validate(values | overrides)
