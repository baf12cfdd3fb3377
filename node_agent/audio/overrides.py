"""Settings changed at run time that must survive a restart: ``overrides.json`` in the data
folder (today only ``camera.audio``, set by the audio toggle), applied over the YAML and
environment at start. The configuration API (``node_agent/config``) keeps it: a change
of ``camera.audio`` there is written to the settings file and here, so neither undoes the
other at the next start (docs/config-api.md).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from common.fsutil import atomic_write_bytes
from node_agent.settings import AgentSettings

log = logging.getLogger(__name__)

OVERRIDES_FILE = "overrides.json"


def overrides_path(data_dir: Path) -> Path:
    """Where the overrides are kept."""
    return data_dir / OVERRIDES_FILE


def load_overrides(data_dir: Path) -> dict[str, Any]:
    """The overrides file's content; {} when missing or unreadable (logged)."""
    path = overrides_path(data_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.error("ignoring %s: %s", path, err)
        return {}
    return data if isinstance(data, dict) else {}


def apply_overrides(settings: AgentSettings) -> None:
    """Apply the saved overrides to ``settings`` (before the parts are built)."""
    camera = load_overrides(settings.data_dir).get("camera")
    if isinstance(camera, dict) and isinstance(camera.get("audio"), bool):
        settings.camera.audio = camera["audio"]


def save_audio(data_dir: Path, enabled: bool) -> None:
    """Keep ``camera.audio = enabled`` across restarts (temp + fsync + rename)."""
    data = load_overrides(data_dir)
    camera = data.get("camera")
    data["camera"] = {**(camera if isinstance(camera, dict) else {}), "audio": enabled}
    atomic_write_bytes(overrides_path(data_dir), json.dumps(data, indent=2).encode() + b"\n")
