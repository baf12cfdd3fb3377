"""Severity of a notification, in the spec's order: INFO < WARNING < ERROR < CRITICAL."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """How bad it is; ``min_level`` drops everything below it."""

    info = "INFO"
    warning = "WARNING"
    error = "ERROR"
    critical = "CRITICAL"

    @property
    def rank(self) -> int:
        """0 for INFO up to 3 for CRITICAL."""
        return _ORDER.index(self)

    @classmethod
    def parse(cls, value: str | Level) -> Level:
        """``"warning"``, ``"WARNING"`` or a Level; ValueError naming the choices otherwise."""
        if isinstance(value, Level):
            return value
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            choices = ", ".join(level.value for level in _ORDER)
            raise ValueError(f"{value!r} is not a level; use one of {choices}") from None


_ORDER = (Level.info, Level.warning, Level.error, Level.critical)
