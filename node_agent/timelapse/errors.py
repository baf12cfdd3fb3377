"""Timelapse errors, rendered by the agent's one error handler (they are AgentErrors)."""

from __future__ import annotations

from node_agent.errors import AgentError


class TimelapseConflict(AgentError):
    """The timelapse is already running, the camera is busy, or a render is under way."""

    status_code = 409
    code = "timelapse_conflict"


class NoStills(AgentError):
    """There is nothing to show or render: no still for that day (or at all)."""

    status_code = 404
    code = "no_stills"


class TimelapseFailure(AgentError):
    """The stills folder or the video encoder failed; the message says how."""

    status_code = 503
    code = "timelapse_failure"
