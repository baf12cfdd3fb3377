"""Status endpoint errors, rendered by the agent's one error handler (they are AgentErrors)."""

from __future__ import annotations

from node_agent.errors import AgentError


class StatusFileUnavailable(AgentError):
    """The status file is switched off, or not written yet."""

    status_code = 404
    code = "status_file_unavailable"


class NoVideo(AgentError):
    """No timelapse video has been rendered on this node."""

    status_code = 404
    code = "no_video"
