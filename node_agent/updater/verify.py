"""What makes a release trustworthy: its SHA-256 and an ed25519 signature over it.

The signature covers ``camfleet-release-v1\\n`` + the archive's file name + ``\\n`` + the
archive's raw SHA-256 digest (32 bytes). Signing the digest rather than the bytes lets
``camfleet release sign`` and the node hash a large archive once, streaming; naming the
file binds the signature to one version, so a validly signed old archive cannot be
offered under a newer release's name. The key is pinned in ``updater.public_key``
(raw 32 bytes, URL-safe base64 like the node keys of ``common.identity``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.identity import b64, unb64

CONTEXT = b"camfleet-release-v1\n"


class VerifyError(Exception):
    """The archive is not the one the release's publisher signed; the message says why."""


def sha256_file(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def payload(archive_name: str, sha256_hex: str) -> bytes:
    """What the release signature covers."""
    return CONTEXT + archive_name.encode("utf-8") + b"\n" + bytes.fromhex(sha256_hex)


def sign_archive(key: Ed25519PrivateKey, archive_name: str, sha256_hex: str) -> str:
    """The ``.sig`` file's text: the signature, URL-safe base64."""
    return b64(key.sign(payload(archive_name, sha256_hex)))


def parse_sha256_file(text: str, archive_name: str) -> str:
    """The hex digest of a ``sha256sum``-style line (``HEX  NAME`` or just ``HEX``)."""
    first = text.strip().splitlines()[:1]
    match = re.match(r"^([0-9a-fA-F]{64})(?:\s+\*?(\S+))?\s*$", first[0] if first else "")
    if match is None:
        raise VerifyError("the .sha256 file holds no SHA-256")
    if match.group(2) is not None and match.group(2) != archive_name:
        raise VerifyError(f"the .sha256 file names {match.group(2)!r}, not {archive_name!r}")
    return match.group(1).lower()


def verify_archive(path: Path, archive_name: str, sha_text: str, sig_text: str, key: str) -> str:
    """Check ``path`` against its published checksum and signature; its SHA-256 when both
    hold, VerifyError otherwise (nothing has been extracted yet)."""
    expected = parse_sha256_file(sha_text, archive_name)
    actual = sha256_file(path)
    if actual != expected:
        raise VerifyError(
            f"{archive_name}: SHA-256 {actual} is not the published {expected} "
            "(a damaged or altered download)"
        )
    try:
        public = Ed25519PublicKey.from_public_bytes(unb64(key))
        public.verify(unb64(sig_text.strip()), payload(archive_name, actual))
    except (ValueError, InvalidSignature) as err:
        raise VerifyError(
            f"{archive_name}: the signature does not verify against updater.public_key "
            "(not signed by the release key)"
        ) from err
    return actual
