"""The join's wire models: the challenge, the signed join and the coordinator's answer."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StringConstraints, model_validator

from node_agent.wirebase import (
    Answer,
    CamId,
    HeaderToken,
    Hostname,
    NodeId,
    Position,
    PublicKey,
    RecorderState,
    SessionId,
    ShortText,
    Wire,
)


class JoinChallengeRequest(Wire):
    """``POST /api/v1/nodes/challenge``: a nonce to sign for the next join of ``node_id``."""

    node_id: NodeId


class JoinChallenge(Answer):
    """A single-use nonce; the join that follows signs it (``common.identity``)."""

    node_id: str
    nonce: str
    expires_in_s: float


# A nonce or an HMAC: 32 bytes of URL-safe base64 (common.fleetproof).
Nonce = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
FleetId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]
# An API token sealed with AES-GCM: 12-byte IV, up to 128 bytes, 16-byte tag.
Sealed = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{40,210}$")]


class HandshakeRequest(Wire):
    """``POST /api/v1/nodes/handshake``: the first step of the mutual proof (no token)."""

    node_id: NodeId
    client_nonce: Nonce = Field(description="A fresh random nonce the agent made.")


class Handshake(Answer):
    """The coordinator proves it holds the fleet token before the agent sends anything
    secret: ``proof`` is the HMAC of ``common.fleetproof.coordinator_proof``."""

    node_id: str
    nonce: str = Field(description="The coordinator's single-use nonce.")
    expires_in_s: float
    fleet_id: str
    api_version: str
    seen_address: str = Field(description="The address the coordinator saw this request from.")
    proof: str


class JoinRequest(Wire):
    """What an agent sends to ``POST /api/v1/nodes/join`` on the coordinator.

    Headers ``X-Camfleet-Nonce`` and ``X-Camfleet-Signature`` carry the proof: the node's
    Ed25519 signature over the nonce and this exact body (``common.identity.sign``).
    """

    node_id: NodeId
    cam_id: CamId
    position: Position
    port: StrictInt = Field(ge=1, le=65535, description="Where the agent listens.")
    api_token: HeaderToken | None = Field(
        default=None, description="Bearer token the agent accepts (the bearer path)."
    )
    sealed_api_token: Sealed | None = Field(
        default=None,
        description="The same token sealed for this handshake (the mutual path, with "
        "X-Camfleet-Fleet-Proof): only a holder of the fleet token can open it.",
    )
    public_key: PublicKey = Field(
        description="The node's Ed25519 public key (raw, URL-safe base64): registered at the "
        "first join; every later join of this node_id must be signed with its private half."
    )
    version: ShortText
    hostname: Hostname = ""
    recorder_state: RecorderState = RecorderState.idle
    session_id: SessionId | None = None

    @model_validator(mode="after")
    def _one_token(self) -> JoinRequest:
        if (self.api_token is None) == (self.sealed_api_token is None):
            raise ValueError("send exactly one of api_token and sealed_api_token")
        return self


class JoinResponse(Answer):
    """The coordinator's answer to a join or heartbeat."""

    node_id: str
    address: str
    heartbeat_interval_s: float
    approved: bool = Field(
        default=True, description="False while the node waits for the operator's approval."
    )
