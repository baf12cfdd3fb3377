"""``camfleet release keygen`` and ``camfleet release sign``: the publisher's side of
signed updates (docs/updates.md)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path


def add_release_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """``release keygen|sign`` under the camfleet command."""
    p = command("release", "make the release key, and sign a release archive with it")
    actions = p.add_subparsers(dest="release_cmd", required=True, metavar="ACTION")
    keygen = actions.add_parser(
        "keygen", help="write a new ed25519 private key (0600) and print its public half"
    )
    keygen.add_argument("key", help="where to write the private key (refused if it exists)")
    sign = actions.add_parser(
        "sign", help="write ARCHIVE.sha256 and ARCHIVE.sig beside a release archive"
    )
    sign.add_argument("archive", help="camfleet-<version>.tar.gz (or the wheel)")
    sign.add_argument("--key", required=True, help="the private key from release keygen")


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def run_release(args: argparse.Namespace) -> int:
    """0 done; 1 the files could not be read or written; 2 a bad key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from common.identity import public_key_text
    from node_agent.updater.verify import sha256_file, sign_archive

    if args.release_cmd == "keygen":
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            _write_new(Path(args.key), pem)
        except OSError as err:
            print(f"camfleet release keygen: {args.key}: {err.strerror or err}", file=sys.stderr)
            return 1
        print(f"wrote {args.key} (keep it secret); the nodes' settings:")
        print(f"updater:\n  public_key: {public_key_text(key)}")
        return 0
    archive, key_path = Path(args.archive), Path(args.key)
    try:
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        digest = sha256_file(archive)
    except OSError as err:
        print(f"camfleet release sign: {err.filename}: {err.strerror or err}", file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"camfleet release sign: {key_path} is not a key: {err}", file=sys.stderr)
        return 2
    if not isinstance(loaded, Ed25519PrivateKey):
        print(f"camfleet release sign: {key_path} is not an ed25519 key", file=sys.stderr)
        return 2
    sha_path = archive.with_name(archive.name + ".sha256")
    sig_path = archive.with_name(archive.name + ".sig")
    sha_path.write_text(f"{digest}  {archive.name}\n")
    sig_path.write_text(sign_archive(loaded, archive.name, digest) + "\n")
    print(f"wrote {sha_path.name} and {sig_path.name} (public key {public_key_text(loaded)})")
    return 0
