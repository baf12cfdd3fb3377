"""Downloads with resume: the partial file stays in the data folder and an interrupted
transfer continues with an HTTP Range request, capped in size."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


class DownloadError(Exception):
    """The file could not be fetched; the message says why."""


def _once(
    client: httpx.Client,
    url: str,
    part: Path,
    max_bytes: int,
    on_chunk: Callable[[int], None],
) -> bool:
    """One attempt: True when the file is complete, False when the connection broke."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with client.stream("GET", url, headers=headers) as answer:
            if answer.status_code == 416 and have:
                part.unlink()  # the partial file is longer than the asset: start over
                return False
            if answer.status_code == 200:
                have = 0  # the server ignores Range: start over
            elif answer.status_code != 206:
                raise DownloadError(f"{url} answered HTTP {answer.status_code}")
            length = answer.headers.get("content-length")
            if length is not None and length.isdigit() and have + int(length) > max_bytes:
                raise DownloadError(f"{url} is larger than the {max_bytes} bytes allowed")
            with part.open("r+b" if have else "wb") as fh:
                fh.seek(have)
                fh.truncate()
                for chunk in answer.iter_bytes():  # as it arrives: a break keeps it
                    have += len(chunk)
                    if have > max_bytes:
                        raise DownloadError(f"{url} is larger than the {max_bytes} bytes allowed")
                    fh.write(chunk)
                    on_chunk(have)
                fh.flush()
                os.fsync(fh.fileno())
            return True  # a body cut short raises (httpx checks Content-Length)
    except (httpx.TransportError, httpx.RemoteProtocolError) as err:
        log.warning("download of %s broke at %d bytes (%s); resuming", url, have, err)
        return False


def download(
    url: str,
    dest: Path,
    *,
    size: int | None,
    max_bytes: int,
    attempts: int = 5,
    timeout_s: float = 30.0,
    on_chunk: Callable[[int], None] = lambda _n: None,
) -> Path:
    """Fetch ``url`` to ``dest`` (resuming ``dest.part``); the complete file's path."""
    if size is not None and size > max_bytes:
        raise DownloadError(f"{dest.name} is {size} bytes, more than the {max_bytes} allowed")
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
        for attempt in range(attempts):
            if _once(client, url, part, max_bytes, on_chunk):
                got = part.stat().st_size
                if size is not None and got != size:
                    if got > size:
                        part.unlink()
                    raise DownloadError(f"{dest.name}: got {got} bytes, the feed says {size}")
                os.replace(part, dest)
                return dest
            time.sleep(min(0.2 * 2**attempt, 2.0))
    raise DownloadError(f"{url}: the transfer broke {attempts} times")
