"""Wire schemas of ``/api/v1/config`` and ``/api/v1/shutdown`` (the coordinator reads
them through ``app/fleet/wire.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ConfigDocument(BaseModel):
    """``GET /api/v1/config``: the node's settings as the file and environment give them."""

    model_config = ConfigDict(extra="ignore")

    path: str = Field(description="The settings file the agent reads at start.")
    version: int = Field(description="Counter of writes by the API; 0 for a hand-made file.")
    written_at: str | None = Field(default=None, description="When the API last wrote it.")
    settings: dict[str, Any] = Field(description="Every setting, secrets shown as '**********'.")
    restart_required: list[str] = Field(
        default_factory=list, description="Keys whose stored value waits for a restart."
    )
    environment_overrides: list[str] = Field(
        default_factory=list,
        description="Keys set in the environment: it wins over the file.",
    )


class ConfigUpdate(BaseModel):
    """``PUT /api/v1/config``: a partial or whole settings document merged into the file."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, Any] = Field(
        description="Nested like the YAML; secrets left out or sent as '**********' are kept."
    )
    if_version: int | None = Field(
        default=None, ge=0, description="Refuse (409) unless the file is at this version."
    )


class ConfigResult(BaseModel):
    """What a PUT did."""

    model_config = ConfigDict(extra="ignore")

    path: str
    version: int
    written_at: str
    changed: list[str] = Field(description="Dotted keys whose stored value changed.")
    applied: list[str] = Field(description="Changed keys in effect now.")
    restart_required: list[str] = Field(description="Changed keys that need an agent restart.")
    environment_overrides: list[str] = Field(
        default_factory=list, description="Changed keys the environment overrides anyway."
    )


class ShutdownAnswer(BaseModel):
    """``POST /api/v1/shutdown``: the sequence has begun; these steps run in this order."""

    model_config = ConfigDict(extra="ignore")

    accepted: bool
    dry_run: bool
    steps: list[str]
    already_shutting_down: bool = False
