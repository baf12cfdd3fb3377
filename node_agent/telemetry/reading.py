"""What one collector returns: its value, or why there is none (a broken collector is data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Reading(Generic[T]):
    """One collector's result: ``value`` when it succeeded, else ``error`` saying why."""

    collector: str
    value: T | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the collector succeeded."""
        return self.error is None
