"""One file pulled to disk: resumed, hashed while written, fsynced, verified, then renamed.

The copy grows as ``.{name}.part`` beside its final place. An existing ``.part`` is hashed
again and continued with a Range request; a server that ignores the Range (200) restarts it
cleanly. A dropped connection is retried with backoff from the byte reached. Only a copy
whose SHA-256 and size equal the manifest's gets the final name; a mismatch is kept as
``{name}.corrupt`` (never deleted, never confirmed).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx

from app.operator.client import error_detail
from common.fsutil import fsync_dir

READ_CHUNK = 1 << 20
RETRIES = 4  # after the first attempt
BACKOFF_S = 0.5
BACKOFF_MAX_S = 8.0
RETRYABLE_STATUS = frozenset({502, 503, 504})
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")

Progress = Callable[[int], None]  # called with the bytes the copy has so far


@dataclass
class Pulled:
    """What became of one file."""

    path: Path
    size_bytes: int  # bytes the copy has
    sha256: str  # of the copy ("" when nothing was read)
    verified: bool = False
    already_present: bool = False
    fetched_bytes: int = 0  # transferred by this run
    resumed_from: int = 0  # bytes of an earlier .part kept and continued
    restarted: bool = False  # the server ignored a Range; the copy began again
    attempts: int = 0
    corrupt_path: Path | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


class _Fatal(Exception):
    """Stop fetching this file (not retried)."""


class _Retry(Exception):
    """Try again from the byte reached."""


def part_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.part")


def free_aside_name(final: Path, suffix: str) -> Path:
    """``{name}.{suffix}``, or ``{name}.{suffix}-2`` ... when taken: nothing is overwritten."""
    candidate = final.with_name(f"{final.name}.{suffix}")
    n = 2
    while candidate.exists():
        candidate = final.with_name(f"{final.name}.{suffix}-{n}")
        n += 1
    return candidate


def hash_file(path: Path, limit: int | None = None) -> tuple[str, int]:
    """SHA-256 and length of ``path`` (its first ``limit`` bytes when given)."""
    h = hashlib.sha256()
    length = 0
    with open(path, "rb") as fh:
        while limit is None or length < limit:
            want = READ_CHUNK if limit is None else min(READ_CHUNK, limit - length)
            block = fh.read(want)
            if not block:
                break
            h.update(block)
            length += len(block)
    return h.hexdigest(), length


class _Copy:
    """The open ``.part``: its bytes and their running hash always agree."""

    def __init__(self, path: Path, expected_size: int) -> None:
        self.path = path
        self.hasher = hashlib.sha256()
        self.length = 0
        if path.exists():
            with open(path, "rb") as fh:
                while block := fh.read(READ_CHUNK):
                    self.hasher.update(block)
                    self.length += len(block)
        self.fh: BinaryIO = open(path, "r+b" if path.exists() else "w+b")  # noqa: SIM115
        if self.length > expected_size:
            self.restart()  # longer than the recording: not a prefix of it
        self.fh.seek(self.length)

    def restart(self) -> None:
        self.fh.seek(0)
        self.fh.truncate()
        self.hasher = hashlib.sha256()
        self.length = 0

    def write(self, block: bytes) -> None:
        self.fh.write(block)
        self.hasher.update(block)
        self.length += len(block)

    def sync_close(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()


def _range_start(resp: httpx.Response) -> int | None:
    m = CONTENT_RANGE.match(resp.headers.get("content-range", ""))
    return int(m.group(1)) if m else None


def _one_attempt(
    http: httpx.Client, url: str, copy: _Copy, out: Pulled, size: int, progress: Progress
) -> None:
    """One GET from the byte reached; raises _Retry or _Fatal, returns at the answer's end."""
    headers = {"Range": f"bytes={copy.length}-"} if copy.length else {}
    try:
        with http.stream("GET", url, headers=headers) as resp:
            if resp.status_code == 416:
                return  # the source has no byte past ours: verification decides
            if resp.status_code in RETRYABLE_STATUS:
                resp.read()
                raise _Retry(f"{resp.status_code}: {error_detail(resp)}")
            if not resp.is_success:
                resp.read()
                raise _Fatal(f"{url} answered {resp.status_code}: {error_detail(resp)}")
            if resp.status_code == 206 and _range_start(resp) != copy.length:
                raise _Fatal(
                    f"{url} answered a range that does not start at byte {copy.length}: "
                    f"{resp.headers.get('content-range')!r}"
                )
            if resp.status_code == 200 and copy.length:
                copy.restart()  # the server ignored the Range: begin again, cleanly
                out.restarted = True
                out.resumed_from = 0
            for block in resp.iter_bytes():
                if copy.length + len(block) > size:
                    # More than the manifest's size: keep what exceeds it too (the bad copy
                    # is evidence), and stop reading.
                    copy.write(block)
                    out.fetched_bytes += len(block)
                    progress(copy.length)
                    return
                copy.write(block)
                out.fetched_bytes += len(block)
                progress(copy.length)
    except httpx.TransportError as err:
        raise _Retry(f"{type(err).__name__}: {err}") from err


def pull_file(
    http: httpx.Client,
    url: str,
    final: Path,
    sha256: str,
    size: int,
    progress: Progress = lambda _n: None,
    *,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Pulled:
    """Fetch ``url`` into ``final`` unless a verified copy is there; the outcome, never raises
    for a transfer problem (it is in ``error``)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    out = Pulled(path=final, size_bytes=0, sha256="")
    if final.exists():
        digest, length = hash_file(final)
        if digest == sha256 and length == size:
            out.size_bytes, out.sha256 = length, digest
            out.verified = out.already_present = True
            progress(length)
            return out
        aside = free_aside_name(final, "corrupt")
        os.replace(final, aside)
        fsync_dir(final.parent)
        out.warnings.append(
            f"a copy already at {final} differed from the manifest; it is kept as {aside.name}"
        )
    part = part_path(final)
    copy = _Copy(part, size)
    out.resumed_from = copy.length
    progress(copy.length)
    try:
        while copy.length < size:
            out.attempts += 1
            try:
                before = copy.length
                _one_attempt(http, url, copy, out, size, progress)
                if copy.length == before or copy.length >= size:
                    break  # the source has no more (a short file) or we have it all
            except _Retry as why:
                if out.attempts > retries:
                    out.error = f"gave up after {out.attempts} attempts: {why}"
                    break
                sleep(min(BACKOFF_MAX_S, backoff_s * 2 ** (out.attempts - 1)))
            except _Fatal as why:
                out.error = str(why)
                break
        copy.sync_close()
    except BaseException:
        copy.fh.close()
        raise
    out.size_bytes, out.sha256 = copy.length, copy.hasher.hexdigest()
    if out.error is not None and out.size_bytes < size:
        return out  # incomplete: the .part stays for the next run to resume
    if out.sha256 == sha256 and out.size_bytes == size:
        os.replace(part, final)
        fsync_dir(final.parent)
        out.verified = True
        out.error = None
        return out
    corrupt = free_aside_name(final, "corrupt")
    os.replace(part, corrupt)
    fsync_dir(final.parent)
    if out.resumed_from and not out.restarted:
        # The bytes kept from an earlier run may be what differs: fetch it whole, once.
        again = pull_file(
            http,
            url,
            final,
            sha256,
            size,
            progress,
            retries=retries,
            backoff_s=backoff_s,
            sleep=sleep,
        )
        again.warnings = [
            *out.warnings,
            f"the resumed copy did not match the manifest (kept as {corrupt.name}); "
            "fetched again from byte 0",
            *again.warnings,
        ]
        again.fetched_bytes += out.fetched_bytes
        again.attempts += out.attempts
        again.restarted = True
        return again
    out.corrupt_path = corrupt
    out.error = (
        f"checksum mismatch: the copy has {out.size_bytes} bytes with sha256 {out.sha256}, "
        f"the manifest says {size} bytes with sha256 {sha256}; the copy is kept as "
        f"{corrupt.name} and nothing is confirmed"
    )
    return out
