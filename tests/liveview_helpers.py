"""Reading a live view (MJPEG) over HTTP in tests: parts counted, one frame decoded."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import httpx
from PIL import Image

from common.mjpeg import MjpegParser


@dataclass
class Watched:
    """What a viewer saw."""

    status: int
    content_type: str
    frames: list[bytes] = field(default_factory=list)
    final: str | None = None  # the text part the stream ended with
    ended: bool = False  # the server ended the stream (rather than the viewer leaving)

    def size(self, index: int = 0) -> tuple[int, int]:
        """The decoded size of frame ``index``."""
        with Image.open(io.BytesIO(self.frames[index])) as img:
            img.load()
            return img.size


def watch(
    client: httpx.Client,
    path: str,
    *,
    seconds: float | None = None,
    frames: int | None = None,
    timeout_s: float = 30.0,
) -> Watched:
    """Read ``path`` until ``frames`` frames came, ``seconds`` passed, or the server ended it."""
    deadline = time.monotonic() + timeout_s
    until = time.monotonic() + seconds if seconds is not None else deadline
    with client.stream("GET", path) as resp:
        seen = Watched(resp.status_code, resp.headers.get("content-type", ""))
        if resp.status_code != 200:
            resp.read()
            seen.final = resp.json().get("detail")
            return seen
        parser = MjpegParser(4 * 1024 * 1024)
        for chunk in resp.iter_bytes():
            for part in parser.feed(chunk):
                if part.is_jpeg:
                    seen.frames.append(part.body)
                else:
                    seen.final = part.body.decode()
            if parser.closed:
                seen.ended = True
                return seen
            if frames is not None and len(seen.frames) >= frames:
                return seen
            now = time.monotonic()
            if now >= until:
                return seen
            assert now < deadline, f"only {len(seen.frames)} frames in {timeout_s} s"
        seen.ended = True
        return seen


def wait_for(predicate: object, timeout_s: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate()`` until it is true."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():  # type: ignore[operator]
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
