"""Node identity: an Ed25519 key each node makes for itself, and the join proof built on it.

A node's first join registers its public key; every later join or heartbeat for that
``node_id`` carries a signature over a fresh, single-use challenge from the coordinator
and the exact body sent, so neither a copied fleet token nor a replayed heartbeat can
speak for the node. The coordinator stores public keys only: nothing it holds lets
anyone sign as a node.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

NONCE_HEADER = "X-Camfleet-Nonce"
SIGNATURE_HEADER = "X-Camfleet-Signature"
# Binds a signature to its purpose, so one made for a join is good for nothing else.
_CONTEXT = b"camfleet-join-v1\n"


def b64(data: bytes) -> str:
    """URL-safe base64 without padding (header- and JSON-safe)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """The inverse of ``b64``; ValueError on anything else."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as err:
        raise ValueError("not URL-safe base64") from err


def signing_payload(nonce: str, body: bytes) -> bytes:
    """What a join signature covers: the challenge and the body's SHA-256."""
    return _CONTEXT + nonce.encode("ascii") + b"\n" + hashlib.sha256(body).digest()


def sign(key: Ed25519PrivateKey, nonce: str, body: bytes) -> str:
    """The signature header's value for a join ``body`` answering ``nonce``."""
    return b64(key.sign(signing_payload(nonce, body)))


def verify(public_key: str, nonce: str, body: bytes, signature: str) -> bool:
    """True when ``signature`` is the holder of ``public_key`` signing this nonce and body."""
    try:
        key = Ed25519PublicKey.from_public_bytes(unb64(public_key))
        key.verify(unb64(signature), signing_payload(nonce, body))
    except (ValueError, InvalidSignature):
        return False
    return True


def public_key_text(key: Ed25519PrivateKey) -> str:
    """The public half, as sent at join (43 characters)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64(raw)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The node's key, made on first use and kept (0600, written atomically) at ``path``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return key
    loaded = serialization.load_pem_private_key(data, password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 key")
    return loaded
