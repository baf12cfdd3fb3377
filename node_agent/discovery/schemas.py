"""The link's state in the agent's status: how the coordinator was found and how it goes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from node_agent.wirebase import Answer


class RejectedCandidate(Answer):
    """An advertised address the agent does not try at the moment, and why."""

    url: str
    reason: str
    retry_in_s: float


class LinkStatus(Answer):
    """``coordinator_link`` in ``GET /api/v1/status``."""

    state: str = Field(description="'joined', 'retrying', or 'searching' (discovery).")
    found_by: Literal["configured", "discovered"]
    url: str | None = Field(default=None, description="The coordinator joined or tried now.")
    seen_address: str | None = Field(
        default=None, description="This node's address as the coordinator saw it last."
    )
    last_error: str | None = None
    last_join_ns: int | None = None
    joins_total: int = 0
    address_changes: int = Field(default=0, description="Own-address changes seen (re-joins).")
    candidates: int = Field(default=0, description="Advertised addresses of this fleet seen.")
    rejected: list[RejectedCandidate] = Field(default_factory=list)
