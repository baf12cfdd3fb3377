"""Copy one file while hashing it: the SHA-256 is of the bytes that were written.

The copy goes to a hidden temp file beside the target, is fsynced, renamed into place and
its folder fsynced, so a power cut never leaves a half file under the real name. Chunks
are 1 MiB: large enough that a USB mass-storage read is not dominated by system calls.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from common.fsutil import fsync_dir

CHUNK = 1 << 20


class CopyAborted(InterruptedError):
    """``abort()`` said stop (SIGTERM): the temp file is gone, ``dst`` untouched."""


def copy_hashed(
    src: Path, dst: Path, chunk: int = CHUNK, abort: Callable[[], bool] | None = None
) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` (atomically); returns (bytes copied, SHA-256 hex).

    ``abort`` is asked between chunks, so a stop does not wait for a whole file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part-{os.getpid()}")
    digest = hashlib.sha256()
    size = 0
    try:
        with src.open("rb") as fin, tmp.open("wb") as fout:
            while block := fin.read(chunk):
                if abort is not None and abort():
                    raise CopyAborted(f"copy of {src} stopped")
                digest.update(block)
                fout.write(block)
                size += len(block)
            fout.flush()
            os.fsync(fout.fileno())
        st = src.stat()
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))  # keep the camera's time
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dst.parent)
    return size, digest.hexdigest()


def sha256_file(path: Path, chunk: int = CHUNK) -> str:
    """The SHA-256 of ``path``, read in ``chunk`` bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
