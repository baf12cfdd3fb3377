"""The error answers the agent's routes document in OpenAPI, worded once for every router."""

from __future__ import annotations

from typing import Any

from common.http import AUTH_RESPONSES
from node_agent.schemas import ErrorBody

_TEXTS = {
    400: "The name is not a recording name",
    404: "No such recording or session on this node",
    409: "The camera is busy, a gate refused, or the session was already recorded",
    416: "The Range starts at or past the end of the file",
    422: "A value in the request is not valid",
    503: "The camera or the encoder failed",
}


def error_responses(*codes: int, **texts: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: the token errors plus ``codes``; a keyword such as
    ``t409="..."`` words one of them for this route."""
    out = dict(AUTH_RESPONSES)
    for c in codes:
        out[c] = {"model": ErrorBody, "description": texts.get(f"t{c}", _TEXTS[c])}
    return out
