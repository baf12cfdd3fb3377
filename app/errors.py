"""The coordinator's errors: each carries its HTTP status and a message a person can act on."""

from __future__ import annotations

from common.errors import CamfleetError

__all__ = [
    "BadInput",
    "BadName",
    "BadRequest",
    "CamfleetError",
    "FleetEmpty",
    "IdentityRefused",
    "JobNotFound",
    "NodeBusy",
    "NodeNotFound",
    "NodePending",
    "NodeRefused",
    "NodeUnreachable",
    "NotArchived",
    "RecordingNotFound",
    "SessionNotFound",
]


class NodeNotFound(CamfleetError):
    """No node with that id has joined."""

    status_code = 404
    code = "node_not_found"


class SessionNotFound(CamfleetError):
    """No session with that id."""

    status_code = 404
    code = "session_not_found"


class FleetEmpty(CamfleetError):
    """A command was asked of the fleet but no node can take it."""

    status_code = 409
    code = "fleet_empty"


class BadInput(CamfleetError):
    """The request is well-formed but cannot be carried out as asked."""

    status_code = 422
    code = "invalid_request"


class NodeBusy(CamfleetError):
    """The node refused because its camera is busy."""

    status_code = 409
    code = "node_busy"


class NodeUnreachable(CamfleetError):
    """The node did not answer (or answered with an error) when it was asked directly."""

    status_code = 502
    code = "node_unreachable"


class IdentityRefused(CamfleetError):
    """A join or heartbeat that could not prove it comes from the node it names."""

    status_code = 409
    code = "identity_refused"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class NodePending(CamfleetError):
    """The node waits for the operator's approval."""

    status_code = 409
    code = "node_pending"


class RecordingNotFound(CamfleetError):
    """No recording with that id (or node and file name) is known."""

    status_code = 404
    code = "recording_not_found"


class NotArchived(CamfleetError):
    """The recording is known but has no verified copy in the archive yet."""

    status_code = 404
    code = "not_archived"


class JobNotFound(CamfleetError):
    """No offload job with that id."""

    status_code = 404
    code = "job_not_found"


class BadRequest(CamfleetError):
    """A request that cannot be taken as it is (and is not a field's validation)."""

    status_code = 400
    code = "bad_request"


class BadName(BadRequest):
    """A file name with path parts, or outside the agent's alphabet."""

    code = "bad_name"


class NodeRefused(CamfleetError):
    """The node answered a relayed request with an error; its status is passed on."""

    code = "node_refused"

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code
