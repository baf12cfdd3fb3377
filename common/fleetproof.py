"""Mutual proof of the fleet token: a handshake in which neither side sends a secret first.

A discovered coordinator is only an mDNS answer: anyone on the network can send one. So
the agent never sends the fleet token (nor its API token) to it. Instead:

1. the agent sends a fresh client nonce and its node id (nothing secret);
2. the coordinator answers with its own nonce and ``coordinator_proof``: an HMAC-SHA256,
   keyed by the fleet token, over a label, both nonces, the node id, the fleet id and the
   address it saw the request come from;
3. the agent checks it in constant time, and only then sends its join with
   ``node_proof`` (the same HMAC under another label, so one side's answer can never be
   replayed as the other's) and its API token sealed with AES-GCM under a key derived
   (HKDF) from the fleet token and both nonces.

The fleet token itself never travels. ``fleet_id`` is public: a truncated HMAC of the
token under a fixed label, so it names the fleet without revealing anything about it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.identity import b64, unb64

SERVICE_TYPE = "_camfleet._tcp.local."
API_VERSION = "1"
PROOF_HEADER = "X-Camfleet-Fleet-Proof"
NONCE_BYTES = 32
# A nonce is 43 characters of URL-safe base64; anything longer is refused unread.
NONCE_CHARS = 43
PROOF_CHARS = 43

_FLEET_ID_LABEL = b"camfleet-fleet-id-v1"
_COORDINATOR_LABEL = b"camfleet-coordinator-proof-v1"
_NODE_LABEL = b"camfleet-node-proof-v1"
_SEAL_LABEL = b"camfleet-join-seal-v1"


def fleet_id(fleet_token: str) -> str:
    """The fleet's public name in mDNS: 16 hex characters of HMAC(token, fixed label)."""
    return hmac.new(fleet_token.encode(), _FLEET_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def new_nonce() -> str:
    """A fresh random nonce (43 characters)."""
    return b64(secrets.token_bytes(NONCE_BYTES))


def _transcript(
    label: bytes, client_nonce: str, server_nonce: str, node_id: str, fid: str, extra: str
) -> bytes:
    # Length-prefixed fields: no two different transcripts encode to the same bytes.
    parts = [label, *(p.encode() for p in (client_nonce, server_nonce, node_id, fid, extra))]
    return b"".join(len(p).to_bytes(2, "big") + p for p in parts)


def _mac(fleet_token: str, message: bytes) -> str:
    return b64(hmac.new(fleet_token.encode(), message, hashlib.sha256).digest())


def coordinator_proof(
    fleet_token: str, client_nonce: str, server_nonce: str, node_id: str, fid: str, seen: str
) -> str:
    """What the coordinator answers a handshake with; ``seen`` is the peer address it saw."""
    return _mac(
        fleet_token,
        _transcript(_COORDINATOR_LABEL, client_nonce, server_nonce, node_id, fid, seen),
    )


def node_proof(
    fleet_token: str, client_nonce: str, server_nonce: str, node_id: str, fid: str
) -> str:
    """What the agent's join carries in ``X-Camfleet-Fleet-Proof``."""
    return _mac(fleet_token, _transcript(_NODE_LABEL, client_nonce, server_nonce, node_id, fid, ""))


def same(expected: str, given: str) -> bool:
    """Constant-time comparison of two proofs (False for anything malformed)."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def _seal_key(fleet_token: str, client_nonce: str, server_nonce: str, node_id: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=(client_nonce + "." + server_nonce).encode(),
        info=_SEAL_LABEL + b"\n" + node_id.encode(),
    )
    return hkdf.derive(fleet_token.encode())


def seal(fleet_token: str, client_nonce: str, server_nonce: str, node_id: str, text: str) -> str:
    """``text`` encrypted for the coordinator that answered this handshake (AES-256-GCM)."""
    iv = secrets.token_bytes(12)
    key = _seal_key(fleet_token, client_nonce, server_nonce, node_id)
    return b64(iv + AESGCM(key).encrypt(iv, text.encode(), node_id.encode()))


def unseal(
    fleet_token: str, client_nonce: str, server_nonce: str, node_id: str, sealed: str
) -> str:
    """The inverse of ``seal``; ValueError when it was not sealed for this handshake."""
    raw = unb64(sealed)
    if len(raw) < 12 + 16 + 1:
        raise ValueError("the sealed value is too short")
    key = _seal_key(fleet_token, client_nonce, server_nonce, node_id)
    try:
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], node_id.encode())
    except InvalidTag as err:
        raise ValueError("the sealed value was not sealed for this handshake") from err
    return plain.decode("ascii", "strict")
