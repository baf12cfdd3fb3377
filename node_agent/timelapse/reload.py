"""SIGHUP: read the settings again, apply what a running agent can change, name the rest.

The decision is pure (``plan_reload`` over two settings dumps); ``reload_settings`` is
the edge that loads, logs and applies. A configuration that does not load or validate
is refused as a whole: the running one is kept and the log says what is wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from common.settings import SettingsError, format_validation_error
from node_agent.settings import AgentSettings
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.settings import RELOADABLE_FIELDS

log = logging.getLogger(__name__)

RELOADABLE = frozenset(f"timelapse.{name}" for name in RELOADABLE_FIELDS)


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


@dataclass(frozen=True)
class ReloadPlan:
    """Changed settings: those applied now, and those that need an agent restart."""

    apply: list[str]
    restart: list[str]


def plan_reload(running: Mapping[str, Any], new: Mapping[str, Any]) -> ReloadPlan:
    """Compare two settings dumps (``model_dump()``: secrets compare by value, never shown)."""
    old_flat, new_flat = flatten(running), flatten(new)
    changed = sorted(
        key
        for key in old_flat.keys() | new_flat.keys()
        if old_flat.get(key, _MISSING) != new_flat.get(key, _MISSING)
    )
    return ReloadPlan(
        apply=[k for k in changed if k in RELOADABLE],
        restart=[k for k in changed if k not in RELOADABLE],
    )


_MISSING = object()


def reload_settings(
    running: AgentSettings, timelapse: Timelapse, load: Callable[[], AgentSettings]
) -> ReloadPlan | None:
    """Load the settings again and apply the timelapse's reloadable ones; None when refused."""
    log.info("SIGHUP: reading the configuration again")
    try:
        new = load()
    except SettingsError as err:
        log.error("SIGHUP: the new configuration is refused; the running one is kept.\n%s", err)
        return None
    except (yaml.YAMLError, OSError, ValueError) as err:
        log.error(
            "SIGHUP: the configuration file cannot be read (%s); the running one is kept", err
        )
        return None
    current = running.model_copy(update={"timelapse": timelapse.settings})
    plan = plan_reload(current.model_dump(), new.model_dump())
    try:
        applied = timelapse.apply(new.timelapse)
    except ValidationError as err:
        log.error(
            "SIGHUP: the new timelapse settings are refused; the running ones are kept.\n%s",
            format_validation_error("agent", err),
        )
        return None
    if applied:
        now = timelapse.settings
        log.info(
            "SIGHUP: applied %s",
            ", ".join(f"timelapse.{name} = {getattr(now, name)}" for name in applied),
        )
    if plan.restart:
        log.warning(
            "SIGHUP: these settings changed but need a restart of the agent to take effect: %s",
            ", ".join(plan.restart),
        )
    if not applied and not plan.restart:
        log.info("SIGHUP: the configuration has not changed")
    return plan
