"""The dashcam's start-up checks (the seed's task 1): every tool the settings need is
there, and the upload key is private.

Each problem is one sentence that names the missing thing and how to get it
(``sudo apt-get install uhubctl rsync openssh-client``). ``run_dashcam`` refuses to start
on any problem, except under ``--dry-run``, which prints them and goes on (a plan is
useful before the tools are installed). The upload checks the key again when it uploads.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from common.fsutil import PRIVATE_MODES
from node_agent.dashcam.settings import DashcamSettings

# Debian package of each program (what `apt-get install` needs).
PACKAGES = {
    "uhubctl": "uhubctl",
    "udevadm": "udev",
    "mount": "mount",
    "umount": "mount",
    "sync": "coreutils",
    "rsync": "rsync",
    "ssh": "openssh-client",
}


@dataclass(frozen=True)
class Problem:
    """One thing that keeps the dashcam from running."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}: {self.fix}"


def _find(program: str, path: str | None) -> str | None:
    if os.sep in program:
        p = Path(program)
        return program if p.is_file() and os.access(p, os.X_OK) else None
    return shutil.which(program, path=path)


def needed_programs(settings: DashcamSettings) -> list[str]:
    """The programs these settings run (the control scripts' own paths included)."""
    cam = settings.camera
    programs: list[str] = []
    if cam.control == "uhubctl":
        programs.append(cam.uhubctl)
    else:
        for script in (cam.start_for_data, cam.start_for_recording, cam.stop_all_ports):
            if script:
                programs.append(script[0])
    programs += ["udevadm", "mount", "umount", "sync", "rsync", "ssh"]
    return list(dict.fromkeys(programs))


def check_programs(settings: DashcamSettings, path: str | None = None) -> list[Problem]:
    """One problem per program that is not found (or a script that is not executable)."""
    problems: list[Problem] = []
    missing_pkgs: list[str] = []
    missing: list[str] = []
    for program in needed_programs(settings):
        if _find(program, path) is not None:
            continue
        name = Path(program).name
        if name in PACKAGES:
            missing.append(program)
            missing_pkgs.append(PACKAGES[name])
        elif Path(program).exists():
            problems.append(
                Problem(f"{program} is not executable", f"run: sudo chmod +x {program}")
            )
        else:
            problems.append(
                Problem(
                    f"control script {program} not found",
                    "copy the seed's control scripts there, or fix dashcam.camera."
                    "start_for_data / start_for_recording / stop_all_ports",
                )
            )
    if missing:
        pkgs = " ".join(dict.fromkeys(missing_pkgs))
        problems.insert(
            0,
            Problem(
                "not found on PATH: " + ", ".join(missing),
                f"install with: sudo apt-get install {pkgs}",
            ),
        )
    return problems


def check_key(key: Path) -> Problem | None:
    """The upload key must exist and be private (mode 0600 or 0400)."""
    try:
        st = key.stat()
    except FileNotFoundError:
        return Problem(
            f"dashcam.upload.ssh_key {key} does not exist",
            f"make one with: sudo ssh-keygen -t ed25519 -N '' -f {key} (and add the .pub "
            "to the NAS user's authorized_keys)",
        )
    except OSError as err:
        return Problem(f"dashcam.upload.ssh_key {key} cannot be read", str(err))
    mode = stat.S_IMODE(st.st_mode)
    if mode not in PRIVATE_MODES or not stat.S_ISREG(st.st_mode):
        return Problem(
            f"dashcam.upload.ssh_key {key} has mode {mode:04o}: others could read it",
            f"run: sudo chmod 600 {key}",
        )
    return None


def preflight(settings: DashcamSettings, path: str | None = None) -> list[Problem]:
    """Every problem found (empty: ready)."""
    problems = check_programs(settings, path)
    key = check_key(settings.upload.ssh_key)
    if key is not None:
        problems.append(key)
    return problems
