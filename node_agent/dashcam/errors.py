"""The dashcam's errors, each with its HTTP status and a message a person can act on."""

from __future__ import annotations

from node_agent.errors import AgentError


class DashcamBusy(AgentError):
    """A cycle is running already (here, or another run holds the staging folder's lock)."""

    status_code = 409
    code = "dashcam_busy"


class DashcamDisabled(AgentError):
    """The dashcam mode is off on this node (``dashcam.enabled`` is false)."""

    status_code = 404
    code = "dashcam_disabled"


class DashcamStepFailed(RuntimeError):
    """A step of a cycle failed (data mode, detection, mount): the cycle ends, the next retries."""
