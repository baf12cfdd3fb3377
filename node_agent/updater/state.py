"""The updater's files in ``data_dir/updates/``, each written temp + fsync + rename.

- ``progress.json``: the state of the update in progress (or the last one's end);
- ``history.json``: the last attempts (``UpdateRecord``), newest last;
- ``pending.json``: the marker of an update past its install: from, to, the phase, and
  what the finisher needs to restart, check and commit or roll back. While it exists the
  node is mid-update; ``finisher.lock`` is flocked by the finisher that owns it.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from common.fsutil import atomic_write_bytes
from node_agent.updater.schemas import MAX_HISTORY, UpdateRecord, UpdateState


def now_iso() -> str:
    """The time for a history record: ISO 8601, UTC."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Pending:
    """An update between install and commit (see module docstring)."""

    id: str
    from_version: str
    to_version: str
    install_root: str
    base: str
    unit: str
    systemctl: str
    health_url: str
    token: str
    health_deadline_s: float
    keep_versions: int
    phase: str = "switching"  # switching → restarting → checking → (committed | rolling_back)
    attempts: int = 0
    why: str | None = None
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class UpdateFiles:
    """Reads and writes the files above."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "updates"
        self.progress_path = self.dir / "progress.json"
        self.history_path = self.dir / "history.json"
        self.pending_path = self.dir / "pending.json"
        self.lock_path = self.dir / "finisher.lock"

    def _write(self, path: Path, doc: Any, mode: int = 0o644) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(doc, indent=1).encode(), mode=mode)

    def _read(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def progress(self) -> dict[str, Any]:
        doc = self._read(self.progress_path)
        return doc if isinstance(doc, dict) else {"state": UpdateState.idle.value}

    def set_progress(self, state: UpdateState, **fields: Any) -> None:
        """Record the state (and target, detail, queued, id) for GET /update/status."""
        self._write(self.progress_path, {"state": state.value, **fields})

    def history(self) -> list[UpdateRecord]:
        doc = self._read(self.history_path)
        records: list[UpdateRecord] = []
        for item in doc if isinstance(doc, list) else []:
            try:
                records.append(UpdateRecord.model_validate(item))
            except ValidationError:
                continue
        return records[-MAX_HISTORY:]

    def record(self, record: UpdateRecord) -> None:
        """Append to the history (once per attempt id)."""
        records = self.history()
        if record.id is not None and any(r.id == record.id for r in records):
            return
        records = [*records, record][-MAX_HISTORY:]
        self._write(self.history_path, [r.model_dump(mode="json") for r in records])

    def pending(self) -> Pending | None:
        doc = self._read(self.pending_path)
        if not isinstance(doc, dict):
            return None
        try:
            return Pending(**doc)
        except TypeError:
            return None

    def set_pending(self, pending: Pending) -> None:
        self._write(self.pending_path, asdict(pending), mode=0o600)  # it holds the token

    def clear_pending(self) -> None:
        self.pending_path.unlink(missing_ok=True)

    def finisher_running(self) -> bool:
        """Whether some process holds ``finisher.lock``."""
        fd = self.try_lock()
        if fd is None:
            return True
        os.close(fd)
        return False

    def try_lock(self) -> int | None:
        """The lock's descriptor (held until closed), or None when another holds it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd
