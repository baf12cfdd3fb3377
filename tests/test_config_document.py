"""The pure parts of the configuration API: secrets found and kept, merging, the version
line, the plan of what applies now, and keys the environment overrides."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from node_agent.config.document import (
    REDACTED,
    changed_keys,
    deep_merge,
    env_overridden,
    keep_secrets,
    parse_version,
    plan_changes,
    secret_keys,
    version_line,
)
from node_agent.settings import AgentSettings
from node_agent.timelapse.reload import RELOADABLE


class _Inner(BaseModel):
    password: SecretStr | None = None
    name: str = "x"


class _Outer(BaseModel):
    token: SecretStr
    inner: _Inner = _Inner()
    maybe: _Inner | None = None


def test_every_secret_is_found_nested_ones_too() -> None:
    assert secret_keys(AgentSettings) == [
        "api_token",
        "fleet_token",
        "notifications.webhook_url",
        "notifications.discord_webhook_url",
        "notifications.telegram_bot_token",
        "metrics.token",
    ]
    assert secret_keys(_Outer) == ["token", "inner.password", "maybe.password"]


@pytest.mark.parametrize(
    ("base", "patch", "merged"),
    [
        ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
        ({"gates": {"x": 1, "y": 2}}, {"gates": {"y": 3}}, {"gates": {"x": 1, "y": 3}}),
        (
            {"camera": {"profiles": [1, 2]}},
            {"camera": {"profiles": [3]}},
            {"camera": {"profiles": [3]}},
        ),
        ({"gates": {"x": 1, "y": 2}}, {"gates": {"x": None}}, {"gates": {"y": 2}}),
        ({}, {"gates": {"x": None, "y": 1}}, {"gates": {"y": 1}}),
        ({"camera": 5}, {"camera": {"fps": 25}}, {"camera": {"fps": 25}}),
    ],
)
def test_deep_merge(base: dict[str, Any], patch: dict[str, Any], merged: dict[str, Any]) -> None:
    assert deep_merge(base, patch) == merged


def test_a_secret_not_sent_or_sent_masked_keeps_its_value_and_a_new_one_is_taken() -> None:
    stored = {"fleet_token": "stored-secret-value-1234", "dashcam": {"x": 1}}
    keys = ["api_token", "fleet_token"]
    for patch in ({}, {"fleet_token": REDACTED}, {"fleet_token": None}):
        merged = deep_merge(stored, patch)
        keep_secrets(merged, stored, patch, keys)
        assert merged["fleet_token"] == "stored-secret-value-1234"
        assert "api_token" not in merged  # a mask for a secret never stored is not written
    patch = {"fleet_token": "a-brand-new-secret-5678", "api_token": REDACTED}
    merged = deep_merge(stored, patch)
    keep_secrets(merged, stored, patch, keys)
    assert merged["fleet_token"] == "a-brand-new-secret-5678" and "api_token" not in merged


def test_the_version_line_round_trips_and_a_hand_made_file_is_version_0() -> None:
    line = version_line(7, "2026-12-01T20:00:00+00:00")
    assert parse_version(line + "gates: {}\n") == (7, "2026-12-01T20:00:00+00:00")
    assert parse_version("# my notes\ngates: {}\n") == (0, None)
    assert parse_version("") == (0, None)


def test_the_plan_splits_live_keys_restart_keys_and_recording_keys() -> None:
    changed = changed_keys(
        {"camera": {"fps": 30, "audio": False}, "gates": {"max_cpu_temp_c": 80}, "port": 1},
        {
            "camera": {"fps": 25, "audio": True},
            "gates": {"max_cpu_temp_c": 70},
            "port": 2,
            "timelapse": {"interval_s": 5},
            "recordings_dir": "/mnt/rec",
        },
    )
    plan = plan_changes(changed, RELOADABLE)
    assert plan.apply_now == ["camera.audio", "gates.max_cpu_temp_c", "timelapse.interval_s"]
    assert plan.restart_required == ["camera.fps", "port", "recordings_dir"]
    assert plan.affects_recording == [
        "camera.audio",
        "camera.fps",
        "gates.max_cpu_temp_c",
        "recordings_dir",
    ]


def test_keys_the_environment_sets_are_named() -> None:
    env = {"CAMFLEET_CAMERA__FPS": "30", "CAMFLEET_GATES": "{}", "CAMFLEET_PORT_X": "1"}
    keys = ["camera.fps", "camera.width", "gates.max_cpu_temp_c", "port"]
    assert env_overridden(keys, env) == ["camera.fps", "gates.max_cpu_temp_c"]
