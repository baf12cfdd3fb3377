"""deploy/setup-node.sh: its checks, its banner and next steps, --enable, and the
side-by-side install layout the updater works on (a real venv and pip install)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from node_agent.settings import load_agent_settings

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "setup-node.sh"
VERSION = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]  # type: ignore[index]


def fake_systemctl(folder: Path) -> Path:
    """A ``systemctl`` on PATH that records each call's arguments, one line per call."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "calls.log"
    program = folder / "systemctl"
    program.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\n')
    program.chmod(0o755)
    return log


def setup(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_a_run_prints_the_banner_and_next_steps_and_enables_nothing(tmp_path: Path) -> None:
    log = fake_systemctl(tmp_path / "bin")
    path = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    done = setup(
        tmp_path / "root",
        "--no-apt",
        "--no-install",
        "--systemctl",
        "--role",
        "both",
        "--cam-id",
        "CAM_C",
        env=path,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"camfleet {VERSION}: node setup (role both, CAM_C)" in out.splitlines()[1]
    assert re.search(r"^setup-node: python: 3\.(1[1-9]|[2-9][0-9])\.", out, re.M)
    for line in (
        "sudo systemctl start camfleet-agent",
        "sudo systemctl enable camfleet-agent",
        "sudo systemctl start camfleet-coordinator",
        "journalctl -u camfleet-agent -f",
        "sudo systemctl reload camfleet-agent",
        "sudo systemctl restart camfleet-coordinator",
    ):
        assert line in out, line
    # installed and reloaded, never enabled or started without --enable
    assert log.read_text().splitlines() == ["daemon-reload"]

    again = setup(
        tmp_path / "root",
        "--no-apt",
        "--no-install",
        "--systemctl",
        "--enable",
        "--role",
        "both",
        "--cam-id",
        "CAM_C",
        env=path,
    )
    assert again.returncode == 0, again.stderr
    assert log.read_text().splitlines()[1:] == [
        "daemon-reload",
        "enable --now camfleet-coordinator.service",
        "enable --now camfleet-agent.service",
    ]
    assert "enabled and started: camfleet-coordinator camfleet-agent" in again.stdout
    assert "sudo systemctl start" not in again.stdout


def test_under_root_systemctl_runs_only_when_asked(tmp_path: Path) -> None:
    log = fake_systemctl(tmp_path / "bin")
    done = setup(
        tmp_path / "root",
        "--no-apt",
        "--no-install",
        "--enable",
        "--role",
        "coordinator",
        env={"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr
    assert not log.exists()


def test_python_older_than_3_11_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    old = tmp_path / "python3.9"
    old.write_text(
        "#!/bin/sh\n"
        'case "$*" in *">= (3, 11)"*) exit 1 ;; *version_info*) echo 3.9 ;; *) exit 1 ;; esac\n'
    )
    old.chmod(0o755)
    done = setup(
        tmp_path / "root",
        "--no-apt",
        "--no-install",
        "--role",
        "coordinator",
        env={"PYTHON": str(old)},
    )
    assert done.returncode == 1
    assert f"needs Python 3.11 or newer; {old} is 3.9" in done.stderr
    assert not (tmp_path / "root").exists()


def test_the_apt_step_is_refused_on_an_os_that_is_not_debian(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('ID=fedora\nID_LIKE=""\n')
    done = setup(
        tmp_path / "root",
        "--no-install",
        "--role",
        "coordinator",
        env={"OS_RELEASE": str(release)},
    )
    assert done.returncode == 1
    assert "needs Debian or Raspberry Pi OS (this is 'fedora" in done.stderr
    assert "--no-apt" in done.stderr
    assert not (tmp_path / "root").exists()


def test_the_install_is_side_by_side_and_a_rerun_keeps_it(tmp_path: Path) -> None:
    """The real install: a base venv of dependencies, the version's own venv that sees it
    through a .pth, and current -> versions/VERSION; the program runs from current."""
    root = tmp_path / "root"
    args = ("--no-apt", "--role", "coordinator")
    litter = [ROOT / "build", *ROOT.glob("*.egg-info")]
    before_litter = {p for p in litter if p.exists()}
    first = setup(root, *args, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    # the wheel is built from a copy: the source tree gains no build/ or egg-info
    assert {p for p in [ROOT / "build", *ROOT.glob("*.egg-info")] if p.exists()} == before_litter
    opt = root / "opt" / "camfleet"
    assert os.readlink(opt / "current") == f"versions/{VERSION}"
    assert (opt / "versions" / VERSION / ".complete").read_text().strip() == VERSION
    python = opt / "current" / "venv" / "bin" / "python"
    shown = subprocess.run(
        [str(python), "-c", "import common, fastapi, app; print(common.__version__, app.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not the source tree, which python -c would import first
    )
    assert shown.returncode == 0, shown.stderr
    version, where = shown.stdout.split()
    assert version == VERSION
    # the program is the version's own; the base holds only the dependencies
    assert os.path.realpath(where).startswith(os.path.realpath(opt / "versions" / VERSION))
    assert not list((opt / "base").glob("lib/python*/site-packages/app"))
    helped = subprocess.run(
        [str(opt / "current" / "venv" / "bin" / "camfleet"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0 and "usage: camfleet" in helped.stdout

    before = (opt / "versions" / VERSION / "venv" / "bin" / "camfleet").stat().st_mtime_ns
    again = setup(root, *args, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"keeping {opt / 'versions' / VERSION}" in again.stdout
    assert (opt / "versions" / VERSION / "venv" / "bin" / "camfleet").stat().st_mtime_ns == before


POLKIT_RULES = ROOT / "deploy" / "polkit" / "50-camfleet.rules"
# The rules file run by node with polkit's JavaScript API (polkit.addRule, Result,
# action.id/lookup, subject.user), as polkitd's own duktape engine runs it.
POLKIT_HARNESS = r"""
const fs = require("fs");
const rules = [];
const polkit = {
  Result: { YES: "yes", NO: "no", NOT_HANDLED: null },
  addRule: (fn) => rules.push(fn),
  log: () => {},
};
new Function("polkit", fs.readFileSync(process.argv[2], "utf8"))(polkit);
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const out = cases.map(([user, id, details]) => {
  const action = { id, lookup: (k) => details[k] };
  for (const rule of rules) {
    const r = rule(action, { user });
    if (r !== null && r !== undefined) return r;
  }
  return "not_handled";
});
process.stdout.write(JSON.stringify(out));
"""


def test_polkit_lets_the_agent_user_do_its_four_things_and_nothing_else(tmp_path: Path) -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is not installed (Debian package nodejs; .ci/run installs it)"
    manage = "org.freedesktop.systemd1.manage-units"
    cases: list[tuple[str, str, dict[str, str], str]] = [
        ("camfleet", "org.freedesktop.login1.power-off", {}, "yes"),
        ("camfleet", manage, {"unit": "camfleet-agent.service", "verb": "restart"}, "yes"),
        ("camfleet", manage, {"unit": "camfleet-update@0.1.0.service", "verb": "start"}, "yes"),
        # not another unit, not another verb, not a look-alike name, not another user
        ("camfleet", manage, {"unit": "ssh.service", "verb": "restart"}, "not_handled"),
        ("camfleet", manage, {"unit": "camfleet-agent.service", "verb": "stop"}, "not_handled"),
        (
            "camfleet",
            manage,
            {"unit": "camfleet-update@0.1.0.service", "verb": "stop"},
            "not_handled",
        ),
        (
            "camfleet",
            manage,
            {"unit": "camfleet-update@../x.service", "verb": "start"},
            "not_handled",
        ),
        ("camfleet", manage, {"unit": "camfleet-updater.service", "verb": "start"}, "not_handled"),
        ("camfleet", "org.freedesktop.systemd1.manage-unit-files", {}, "not_handled"),
        ("camfleet", "org.freedesktop.login1.reboot", {}, "not_handled"),
        ("camfleet", "org.freedesktop.NetworkManager.network-control", {}, "yes"),
        ("camfleet", "org.freedesktop.NetworkManager.settings.modify.system", {}, "yes"),
        ("camfleet", "org.freedesktop.NetworkManager.wifi.share.protected", {}, "yes"),
        ("camfleet", "org.freedesktop.NetworkManager.wifi.share.open", {}, "not_handled"),
        ("camfleet", "org.freedesktop.NetworkManager.enable-disable-network", {}, "not_handled"),
        ("pi", "org.freedesktop.NetworkManager.network-control", {}, "not_handled"),
        ("pi", "org.freedesktop.login1.power-off", {}, "not_handled"),
        ("pi", manage, {"unit": "camfleet-agent.service", "verb": "restart"}, "not_handled"),
    ]
    harness = tmp_path / "harness.js"
    harness.write_text(POLKIT_HARNESS)
    done = subprocess.run(
        [node, str(harness), str(POLKIT_RULES)],
        input=json.dumps([c[:3] for c in cases]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert [(c[:3], g) for c, g in zip(cases, got, strict=True)] == [(c[:3], c[3]) for c in cases]


def test_setup_installs_the_polkit_rule_and_the_update_unit_for_an_agent(tmp_path: Path) -> None:
    done = setup(
        tmp_path,
        "--no-apt",
        "--no-install",
        "--role",
        "agent",
        "--cam-id",
        "CAM_L",
        "--fleet-token",
        "f" * 32,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "etc/polkit-1/rules.d/50-camfleet.rules").read_bytes() == (
        POLKIT_RULES.read_bytes()
    )
    assert (tmp_path / "etc/systemd/system/camfleet-update@.service").exists()


def test_an_agent_without_a_coordinator_url_is_set_up_to_discover_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ("--no-apt", "--no-install", "--role", "agent", "--fleet-token", "f" * 32)
    found = setup(tmp_path / "a", *base, "--cam-id", "CAM_L")
    given = setup(
        tmp_path / "b", *base, "--cam-id", "CAM_R", "--coordinator-url", "http://cam-c.local:8080"
    )
    assert found.returncode == 0 and given.returncode == 0, found.stderr + given.stderr
    loaded = {}
    for name in ("a", "b"):
        etc = tmp_path / name / "etc" / "camfleet"
        monkeypatch.setenv("CAMFLEET_AGENT_CONFIG", str(etc / "agent.yaml"))
        loaded[name] = load_agent_settings(fleet_token="f" * 32, api_token="a" * 32)
    assert loaded["a"].coordinator_url is None and loaded["a"].discovery.enabled
    assert loaded["b"].coordinator_url == "http://cam-c.local:8080"
