"""The systemd units in deploy/systemd: `systemd-analyze verify` is clean on every one, and
each carries the limits docs/deploy.md lists (Nice, CPUWeight, CPUQuota and MemoryMax for
all but the recorder; SyslogIdentifier, PYTHONUNBUFFERED and the start limit for all)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from app.supervise import stop_all
from tests.conftest import RunningFleet

ROOT = Path(__file__).resolve().parent.parent
UNIT_DIR = ROOT / "deploy" / "systemd"
UNITS = sorted(p.name for p in UNIT_DIR.glob("*.service"))
# Where Debian's systemd package keeps its units (sysinit.target and the rest that every
# service depends on by default); /lib is a link to /usr/lib on Debian 12.
HOST_UNIT_DIRS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
EXEC_KEYS = (
    "ExecCondition",
    "ExecStartPre",
    "ExecStart",
    "ExecStartPost",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """A unit's CPU and memory settings ([Service]); None: not set."""

    nice: str | None
    cpu_weight: str | None
    cpu_quota: str | None
    memory_max: str | None


# The agent is the recorder: nothing may cap it (docs/deploy.md says why).
LIMITS = {
    "camfleet-agent.service": Limits(None, None, None, None),
    "camfleet-coordinator.service": Limits("10", "10", "100%", "256M"),
    "camfleet-dashcam.service": Limits("10", "10", "200%", "256M"),
    "sync-client.service": Limits("10", "10", "50%", "128M"),
    "sync-master.service": Limits("10", "10", "50%", "128M"),
    "camfleet-update@.service": Limits("10", "10", "50%", "128M"),
}
# A template unit is verified as one of its instances (its %i: the version it runs from).
INSTANCE = "0.1.0"


def instance(name: str) -> str:
    """``camfleet-update@.service`` as ``camfleet-update@0.1.0.service``; others as named."""
    return name.replace("@.", f"@{INSTANCE}.")


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit's sections, each key with every value it is given, in order."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.strip()
        while line.endswith("\\"):  # a continuation joins the next line
            line = line[:-1] + " " + next(lines, "").strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{line!r} outside any section"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    return parse_unit((UNIT_DIR / name).read_text())


def one(section: dict[str, list[str]], key: str) -> str | None:
    values = section.get(key)
    if values is None:
        return None
    assert len(values) == 1, f"{key} is set {len(values)} times"
    return values[0]


def programs(sections: dict[str, dict[str, list[str]]]) -> set[str]:
    """The absolute program paths the unit's Exec*= lines run (prefixes like '-' removed)."""
    found = set()
    for key in EXEC_KEYS:
        for value in sections.get("Service", {}).get(key, []):
            program = shlex.split(value)[0].lstrip("-@:+!")
            assert program.startswith("/"), f"{key}={value}: systemd wants an absolute path"
            found.add(program)
    return found


def test_every_unit_in_deploy_has_its_limits_listed() -> None:
    assert UNITS and sorted(LIMITS) == UNITS


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_tags_its_journal_lines_and_unbuffers_python(name: str) -> None:
    service = unit(name)["Service"]
    # every unit runs the same `camfleet` program: the identifier tells them apart
    assert one(service, "SyslogIdentifier") == name.removesuffix(".service").removesuffix("@")
    assignments = [a for value in service.get("Environment", []) for a in shlex.split(value)]
    assert "PYTHONUNBUFFERED=1" in assignments


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_gives_up_after_5_starts_in_5_minutes(name: str) -> None:
    sections = unit(name)
    assert one(sections["Unit"], "StartLimitBurst") == "5"
    assert one(sections["Unit"], "StartLimitIntervalSec") == "300"
    # [Service] is the old place, which systemd still reads but would let drift
    assert not {"StartLimitBurst", "StartLimitIntervalSec", "StartLimitInterval"} & set(
        sections["Service"]
    )
    restart_sec = one(sections["Service"], "RestartSec")
    if one(sections["Service"], "Restart") not in (None, "no"):
        # a crash loop (one start per RestartSec) reaches the burst inside the window
        assert restart_sec is not None and 5 * float(restart_sec) < 300


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_has_the_cpu_and_memory_limits_of_its_role(name: str) -> None:
    service = unit(name)["Service"]
    got = Limits(
        one(service, "Nice"),
        one(service, "CPUWeight"),
        one(service, "CPUQuota"),
        one(service, "MemoryMax"),
    )
    assert got == LIMITS[name]


def test_the_agent_is_the_recorder_nothing_caps_and_keeps_its_settings() -> None:
    service = unit("camfleet-agent.service")["Service"]
    # Nothing that could slow a recording's encode or kill it mid-file
    capping = {"Nice", "CPUWeight", "CPUQuota", "MemoryMax", "MemoryHigh", "TasksMax"}
    assert not capping & set(service)
    assert one(service, "LimitRTPRIO") == "10"  # the SCHED_FIFO start
    assert (one(service, "RuntimeDirectory"), one(service, "RuntimeDirectoryMode")) == (
        "camfleet",
        "0775",
    )
    assert (one(service, "KillSignal"), one(service, "TimeoutStopSec")) == ("SIGTERM", "30")
    assert one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert "CAMFLEET_AGENT_CONFIG=/etc/camfleet/agent.yaml" in service["Environment"]
    # The recorder is in the agent's own process: nothing under node_agent/recorder starts
    # another program (the only children are commands and the end-of-day render).
    spawning = re.compile(r"\bsubprocess\b|create_subprocess|os\.(fork|exec|spawn|posix_spawn)")
    recorder = ROOT / "node_agent" / "recorder"
    assert [p for p in recorder.rglob("*.py") if spawning.search(p.read_text())] == []


def test_the_timelapse_render_child_runs_at_the_lowest_priority_with_one_thread() -> None:
    """The agent's one heavy child: what limits it is its niceness and its one thread."""
    from node_agent.timelapse.render import render_in_child
    from node_agent.timelapse.settings import TimelapseSettings

    assert TimelapseSettings().render_nice == 19
    defaults = render_in_child.__kwdefaults__
    assert defaults is not None and (defaults["nice"], defaults["threads"]) == (19, 1)


def test_the_deploy_doc_lists_every_units_limits() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text()
    rows = {}
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and re.fullmatch(r"`[a-z-]+@?\.service`", cells[0]):
            rows[cells[0].strip("`")] = Limits(
                *(None if c == "\N{EN DASH}" else c for c in cells[1:5])
            )
    assert rows == LIMITS


# --- systemd-analyze verify, against a fake root --------------------------------------------


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with the host's own units, ours in etc/systemd/system, and a fake executable
    at every path our units run, so verify checks the unit files exactly as committed."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd; .ci/run has it)")
    host = next((d for d in HOST_UNIT_DIRS if (d / "multi-user.target").exists()), None)
    assert host is not None, f"systemd-analyze is here but none of {HOST_UNIT_DIRS} has units"
    root = tmp_path_factory.mktemp("root")
    shutil.copytree(host, root / "usr/lib/systemd/system", symlinks=True)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    for name in UNITS:
        shutil.copyfile(UNIT_DIR / name, etc / name)
        for program in programs(unit(name)):
            fake = root / program.replace("%i", INSTANCE).lstrip("/")
            fake.parent.mkdir(parents=True, exist_ok=True)
            fake.write_text("#!/bin/sh\nexit 0\n")
            fake.chmod(0o755)
    return root


def verify(root: Path, name: str) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    return subprocess.run(
        [analyze, "verify", f"--root={root}", name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_is_clean(fake_root: Path, name: str) -> None:
    done = verify(fake_root, instance(name))
    # verify exits 0 on an unknown or invalid key and only prints it: the output must be empty
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_verify_in_the_fake_root_reports_a_misspelt_key_and_a_missing_program(
    fake_root: Path,
) -> None:
    """The check above could fail: the same verify run sees a typo and a missing program."""
    text = (UNIT_DIR / "camfleet-coordinator.service").read_text()
    assert "MemoryMax=256M" in text and "CPUQuota=100%" in text
    etc = fake_root / "etc/systemd/system"
    (etc / "typo-check.service").write_text(
        text.replace("MemoryMax=256M", "MemoryMaximum=256M").replace("100%", "100 percent")
    )
    typo = verify(fake_root, "typo-check.service")
    assert typo.returncode == 0  # only printed: why the test reads the output
    assert "Unknown key 'MemoryMaximum'" in typo.stderr
    assert "Invalid CPU quota '100 percent'" in typo.stderr
    (etc / "noexec-check.service").write_text(
        text.replace(
            "/opt/camfleet/current/venv/bin/camfleet",
            "/opt/camfleet/current/venv/bin/not-installed",
        )
    )
    noexec = verify(fake_root, "noexec-check.service")
    assert noexec.returncode != 0
    assert "/opt/camfleet/current/venv/bin/not-installed is not executable" in noexec.stderr


# --- MemoryMax against what each program really takes ---------------------------------------


# The program's own peak (VmHWM of its address space), written at exit. Not the parent's
# ru_maxrss of the child: that counts the pytest process it was forked from.
PEAK_WRAPPER = """
import atexit, os, re, sys
from app.cli import main
def record():
    hwm = re.search(r"^VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read(), re.M)
    open(os.environ["PEAK_FILE"], "w").write(hwm.group(1))
atexit.register(record)
sys.exit(main(sys.argv[1:]))
"""


def peak_rss_bytes(tmp_path: Path, args: list[str]) -> int:
    """Run ``camfleet ARGS`` to its end in a child; the child's peak RSS."""
    peak_file = tmp_path / "peak-kb"
    done = subprocess.run(
        [sys.executable, "-c", PEAK_WRAPPER, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ | {"PEAK_FILE": str(peak_file)},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return int(peak_file.read_text()) * 1024


def exec_args(name: str) -> list[str]:
    """The unit's ExecStart arguments after the program, without its --config."""
    exec_start = one(unit(name)["Service"], "ExecStart")
    assert exec_start is not None
    args = shlex.split(exec_start)[1:]
    at = args.index("--config")
    return args[:at] + args[at + 2 :]


def cap_bytes(name: str) -> int:
    memory_max = LIMITS[name].memory_max
    assert memory_max is not None and memory_max.endswith("M")
    return int(memory_max[:-1]) * MIB


@pytest.mark.parametrize("name", ["sync-client.service", "sync-master.service"])
def test_the_sync_role_peaks_well_under_its_memory_max(tmp_path: Path, name: str) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"node_id": "cam-c", "cam_id": "CAM_C"}))
    args = [*exec_args(name), "--config", str(config), "--dry-run"]
    peak = peak_rss_bytes(tmp_path, [*args, "--conf-path", str(tmp_path / "camfleet.conf")])
    assert peak < 0.6 * cap_bytes(name), f"{peak / MIB:.0f} MB of {LIMITS[name].memory_max}"


def test_a_dashcam_cycle_peaks_well_under_its_memory_max(tmp_path: Path) -> None:
    settings = yaml.safe_load((ROOT / "deploy" / "dashcam.example.yaml").read_text())
    battery = tmp_path / "battery-info.sh"
    battery.write_text('#!/bin/sh\necho \'{"percent": 90, "on_ac": true}\'\n')
    battery.chmod(0o755)
    key = tmp_path / "id_ed25519"
    key.write_text("")
    key.chmod(0o600)
    settings["data_dir"] = str(tmp_path / "data")
    settings["power"]["command"] = [str(battery)]
    dashcam = settings["dashcam"]
    dashcam["upload"] |= {"host": "127.0.0.1", "port": 9, "ssh_key": str(key)}
    dashcam["camera"]["mount_base"] = str(tmp_path / "mnt" / "cam")
    dashcam["paths"] = {
        "local_staging": str(tmp_path / "staging"),
        "log_path": str(tmp_path / "dashcam.log"),
    }
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump(settings))
    name = "camfleet-dashcam.service"
    peak = peak_rss_bytes(
        tmp_path, [*exec_args(name), "--config", str(config), "--dry-run", "--once"]
    )
    assert peak < 0.6 * cap_bytes(name), f"{peak / MIB:.0f} MB of {LIMITS[name].memory_max}"


def test_the_idle_coordinator_peaks_well_under_its_memory_max(tmp_path: Path) -> None:
    fleet = RunningFleet(root=tmp_path)
    child = fleet.start_coordinator()
    try:
        status = Path(f"/proc/{child.proc.pid}/status").read_text()
    finally:
        stop_all([child])
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert found is not None
    peak = int(found.group(1)) * 1024
    name = "camfleet-coordinator.service"
    assert peak < 0.6 * cap_bytes(name), f"{peak / MIB:.0f} MB of {LIMITS[name].memory_max}"
