"""The network's credentials: the access point's WPA2 key and each network's passphrase.

They live in their own YAML file (``network.secrets_file``, mode 0600 or 0400), never in
the settings the configuration API shows, never in the status and never in a log::

    ap_psk: "the rig's WPA2 key"     # 8-63 printable ASCII characters
    networks:
      FieldMesh: "its passphrase"    # an open network is left out
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from common.fsutil import private_file_problem
from node_agent.network.settings import Ssid

MAX_SECRETS_BYTES = 64 * 1024


class SecretsError(ValueError):
    """The secrets file cannot be used; the message says why and how to fix it (never a
    secret)."""


def check_psk(value: str, what: str) -> str:
    """A WPA2 passphrase: 8 to 63 printable ASCII characters (IEEE 802.11i), or 64 hex."""
    if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value
    if not 8 <= len(value) <= 63:
        raise ValueError(f"{what} must be 8 to 63 characters (it has {len(value)})")
    if any(not (32 <= ord(c) <= 126) for c in value):
        raise ValueError(f"{what} may hold printable ASCII only (space to ~)")
    return value


class NetworkSecrets(BaseModel):
    """What the secrets file holds."""

    model_config = ConfigDict(extra="forbid")

    ap_psk: SecretStr = Field(description="The access points' WPA2 key (every node's).")
    networks: dict[Ssid, SecretStr] = Field(default_factory=dict, max_length=16)

    @field_validator("ap_psk")
    @classmethod
    def _ap_psk(cls, value: SecretStr) -> SecretStr:
        check_psk(value.get_secret_value(), "ap_psk")
        return value

    @field_validator("networks")
    @classmethod
    def _passphrases(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for ssid, psk in value.items():
            check_psk(psk.get_secret_value(), f"the passphrase of {ssid!r}")
        return value

    def passphrase(self, ssid: str) -> str | None:
        """The passphrase of ``ssid`` (None: an open network)."""
        got = self.networks.get(ssid)
        return got.get_secret_value() if got is not None else None


def secrets_problem(path: Path) -> str | None:
    """Why ``path`` may not hold secrets (missing, not a file, readable by others)."""
    return private_file_problem(path, "network.secrets_file", exposes="the Wi-Fi keys")


def load_secrets(path: Path) -> NetworkSecrets:
    """The secrets in ``path``, or ``SecretsError`` saying what is wrong (no value quoted)."""
    problem = secrets_problem(path)
    if problem is not None:
        raise SecretsError(problem)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(MAX_SECRETS_BYTES + 1)
    except OSError as err:
        raise SecretsError(f"network.secrets_file {path} cannot be read: {err.strerror}") from err
    if len(raw) > MAX_SECRETS_BYTES:
        raise SecretsError(f"network.secrets_file {path} is larger than 64 KiB")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        # yaml's message may quote the line (a key): say where, not what
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SecretsError(f"network.secrets_file {path} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise SecretsError(f"network.secrets_file {path} must be a mapping (ap_psk, networks)")
    try:
        return NetworkSecrets.model_validate(data)
    except ValidationError as err:
        # Only the locations and messages: pydantic's input_value would print the key.
        lines = [
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in err.errors()
        ]
        raise SecretsError(f"network.secrets_file {path}: " + "; ".join(lines)) from None
