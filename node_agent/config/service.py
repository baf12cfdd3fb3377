"""The node's settings file: read it redacted, merge a change into it, validate it with
the agent's own model, write it atomically with a version stamp, apply what is safe.

The file is the one ``CAMFLEET_AGENT_CONFIG`` names, else ``agent.yaml`` in the data
folder (``load_agent_settings`` reads that one at start). The environment still wins
over the file; keys it overrides are named in every answer. ``overrides.json`` (the
audio toggle) stays the last word on ``camera.audio`` at start, so a change of
``camera.audio`` here is written to both.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from common.fsutil import fsync_dir
from node_agent.audio.overrides import load_overrides, save_audio
from node_agent.config.document import (
    changed_keys,
    deep_merge,
    env_overridden,
    flatten,
    keep_secrets,
    parse_version,
    plan_changes,
    secret_keys,
    version_line,
)
from node_agent.config.schemas import ConfigDocument, ConfigResult, ConfigUpdate
from node_agent.errors import ConfigConflict, ConfigInvalid
from node_agent.recorder.service import Recorder
from node_agent.schemas import RecorderState
from node_agent.settings import CONFIG_FILE, CONFIG_VARIABLE, AgentSettings, settings_file
from node_agent.timelapse.reload import RELOADABLE
from node_agent.timelapse.runner import Timelapse

log = logging.getLogger(__name__)


class NodeConfig:
    """``GET/PUT /api/v1/config`` over the running settings and their file."""

    def __init__(self, running: AgentSettings, recorder: Recorder, timelapse: Timelapse) -> None:
        self.running = running
        self.recorder = recorder
        self.timelapse = timelapse
        self.path = settings_file(running)
        self._write = threading.Lock()  # one PUT at a time: the version counts every write

    # -- reading ----------------------------------------------------------------------------

    def _read(self) -> tuple[str, dict[str, Any]]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return "", {}
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ConfigInvalid(f"{self.path} is not valid YAML ({err}): fix it by hand") from err
        if not isinstance(doc, dict):
            raise ConfigInvalid(f"{self.path} does not hold a table of settings")
        return text, doc

    def _load(self, path: Path | None) -> AgentSettings:
        """The settings a start would build from ``path`` (or no file) and the environment."""
        token = CONFIG_FILE.set(path)
        try:
            loaded = AgentSettings(host=self.running.host, port=self.running.port)
        finally:
            CONFIG_FILE.reset(token)
        audio = load_overrides(self.running.data_dir).get("camera", {})
        if isinstance(audio, dict) and isinstance(audio.get("audio"), bool):
            loaded.camera.audio = audio["audio"]
        return loaded

    def _in_force(self) -> dict[str, Any]:
        current = self.running.model_copy(update={"timelapse": self.timelapse.settings})
        return current.model_dump()

    def get(self) -> ConfigDocument:
        """The settings as the file and environment give them (secrets masked), and which
        of them wait for a restart."""
        text, _ = self._read()
        version, written_at = parse_version(text)
        try:
            stored = self._load(self.path if text else None)
        except ValidationError as err:
            raise _invalid(
                err, f"{self.path} does not validate (the agent would not start)"
            ) from err
        pending = changed_keys(self._in_force(), stored.model_dump())
        return ConfigDocument(
            path=str(self.path),
            version=version,
            written_at=written_at,
            settings=stored.redacted(),
            restart_required=pending,
            environment_overrides=env_overridden(list(flatten(stored.redacted())), os.environ),
        )

    # -- writing ----------------------------------------------------------------------------

    def put(self, update: ConfigUpdate) -> ConfigResult:
        """Merge, validate (422 naming each key, nothing written), refuse a change to the
        recording while one runs (409), write atomically, apply the safe keys."""
        with self._write:
            text, stored = self._read()
            version, stamped_at = parse_version(text)
            if update.if_version is not None and update.if_version != version:
                raise ConfigConflict(
                    f"the settings file is at version {version}, not {update.if_version}: "
                    "read it again (GET /api/v1/config) and resend the change"
                )
            if "data_dir" in update.settings and not os.environ.get(CONFIG_VARIABLE):
                raise ConfigInvalid(
                    f"data_dir cannot be changed here: the settings file lives in it "
                    f"({self.path}); set CAMFLEET_DATA_DIR or use a settings file "
                    "named by CAMFLEET_AGENT_CONFIG",
                    [{"field": "data_dir", "message": "not changeable through the API"}],
                )
            merged = deep_merge(stored, update.settings)
            keep_secrets(merged, stored, update.settings, secret_keys(AgentSettings))
            if merged == stored and self.path.exists():
                # Nothing to change: the file, its version and the node are left as they are
                # (a form sent twice must not make the next reader's if_version stale).
                return ConfigResult(
                    path=str(self.path),
                    version=version,
                    written_at=stamped_at or "",
                    changed=[],
                    applied=[],
                    restart_required=[],
                )
            written_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            body = version_line(version + 1, written_at) + yaml.safe_dump(
                merged, sort_keys=False, allow_unicode=True
            )
            candidate = self.path.with_name(f".{self.path.name}.candidate-{os.getpid()}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _write_synced(candidate, body.encode())
            try:
                new = self._validated(candidate, merged)
                file_changed = changed_keys(stored, merged)
                overridden = env_overridden(file_changed, os.environ)
                # A key the environment overrides still counts for the recording check:
                # the file is what a node without that variable would record with.
                plan = plan_changes(
                    sorted(set(self._effective_changes(text, new)) | set(file_changed)),
                    RELOADABLE,
                )
                with self.recorder.settings_lock():
                    state = self.recorder.state
                    if plan.affects_recording and state != RecorderState.idle:
                        raise ConfigConflict(
                            f"the recorder is {state.value}: "
                            f"{', '.join(plan.affects_recording)} would change the recording; "
                            "stop it first (nothing was written)"
                        )
                    os.replace(candidate, self.path)
                    fsync_dir(self.path.parent)
                    applied = self._apply([k for k in plan.apply_now if k not in overridden], new)
            finally:
                candidate.unlink(missing_ok=True)
        log.info(
            "settings file %s now version %d: applied %s; restart needed for %s",
            self.path,
            version + 1,
            applied or "nothing",
            plan.restart_required or "nothing",
        )
        return ConfigResult(
            path=str(self.path),
            version=version + 1,
            written_at=written_at,
            changed=file_changed,
            applied=applied,
            restart_required=[k for k in plan.restart_required if k not in overridden],
            environment_overrides=overridden,
        )

    def _effective_changes(self, text: str, new: AgentSettings) -> list[str]:
        """Keys whose value a start would see change; none when the old file does not
        validate (a PUT may be what repairs it: the file's own changes are judged then)."""
        try:
            old = self._load(self.path if text else None)
        except ValidationError:
            return []
        return changed_keys(old.model_dump(), new.model_dump())

    def _validated(self, candidate: Path, merged: dict[str, Any]) -> AgentSettings:
        """The settings a restart would run with ``candidate``; ConfigInvalid naming every
        bad key. The file's values are checked over the environment too: a value the
        environment hides today would stop a node started without that variable."""
        token = CONFIG_FILE.set(candidate)
        try:
            AgentSettings.model_validate(merged)  # the file's values win over the environment
        except ValidationError as err:
            raise _invalid(err) from err
        finally:
            CONFIG_FILE.reset(token)
        try:
            return self._load(candidate)
        except ValidationError as err:
            raise _invalid(err) from err

    def _apply(self, keys: list[str], new: AgentSettings) -> list[str]:
        """Take the keys a running agent can take (the caller holds the recorder's lock)."""
        applied: list[str] = []
        for key in keys:
            section, _, name = key.partition(".")
            if section == "gates":
                setattr(self.running.gates, name, getattr(new.gates, name))
                applied.append(key)
            elif key == "camera.audio":
                save_audio(self.running.data_dir, new.camera.audio)
                self.running.camera.audio = new.camera.audio
                applied.append(key)
        if any(k.startswith("timelapse.") for k in keys):
            try:
                self.timelapse.apply(new.timelapse)
            except ValidationError as err:
                log.error("the timelapse refused the new settings: %s", err)
            else:
                applied += [k for k in keys if k.startswith("timelapse.")]
        return applied


def _invalid(
    err: ValidationError, what: str = "the settings are not valid, nothing written"
) -> ConfigInvalid:
    """A 422 naming each dotted key and what is wrong with it."""
    details = [
        {
            "field": ".".join(str(p) for p in e["loc"]) or "(settings)",
            "message": "unknown setting (check its spelling)"
            if e["type"] == "extra_forbidden"
            else e["msg"],
        }
        for e in err.errors()
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return ConfigInvalid(f"{what}: {summary}", details)


def _write_synced(path: Path, data: bytes) -> None:
    """Write and fsync ``path`` (0600: the file may hold secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
