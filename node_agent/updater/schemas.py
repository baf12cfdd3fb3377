"""The updater's wire models: ``/api/v1/update/check``, ``/apply`` and ``/status``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from node_agent.wirebase import Answer, Wire

# A release's version as it appears in paths (versions/<v>/) and archive names: PEP 440
# public versions and local labels, nothing that could climb out of a folder.
# No "+" (a local version): each version names a folder and the finisher's unit
# instance (camfleet-update@VERSION.service), which systemd would have to escape.
VERSION_PATTERN = r"^[0-9][0-9A-Za-z._-]{0,63}$"
Version = Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
MAX_NOTES = 4000  # characters of a release's notes kept in an answer
MAX_HISTORY = 20  # records kept in the history file and in an answer


class UpdateCheck(Answer):
    """This node's version and the newest release the feed offers."""

    current: str
    available: str | None = None
    update_available: bool = False
    notes: str = Field(default="", max_length=MAX_NOTES)
    published_at: str | None = None
    error: str | None = Field(default=None, description="Why the feed could not be read.")


class UpdateApplyRequest(Wire):
    """Which release to install; None: the newest in the feed."""

    version: Version | None = None


class UpdateState(StrEnum):
    """Where an update is."""

    idle = "idle"
    queued = "queued"  # waiting for the recorder to go idle (updater.retry_when_idle)
    downloading = "downloading"
    verifying = "verifying"
    installing = "installing"
    switching = "switching"
    restarting = "restarting"
    checking = "checking"
    done = "done"
    failed = "failed"
    rolled_back = "rolled_back"


class UpdateRecord(Answer):
    """One update attempt's outcome."""

    version: str
    from_version: str
    at: str = Field(description="ISO 8601 UTC")
    result: Literal["installed", "rolled_back", "refused", "failed"]
    why: str | None = None
    id: str | None = Field(default=None, description="The attempt's id (one record each).")


class UpdateProgress(Answer):
    """The update in progress (or the last one's end) and the history."""

    state: UpdateState = UpdateState.idle
    current: str
    target: str | None = None
    queued: bool = False
    detail: str | None = None
    history: list[UpdateRecord] = Field(default_factory=list, max_length=MAX_HISTORY)
