"""The coordinator's errors: each carries its HTTP status and a message a person can act on."""

from __future__ import annotations

from common.errors import CamfleetError

__all__ = [
    "BadInput",
    "CamfleetError",
    "FleetEmpty",
    "IdentityRefused",
    "NodeBusy",
    "NodeNotFound",
    "NodePending",
    "NodeUnreachable",
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
