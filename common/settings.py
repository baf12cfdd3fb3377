"""Settings plumbing both programs use: YAML under the environment, weak-secret refusal,
readable validation errors."""

from __future__ import annotations

import ipaddress
import os
import secrets
from typing import Annotated

from pydantic import AfterValidator, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, YamlConfigSettingsSource

# Secrets that appear in examples and tutorials; a node configured with one is refused.
WELL_KNOWN_SECRETS = frozenset({"changethis", "changeme", "secret", "password", "token", "admin"})


def _ip_text(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError as err:
        raise ValueError(f"{text!r} is not an IP address") from err
    return text


# An IP address kept as the text it was written as (what zeroconf and sockets take).
IpAddressText = Annotated[str, AfterValidator(_ip_text)]


class SettingsError(Exception):
    """The configuration cannot be used; the message says what to change."""


def yaml_under_env(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    path_variable: str,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """Sources in priority order: arguments, environment, then the YAML file named by
    ``path_variable`` (when set)."""
    yaml_path = os.environ.get(path_variable)
    sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
    if yaml_path:
        sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
    return tuple(sources)


def new_token(nbytes: int = 24) -> str:
    """A random URL-safe token that never begins with '-': a command line's
    ``--token -abc...`` would take it for an option (argparse refuses it; about one
    token_urlsafe in 64 begins so)."""
    while True:
        token = secrets.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token


def check_token(name: str, value: SecretStr | None) -> None:
    """Refuse empty, short and well-known secrets with a message naming the setting."""
    if value is None:
        return
    raw = value.get_secret_value()
    if raw.lower() in WELL_KNOWN_SECRETS or len(raw) < 16:
        raise ValueError(
            f"{name} is too weak: use at least 16 random characters "
            "(for example: python -c 'import secrets; print(secrets.token_hex(24))')"
        )


def format_validation_error(program: str, err: ValidationError) -> str:
    """One readable line per problem: the setting's name and what is wrong with it."""
    lines = [f"camfleet {program}: the configuration is not valid:"]
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(settings)"
        msg = problem["msg"]
        if problem["type"] == "extra_forbidden":
            msg = "unknown setting (check its spelling; unknown keys are refused)"
        lines.append(f"  - {where}: {msg}")
    return "\n".join(lines)
