"""The join's wire models: the challenge, the signed join and the coordinator's answer."""

from __future__ import annotations

from pydantic import Field, StrictInt

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


class JoinRequest(Wire):
    """What an agent sends to ``POST /api/v1/nodes/join`` on the coordinator.

    Headers ``X-Camfleet-Nonce`` and ``X-Camfleet-Signature`` carry the proof: the node's
    Ed25519 signature over the nonce and this exact body (``common.identity.sign``).
    """

    node_id: NodeId
    cam_id: CamId
    position: Position
    port: StrictInt = Field(ge=1, le=65535, description="Where the agent listens.")
    api_token: HeaderToken = Field(description="Bearer token the agent accepts.")
    public_key: PublicKey = Field(
        description="The node's Ed25519 public key (raw, URL-safe base64): registered at the "
        "first join; every later join of this node_id must be signed with its private half."
    )
    version: ShortText
    hostname: Hostname = ""
    recorder_state: RecorderState = RecorderState.idle
    session_id: SessionId | None = None


class JoinResponse(Answer):
    """The coordinator's answer to a join or heartbeat."""

    node_id: str
    address: str
    heartbeat_interval_s: float
    approved: bool = Field(
        default=True, description="False while the node waits for the operator's approval."
    )
