"""Read and merge the status file: the observability spec's ``read_status``/``update_status``.

Standard library only, so a program outside camfleet (a cron job, a script) can import
this module, or copy it, and add fields of its own::

    from node_agent.statusfile.writer import update_status
    update_status("/run/camfleet/status.json", last_video={"youtube_url": "https://..."})

Merge rule (the spec's): a dict value is merged one level into an existing dict, any
other value replaces; ``updated_at`` is set to the local time with its UTC offset.
Every write is temp file + fsync + rename (+ fsync of the folder), so a reader sees the
old document or the new one, never half of one. Writers take a lock (a ``threading``
lock per path, and ``flock`` on ``<file>.lock`` for other processes that use this
module), so concurrent writers never lose each other's fields; the read, merge and
rename all happen under it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def now_iso(time_ns: int | None = None) -> str:
    """Local time to the second with its UTC offset, e.g. 2026-02-08T14:23:45+01:00."""
    t = dt.datetime.now() if time_ns is None else dt.datetime.fromtimestamp(time_ns / 1e9)
    return t.astimezone().isoformat(timespec="seconds")


def read_status(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The document at ``path``; an empty dict when it is missing, unreadable or not a
    JSON object (a reader never fails on it)."""
    try:
        with open(path, "rb") as fh:
            doc = json.loads(fh.read())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def merge_fields(status: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` merged into ``status`` (changed in place and returned): a dict merges one
    level into an existing dict, anything else replaces."""
    for key, value in fields.items():
        old = status.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            old.update(value)
        else:
            status[key] = value
    return status


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold this process's lock for ``path`` and ``flock`` on ``<path>.lock``."""
    key = os.path.abspath(path)
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        fd = os.open(f"{key}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock


def write_atomic(path: Path, doc: Mapping[str, Any]) -> None:
    """Write ``doc`` as JSON to a temp file beside ``path``, fsync it, rename it over."""
    data = json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it 0600; other users' programs read it
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def rewrite(
    path: str | os.PathLike[str], change: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """Under the lock: read the document, let ``change`` edit it, set ``updated_at`` and
    write it atomically; returns what was written. Raises OSError when it cannot."""
    target = Path(path)
    with locked(target):
        doc = change(read_status(target))
        doc["updated_at"] = now_iso()
        write_atomic(target, doc)
    return doc


def update_status(path: str | os.PathLike[str], **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the status file (the spec's rule) and write it atomically;
    returns the document written. Raises OSError when the file cannot be written."""
    return rewrite(path, lambda doc: merge_fields(doc, fields))
