"""Side-by-side installs under ``updater.install_root`` and the atomic switch between them.

Layout::

    install_root/
      base/                  the third-party dependencies' venv (deploy/setup-node.sh)
      versions/<v>/venv/     one installed version (versions/<v>/.complete once whole)
      versions/.staging-<v>/ a version being built (removed and rebuilt after a crash)
      current -> versions/<v>

Dependencies: each version's venv is made with ``python -m venv --without-pip`` from the
base's interpreter (``--system-site-packages`` when the base has it), and a ``.pth`` file
adds the base's site-packages, so a release that changes only camfleet installs in
seconds and downloads nothing but its own archive. The release's camfleet wheel and any
wheels the archive carries in ``wheels/`` are installed with ``pip install --no-index
--no-deps`` (pip itself is the base's), then ``pip check`` must pass, or the install is
refused: a release needing a dependency the base lacks must ship it in ``wheels/``. A
release's own ``wheels/`` land in its own venv, ahead of the base on ``sys.path``, so a
newer dependency never changes what the running version sees.

The build happens in ``versions/.staging-<v>``; its console scripts' ``#!`` lines are
pointed at the final folder and ``.complete`` is written before one ``rename`` makes it
``versions/<v>``: a folder by that name is always whole. ``current`` is switched by
making a symlink under a temporary name and ``os.replace``-ing it over ``current``.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from common.fsutil import atomic_write_bytes, fsync_dir
from node_agent.commands import CommandFailed, CommandRunner

COMPLETE = ".complete"
BASE_PTH = "_camfleet_base.pth"
MAX_MEMBERS = 2000


class InstallError(Exception):
    """The release could not be installed; nothing in use was changed."""


@dataclass(frozen=True)
class Layout:
    """Where versions live."""

    root: Path
    base: Path

    @property
    def versions(self) -> Path:
        return self.root / "versions"

    @property
    def current(self) -> Path:
        return self.root / "current"

    def folder(self, version: str) -> Path:
        return self.versions / version

    def python(self, version: str) -> Path:
        return self.folder(version) / "venv" / "bin" / "python"

    def is_complete(self, version: str) -> bool:
        return (self.folder(version) / COMPLETE).is_file()

    def current_version(self) -> str | None:
        """The version ``current`` points at (None without the link)."""
        try:
            return Path(os.readlink(self.current)).name
        except OSError:
            return None

    def installed(self) -> list[str]:
        """Every whole installed version, oldest install first."""
        if not self.versions.is_dir():
            return []
        found = [
            (p.joinpath(COMPLETE).stat().st_mtime, p.name)
            for p in self.versions.iterdir()
            if not p.name.startswith(".") and p.joinpath(COMPLETE).is_file()
        ]
        return [name for _, name in sorted(found)]


def _extract(archive: Path, into: Path) -> None:
    """Unpack a release archive: regular files and folders only, inside ``into``."""
    into.mkdir(parents=True)
    if archive.name.endswith(".whl"):
        shutil.copy2(archive, into / archive.name)
        return
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise InstallError(f"{archive.name} holds {len(members)} files, too many")
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise InstallError(f"{archive.name}: {member.name} is not a regular file")
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise InstallError(f"{archive.name}: {member.name} points outside it")
            # "data": no absolute paths, no "..", no links or devices, no set-uid bits.
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError, EOFError) as err:
        raise InstallError(f"{archive.name} cannot be unpacked: {err}") from err


def _wheels(release: Path, version: str) -> tuple[Path, list[Path]]:
    """The release's camfleet wheel and the extra ones from ``wheels/``."""
    own = sorted(release.glob("camfleet-*.whl"))
    if len(own) != 1:
        raise InstallError(f"the archive must hold one camfleet wheel, not {len(own)}")
    wheel_version = own[0].name.split("-")[1]
    try:
        same = Version(wheel_version) == Version(version)
    except InvalidVersion:
        same = False
    if not same:
        raise InstallError(f"the archive's wheel {own[0].name} is not version {version}")
    return own[0], sorted((release / "wheels").glob("*.whl"))


def venv_options(base: Path) -> list[str]:
    """A version's venv sees the system's packages when the base does (python3-picamera2
    comes from Raspberry Pi OS: deploy/setup-node.sh makes the base that way)."""
    try:
        cfg = (base / "pyvenv.cfg").read_text()
    except OSError:
        return []
    for line in cfg.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "include-system-site-packages" and value.strip().lower() == "true":
            return ["--system-site-packages"]
    return []


def _purelib(runner: CommandRunner, python: Path) -> str:
    done = runner.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        mutates=False,
    )
    return done.stdout.strip()


def _point_scripts(bin_dir: Path, old: Path, new: Path) -> None:
    """Console scripts name their interpreter by absolute path: the staging one becomes
    the final one."""
    old_line, new_line = f"#!{old}/".encode(), f"#!{new}/".encode()
    for script in bin_dir.iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(old_line):
            script.write_bytes(new_line + data[len(old_line) :])


def install(
    layout: Layout,
    archive: Path,
    version: str,
    sha256: str,
    runner: CommandRunner,
    on_step: Callable[[str], None] = lambda _step: None,
) -> Path:
    """Build ``versions/<version>`` from a verified archive; its folder. ``on_step`` is
    told "installing" half way (the crash tests stop there)."""
    final = layout.folder(version)
    if layout.is_complete(version):
        return final  # installed before (an apply retried after a crash)
    if layout.current_version() == version:
        raise InstallError(f"{version} is current but incomplete; reinstall it by hand")
    base_python = layout.base / "bin" / "python"
    if not base_python.exists():
        raise InstallError(f"no base venv at {layout.base} (deploy/setup-node.sh makes it)")
    layout.versions.mkdir(parents=True, exist_ok=True)
    staging = layout.versions / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    if final.exists():
        shutil.rmtree(final)  # a folder without .complete: not whole, never current
    try:
        _extract(archive, staging / "release")
        wheel, extra = _wheels(staging / "release", version)
        venv = staging / "venv"
        runner.run(
            [
                str(base_python),
                "-m",
                "venv",
                "--without-pip",
                *venv_options(layout.base),
                str(venv),
            ],
            check=True,
        )
        python = venv / "bin" / "python"
        site = Path(_purelib(runner, python))
        site.joinpath(BASE_PTH).write_text(_purelib(runner, base_python) + "\n")
        pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        runner.run(
            [*pip, "install", "--no-index", "--no-deps", "--no-cache-dir", str(wheel)]
            + [str(w) for w in extra],
            check=True,
        )
        on_step("installing")
        runner.run([*pip, "check"], check=True, mutates=False)
        _point_scripts(venv / "bin", staging, final)
        shutil.rmtree(staging / "release")
        marker = {"version": version, "sha256": sha256, "installed_at": time.time()}
        atomic_write_bytes(staging / COMPLETE, json.dumps(marker).encode())
        os.rename(staging, final)
        fsync_dir(layout.versions)
    except CommandFailed as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallError(f"installing {version} failed: {err}") from err
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def switch(layout: Layout, version: str) -> None:
    """Point ``current`` at ``versions/<version>`` in one step."""
    if not layout.is_complete(version):
        raise InstallError(f"versions/{version} is not a whole install")
    tmp = layout.root / f".current-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(Path("versions") / version, tmp)
    os.replace(tmp, layout.current)
    fsync_dir(layout.root)


def prune(layout: Layout, keep: int, protect: set[str]) -> list[str]:
    """Delete the oldest installs beyond ``keep`` (never current or ``protect``) and
    leftover staging folders; the versions deleted."""
    protect = protect | {v for v in [layout.current_version()] if v}
    installed = layout.installed()
    removable = [v for v in installed if v not in protect]
    excess = max(0, len(installed) - keep)
    gone = removable[:excess]
    for version in gone:
        shutil.rmtree(layout.folder(version), ignore_errors=True)
    for leftover in layout.versions.glob(".staging-*") if layout.versions.is_dir() else []:
        shutil.rmtree(leftover, ignore_errors=True)
    return gone
