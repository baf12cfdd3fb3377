"""Settings: validated at start, unknown keys refused, weak secrets refused, readable errors."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import load_coordinator_settings
from common.settings import SettingsError, new_token
from node_agent.settings import load_agent_settings

GOOD = "a-good-long-random-token-1234"
OTHER = "another-good-long-token-5678"


def run_cli(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_yaml_file_with_an_unknown_key_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("cam_id: CAM_L\ncamera:\n  fps: 25\n  colour: blue\nbitrat: 5\n")
    monkeypatch.setenv("CAMFLEET_AGENT_CONFIG", str(cfg))
    with pytest.raises(SettingsError) as err:
        load_agent_settings(data_dir=tmp_path)
    text = str(err.value)
    assert "camera.colour: unknown setting" in text
    assert "bitrat: unknown setting" in text


def test_yaml_values_load_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("cam_id: CAM_L\nposition: left\ncamera:\n  fps: 25\n  width: 640\n")
    monkeypatch.setenv("CAMFLEET_AGENT_CONFIG", str(cfg))
    monkeypatch.setenv("CAMFLEET_CAMERA__WIDTH", "800")
    s = load_agent_settings(data_dir=tmp_path)
    assert (s.cam_id, s.position.value, s.camera.fps, s.camera.width) == ("CAM_L", "left", 25, 800)


@pytest.mark.parametrize("token", ["changethis", "short", "SECRET", ""])
def test_weak_or_default_secrets_are_refused(token: str) -> None:
    with pytest.raises(SettingsError, match="operator_token"):
        load_coordinator_settings(operator_token=token, fleet_token=GOOD)


def test_operator_and_fleet_tokens_must_differ() -> None:
    with pytest.raises(SettingsError, match="must differ"):
        load_coordinator_settings(operator_token=GOOD, fleet_token=GOOD)


def test_secrets_are_redacted_when_shown(tmp_path: Path) -> None:
    s = load_agent_settings(data_dir=tmp_path, api_token=GOOD, fleet_token=OTHER)
    shown = str(s.redacted())
    assert GOOD not in shown and OTHER not in shown and "**********" in shown


def test_coordinator_without_tokens_exits_with_a_readable_error(tmp_path: Path) -> None:
    done = run_cli("coordinator", env={}, tmp_path=tmp_path)
    assert done.returncode == 2
    assert "operator_token: Field required" in done.stderr
    assert "Traceback" not in done.stderr


def test_agent_with_a_bad_port_exits_with_a_readable_error(tmp_path: Path) -> None:
    done = run_cli(
        "agent",
        env={"CAMFLEET_PORT": "99999", "CAMFLEET_DATA_DIR": str(tmp_path)},
        tmp_path=tmp_path,
    )
    assert done.returncode == 2
    assert "port: Input should be less than or equal to 65535" in done.stderr


def test_a_new_token_never_begins_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # `--token -abc` is an option to argparse: about one token_urlsafe in 64 begins so.
    drawn = iter(["-leading-dash-token-xyz", "--two", "plain-token-abcdefgh"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda _n: next(drawn))
    assert new_token() == "plain-token-abcdefgh"
    monkeypatch.undo()
    tokens = [new_token() for _ in range(2000)]
    assert not [t for t in tokens if t.startswith("-")]
    assert len(set(tokens)) == 2000 and all(len(t) == 32 for t in tokens)
