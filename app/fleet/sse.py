"""A bounded server-sent events parser for what a node streams (it trusts nothing)."""

from __future__ import annotations

from dataclasses import dataclass


class StreamProblem(Exception):
    """The stream broke a rule (a line or an event over its cap, ...)."""


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event (``kind`` "comment" for a comment line, data empty)."""

    kind: str
    data: str


class SseParser:
    """Feed bytes, get events; a line over ``max_line_bytes`` or an event whose data grows
    over ``max_event_bytes`` raises StreamProblem at once (nothing unbounded is kept)."""

    def __init__(self, max_line_bytes: int, max_event_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self.max_event_bytes = max_event_bytes
        self._buf = bytearray()
        self._kind = "message"
        self._data: list[str] = []
        self._data_len = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events completed by ``chunk``."""
        self._buf += chunk
        out: list[SseEvent] = []
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end < 0:
                break
            line = bytes(self._buf[start:end])
            start = end + 1
            if len(line) > self.max_line_bytes:
                raise StreamProblem(
                    f"a line of {len(line)} bytes (the cap is {self.max_line_bytes})"
                )
            event = self._line(line.removesuffix(b"\r"))
            if event is not None:
                out.append(event)
        del self._buf[:start]
        if len(self._buf) > self.max_line_bytes:
            raise StreamProblem(
                f"a line longer than {self.max_line_bytes} bytes without an end of line"
            )
        return out

    def _line(self, raw: bytes) -> SseEvent | None:
        try:
            line = raw.decode()
        except UnicodeDecodeError as err:
            raise StreamProblem("a line that is not UTF-8") from err
        if line == "":
            if not self._data:
                self._kind = "message"
                return None
            event = SseEvent(self._kind, "\n".join(self._data))
            self._kind, self._data, self._data_len = "message", [], 0
            return event
        if line.startswith(":"):
            return SseEvent("comment", "")
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._kind = value[:64]
        elif name == "data":
            self._data_len += len(value) + 1
            if self._data_len > self.max_event_bytes:
                raise StreamProblem(f"an event over {self.max_event_bytes} bytes")
            self._data.append(value)
        return None  # id, retry and unknown fields are ignored
