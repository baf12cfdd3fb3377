"""The base of every error either program reports over HTTP."""

from __future__ import annotations

from typing import Any


class CamfleetError(Exception):
    """Base of every error either program reports over HTTP (rendered by one handler)."""

    status_code = 500
    code = "error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
