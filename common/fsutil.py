"""File helpers: atomic writes (temp + fsync + rename) for files another process reads,
and the check that a file holding a secret is private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

# A secret's file may be read by its owner only (ssh's rule for a private key).
PRIVATE_MODES = (0o600, 0o400)


def private_file_problem(
    path: Path, what: str, *, exposes: str, missing: str = "", after: str = ""
) -> str | None:
    """Why ``path`` may not hold a secret (missing, not a file, readable by others), with
    the command that fixes it; None when it is fine. ``what`` names the setting, ``exposes``
    what others could read, ``missing`` how to make the file, ``after`` what did not
    happen. The file's contents are never read here."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return f"{what} {path} does not exist" + (f": {missing}" if missing else "")
    except OSError as err:
        return f"{what} {path} cannot be read: {err.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{what} {path} is not a file"
    mode = stat.S_IMODE(st.st_mode)
    if mode not in PRIVATE_MODES:
        return (
            f"{what} {path} has mode {mode:04o}: others could read {exposes}; run "
            f"`chmod 600 {path}`" + (f" ({after})" if after else "")
        )
    return None


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
