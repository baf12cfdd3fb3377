"""The base of every wire model and the shapes of the ids in them.

Here rather than in ``node_agent.schemas`` so that each capability's own schemas
(``sync/schemas.py``, ``audio/schemas.py``) can use them: ``node_agent.schemas``
imports those modules to build ``NodeStatus``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

# Session ids end up in file names, so they are restricted to a safe alphabet:
# no path separators, no dots, no underscores (the file name's field separator).
SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
CAM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
NODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
COMMAND_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

SessionId = Annotated[str, StringConstraints(pattern=SESSION_ID_PATTERN)]
CamId = Annotated[str, StringConstraints(pattern=CAM_ID_PATTERN)]
NodeId = Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN)]
CommandId = Annotated[str, StringConstraints(pattern=COMMAND_ID_PATTERN)]
# Values that end up in an HTTP header or a page: printable ASCII, no spaces, bounded.
HeaderToken = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{16,128}$")]
PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
ShortText = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,64}$")]
Hostname = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{0,64}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Where a verified copy was made, e.g. "coordinator:HOST:/srv/archive/S1/f.mp4": printable.
CopyPlace = Annotated[str, StringConstraints(pattern=r"^[\x20-\x7e]{1,512}$")]


class Wire(BaseModel):
    """Base of every request body: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    """Base of every answer and status: fields this version does not know are ignored, so a
    newer peer (a rolling upgrade) still works with an older reader."""

    model_config = ConfigDict(extra="ignore")


class Position(StrEnum):
    """Where a camera stands in the rig."""

    left = "left"
    centre = "centre"
    right = "right"
    other = "other"


class Codec(StrEnum):
    """Video codecs the recorder can be asked for."""

    h264 = "h264"
    h265 = "h265"


class RecorderState(StrEnum):
    """The recorder's life cycle."""

    idle = "idle"
    armed = "armed"  # waiting for its scheduled start_at
    recording = "recording"
    stopping = "stopping"
