"""MJPEG over HTTP (multipart/x-mixed-replace): the agent's framing and a bounded parser.

Each part is ``--BOUNDARY``, a Content-Type and a Content-Length header, a blank line,
the body and CRLF. A stream the sender ends on purpose closes with a text/plain part
(its reason) and the closing delimiter ``--BOUNDARY--``. The parser reads what the
agent writes (Content-Length is required) and refuses any part over its size cap, so a
broken or hostile sender cannot make a reader buffer without end.
"""

from __future__ import annotations

from dataclasses import dataclass

BOUNDARY = "camfleetframe"
CONTENT_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
_DELIM = f"--{BOUNDARY}".encode()
MAX_HEAD_BYTES = 1024


class MjpegError(Exception):
    """The stream is not the framing described above, or a part is over the cap."""


@dataclass(frozen=True)
class Part:
    """One part: its content type and body."""

    content_type: str
    body: bytes

    @property
    def is_jpeg(self) -> bool:
        """Whether the part is a frame."""
        return self.content_type == "image/jpeg"


def frame_part(jpeg: bytes) -> bytes:
    """One JPEG as a part."""
    head = f"Content-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
    return _DELIM + b"\r\n" + head + jpeg + b"\r\n"


def final_part(reason: str) -> bytes:
    """The part that ends a stream on purpose: the reason, then the closing delimiter."""
    text = reason.encode()
    head = f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(text)}\r\n\r\n"
    return _DELIM + b"\r\n" + head.encode() + text + b"\r\n" + _DELIM + b"--\r\n"


class MjpegParser:
    """Feed it bytes as they arrive; it returns the parts completed so far."""

    def __init__(self, max_part_bytes: int) -> None:
        self.max_part_bytes = max_part_bytes
        self.closed = False  # the closing delimiter was seen
        self._buf = bytearray()
        self._want: tuple[str, int] | None = None  # the head read: type and length

    def feed(self, data: bytes) -> list[Part]:
        """The parts ``data`` completes; MjpegError when the stream is malformed."""
        self._buf += data
        parts: list[Part] = []
        while not self.closed:
            if self._want is None and not self._read_head():
                break
            assert self._want is not None
            ctype, length = self._want
            if len(self._buf) < length + 2:
                break
            body = bytes(self._buf[:length])
            if self._buf[length : length + 2] != b"\r\n":
                raise MjpegError("a part is longer than its Content-Length")
            del self._buf[: length + 2]
            self._want = None
            parts.append(Part(ctype, body))
        return parts

    def _read_head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        closing = self._buf.startswith(_DELIM + b"--")
        if closing:
            self.closed = True
            return False
        if end < 0:
            if len(self._buf) > MAX_HEAD_BYTES:
                raise MjpegError("a part's head is too long or the boundary is missing")
            return False
        lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        if lines[0].strip() != _DELIM.decode():
            raise MjpegError(f"expected the boundary --{BOUNDARY}, got {lines[0][:40]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        try:
            length = int(headers["content-length"])
        except (KeyError, ValueError):
            raise MjpegError("a part has no Content-Length") from None
        if length < 0 or length > self.max_part_bytes:
            raise MjpegError(f"a part of {length} bytes is over the {self.max_part_bytes}-byte cap")
        self._want = (headers.get("content-type", "").split(";")[0].strip(), length)
        return True
