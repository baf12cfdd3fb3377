"""The agent's error tree: each error carries its HTTP status and a message a person can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.errors import CamfleetError

if TYPE_CHECKING:
    from node_agent.schemas import GateResult


class AgentError(CamfleetError):
    """Base of the agent's errors."""

    code = "agent_error"


class BadRequest(AgentError):
    """The request cannot be carried out as asked."""

    status_code = 400
    code = "bad_request"


class NotFound(AgentError):
    """No such recording or session on this node."""

    status_code = 404
    code = "not_found"


class RecordingConflict(AgentError):
    """The recorder is busy with another session, or the session was already recorded."""

    status_code = 409
    code = "recording_conflict"


class ChecksumMismatch(RecordingConflict):
    """A confirm's SHA-256 is not the manifest's: the copy is not this recording."""

    code = "checksum_mismatch"


class RecordingInProgress(RecordingConflict):
    """The recording is still being written: it cannot be confirmed or deleted yet."""

    code = "recording_in_progress"


class NoManifest(RecordingConflict):
    """The recording has no manifest, so there is no SHA-256 to check a copy against."""

    code = "no_manifest"


class RecorderFailure(AgentError):
    """The camera or encoder failed; the message says which and why."""

    status_code = 503
    code = "recorder_failure"


class GateRefused(RecordingConflict):
    """A pre-start gate refused; ``details`` lists each refusing gate and its reason."""

    code = "gate_refused"

    def __init__(self, refused: list[GateResult]) -> None:
        text = "; ".join(f"{g.gate}: {g.reason}" for g in refused)
        super().__init__(
            f"not starting: {text}", [g.model_dump(exclude_defaults=True) for g in refused]
        )
        self.refused = refused


class ConfigInvalid(AgentError):
    """A settings document that does not validate; ``details`` names each dotted key."""

    status_code = 422
    code = "config_invalid"


class ConfigConflict(AgentError):
    """The settings file changed since the version the request read, or the change would
    alter the recording in progress."""

    status_code = 409
    code = "config_conflict"
