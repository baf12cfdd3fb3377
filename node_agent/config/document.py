"""Pure parts of the configuration API: secrets, merging, the version line, and which
changed keys apply at once, need a restart, or would change a running recording."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr

REDACTED = "**********"  # what pydantic shows for a SecretStr, and what a PUT may send back
# The first line of a file written by the API: version counter and time (a YAML comment,
# so the stamp and the settings change in one rename).
VERSION_LINE = re.compile(r"^# camfleet-config version (\d+) written (\S+)\s*$")

# Changed keys that would alter the recording in progress (refused while recording).
RECORDING_PREFIXES = ("camera.", "storage.", "gates.")
RECORDING_KEYS = frozenset({"data_dir", "recordings_dir"})
# Keys a running agent takes at once (everything else needs a restart).
LIVE_GATES = frozenset(
    f"gates.{n}" for n in ("max_cpu_temp_c", "thermal_path", "clock_policy", "max_clock_error_ms")
)


def secret_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted names of every SecretStr field of ``model`` (nested models too)."""
    out: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        if ann is SecretStr or SecretStr in args:
            out.append(prefix + name)
        for t in (ann, *args):
            if isinstance(t, type) and issubclass(t, BaseModel):
                out += secret_keys(t, f"{prefix}{name}.")
    return out


def get_path(doc: Mapping[str, Any], key: str) -> Any:
    """``doc["a"]["b"]`` for ``"a.b"``; None when absent."""
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def set_path(doc: dict[str, Any], key: str, value: Any) -> None:
    """Set ``"a.b"`` in ``doc`` (creating the tables on the way); None removes it."""
    *parents, last = key.split(".")
    node = doc
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            if value is None:
                return
            child = node[part] = {}
        node = child
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``: tables merge, anything else replaces (lists too), and
    None removes the key (the setting goes back to its default)."""
    out = dict(base)
    for key, value in patch.items():
        old = out.get(key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            out[key] = deep_merge(old if isinstance(old, Mapping) else {}, value)
        else:
            out[key] = value
    return out


def keep_secrets(
    merged: dict[str, Any], stored: Mapping[str, Any], patch: Mapping[str, Any], keys: list[str]
) -> None:
    """A secret sent as the redaction mask, or not sent, keeps its stored value."""
    for key in keys:
        sent = get_path(patch, key)
        if sent is None or sent == REDACTED:
            set_path(merged, key, get_path(stored, key))


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"camera.source": ..., "timelapse.interval_s": ...}``."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out |= flatten(value, f"{path}.")
        else:
            out[path] = value
    return out


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose value differs between two settings dumps."""
    a, b = flatten(old), flatten(new)
    missing = object()
    return sorted(k for k in a.keys() | b.keys() if a.get(k, missing) != b.get(k, missing))


@dataclass(frozen=True)
class ChangePlan:
    """Changed keys split by what happens to them."""

    apply_now: list[str]
    restart_required: list[str]
    affects_recording: list[str]


def plan_changes(changed: list[str], live_timelapse: frozenset[str]) -> ChangePlan:
    """Which changed keys apply at once (gates read per start, the timelapse's reloadable
    fields, camera.audio through the audio toggle) and which wait for a restart."""
    live = LIVE_GATES | live_timelapse | {"camera.audio"}
    return ChangePlan(
        apply_now=[k for k in changed if k in live],
        restart_required=[k for k in changed if k not in live],
        affects_recording=[
            k for k in changed if k.startswith(RECORDING_PREFIXES) or k in RECORDING_KEYS
        ],
    )


def version_line(version: int, written_at: str) -> str:
    """The stamp written as the file's first line."""
    return f"# camfleet-config version {version} written {written_at}\n"


def parse_version(text: str) -> tuple[int, str | None]:
    """The stamp of a settings file's text: (0, None) for a file never written by the API."""
    first = text.split("\n", 1)[0]
    m = VERSION_LINE.match(first)
    return (int(m.group(1)), m.group(2)) if m else (0, None)


def env_overridden(flat_keys: list[str], environ: Mapping[str, str]) -> list[str]:
    """Keys also set in the environment (``CAMFLEET_A__B``), which wins over the file."""
    out = []
    for key in flat_keys:
        parts = key.split(".")
        names = {"CAMFLEET_" + "__".join(parts[: i + 1]).upper() for i in range(len(parts))}
        if names & environ.keys():
            out.append(key)
    return out
