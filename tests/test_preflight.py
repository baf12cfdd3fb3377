"""`make test` first checks the system programs the tests need and says how to install them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("preflight.sh")
INSTALL = (
    "sudo apt-get install chrony prometheus chromium postgresql rsync openssh-server "
    "openssh-client libfaketime gcc iproute2"
)


def preflight(tmp_path: Path, tools: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the script with a PATH that holds only bash and stand-ins for ``tools``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    bash = shutil.which("bash")
    assert bash is not None
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\n")
        (bin_dir / tool).chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run([bash, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


def test_a_missing_chronyd_is_one_line_with_the_install_command(tmp_path: Path) -> None:
    done = preflight(
        tmp_path, ["promtool", "chromium", "pg_ctl", "initdb", "rsync", "ssh", "sshd", "cc", "ip"]
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "missing chronyd (chrony);" in done.stderr
    assert INSTALL in done.stderr


def test_every_missing_program_is_named(tmp_path: Path) -> None:
    done = preflight(tmp_path, [])
    assert done.returncode == 1
    for name in ("chronyd", "promtool", "chromium", "rsync", "ssh (openssh-client)", "cc (gcc)"):
        assert name in done.stderr


def test_all_present_passes_quietly(tmp_path: Path) -> None:
    done = preflight(
        tmp_path,
        ["chronyd", "promtool", "chromium", "pg_ctl", "initdb", "rsync", "ssh", "sshd", "cc", "ip"],
    )
    assert (done.returncode, done.stderr) == (0, "")
