"""UTC time helpers: nanoseconds on the wire and in the database, ISO 8601 for people."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ns() -> int:
    """The current UTC time in ns."""
    return time.time_ns()


def iso(ns: int | None) -> datetime | None:
    """A UTC datetime (serialised with its offset) from ns, keeping microseconds."""
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)
