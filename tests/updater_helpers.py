"""Stand-ins for the updater's tests: real releases of camfleet built from this tree, a
release server on loopback (Range, one dropped connection on request), a base venv, and
a ``systemctl`` on PATH that acts like systemd for one unit and the finisher's template."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.identity import public_key_text
from node_agent.updater.install import COMPLETE, _point_scripts
from node_agent.updater.verify import sign_archive

REPO = Path(__file__).resolve().parent.parent
OLD, NEW, BROKEN = "1.0.0", "1.0.1", "1.0.2"
CAMFLEET_PACKAGES = {"app", "common", "node_agent", "migrations"}


# --- releases --------------------------------------------------------------------------


def _build_wheel(version: str, out: Path, broken: bool = False) -> Path:
    """``pip wheel`` of a copy of this tree at ``version`` (broken: its agent exits at
    start, as a release with a bad import would)."""
    src = out / f"src-{version}"
    shutil.rmtree(src, ignore_errors=True)
    # the tree as it is, committed or not (untracked files but the ignored ones too)
    files = subprocess.run(
        [
            "git",
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            "app",
            "common",
            "node_agent",
            "migrations",
            "pyproject.toml",
            "README.md",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    pyproject = src / "pyproject.toml"
    text = re.sub(r'(?m)^version = "[^"]*"', f'version = "{version}"', pyproject.read_text())
    pyproject.write_text(text)
    if broken:
        main = src / "node_agent" / "main.py"
        main.write_text(main.read_text() + '\nraise SystemExit("this release is broken")\n')
    dist = out / f"dist-{version}"
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--disable-pip-version-check",
            "-w",
            str(dist),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    shutil.rmtree(src)
    (wheel,) = dist.glob("camfleet-*.whl")
    return wheel


def pack(wheel: Path, version: str, out: Path, name_version: str | None = None) -> Path:
    """``camfleet-<v>.tar.gz`` holding the wheel at its top."""
    archive = out / f"camfleet-{name_version or version}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(wheel, arcname=wheel.name)
    return archive


@dataclass
class Releases:
    """The session's built releases and the key that signed them."""

    root: Path
    key: Ed25519PrivateKey
    archives: dict[str, Path]
    wheels: dict[str, Path]

    @property
    def public_key(self) -> str:
        return public_key_text(self.key)

    def assets(self, version: str, key: Ed25519PrivateKey | None = None) -> dict[str, bytes]:
        """The archive and its .sha256 and .sig, as a release publishes them."""
        archive = self.archives[version]
        data = archive.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        sig = sign_archive(key or self.key, archive.name, digest)
        return {
            archive.name: data,
            f"{archive.name}.sha256": f"{digest}  {archive.name}\n".encode(),
            f"{archive.name}.sig": (sig + "\n").encode(),
        }


def shared_root(factory: object) -> Path:
    """One folder per test run that every xdist worker of the run shares."""
    base: Path = factory.getbasetemp()  # type: ignore[attr-defined]
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "camfleet-releases"


def build_releases(root: Path) -> Releases:
    """OLD, NEW and BROKEN, built once per run (shared by the test workers: a file lock)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        key_path = root / "release-key.raw"
        if not (root / "done").exists():
            key = Ed25519PrivateKey.generate()
            from cryptography.hazmat.primitives import serialization

            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            )
            for version in (OLD, NEW, BROKEN):
                wheel = _build_wheel(version, root, broken=version == BROKEN)
                pack(wheel, version, root)
            (root / "done").touch()
        key = Ed25519PrivateKey.from_private_bytes(key_path.read_bytes())
    wheels = {v: next((root / f"dist-{v}").glob("*.whl")) for v in (OLD, NEW, BROKEN)}
    archives = {v: root / f"camfleet-{v}.tar.gz" for v in (OLD, NEW, BROKEN)}
    return Releases(root, key, archives, wheels)


def make_base(root: Path) -> Path:
    """A base venv holding this environment's dependencies (not camfleet itself): a venv
    whose site-packages links to each of the test venv's entries but camfleet's."""
    base = root / "base"
    with (root / ".base-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / "ready").exists():
            return base
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base)], check=True)
        site = Path(
            subprocess.run(
                [
                    str(base / "bin" / "python"),
                    "-c",
                    "import sysconfig; print(sysconfig.get_path('purelib'))",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        import sysconfig

        ours = Path(sysconfig.get_path("purelib"))
        for entry in ours.iterdir():
            lowered = entry.name.lower()
            # camfleet itself (editable or not) stays out: only its dependencies are shared
            if "camfleet" in lowered or lowered in CAMFLEET_PACKAGES or lowered == "__pycache__":
                continue
            (site / entry.name).symlink_to(entry)
        (base / "ready").touch()
    return base


def install_template(releases: Releases, base: Path, root: Path) -> Path:
    """An install root with OLD installed by the updater's own installer, built once; each
    test copies it (``copy_install``)."""
    from node_agent.commands import CommandRunner
    from node_agent.updater.install import Layout, install, switch

    template = root / f"template-{OLD}"
    with (root / ".template-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (template / "ready").exists():
            shutil.rmtree(template, ignore_errors=True)
            layout = Layout(template / "opt", base)
            archive = releases.archives[OLD]
            runner = CommandRunner(env={"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"})
            install(layout, archive, OLD, "0" * 64, runner)
            switch(layout, OLD)
            (template / "ready").touch()
    return template / "opt"


def copy_install(template: Path, dest: Path) -> Path:
    """A copy of the template install root at ``dest``, its scripts pointed at the copy."""
    shutil.copytree(template, dest, symlinks=True)
    for folder in (dest / "versions").iterdir():
        if (folder / COMPLETE).exists():
            _point_scripts(folder / "venv" / "bin", template / "versions" / folder.name, folder)
    return dest


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content's SHA-256 (links: their target)."""
    listing: dict[str, str] = {}
    if not root.exists():
        return listing
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            listing[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            listing[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            listing[rel] = "dir"
    return listing


# --- the release server ----------------------------------------------------------------


@dataclass
class ReleaseServer:
    """A feed and its assets on 127.0.0.1, with Range; ``drop_once`` cuts the next archive
    download half way."""

    files: dict[str, bytes] = field(default_factory=dict)
    feed: bytes = b"[]"
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    drop_once: bool = False
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def publish(self, version: str, assets: dict[str, bytes], notes: str = "notes") -> None:
        """Add a release to the feed (newest first, as GitHub lists them)."""
        self.files.update(assets)
        doc = json.loads(self.feed)
        doc.insert(
            0,
            {
                "tag_name": f"v{version}",
                "name": f"camfleet {version}",
                "body": notes,
                "published_at": "2026-12-01T10:00:00Z",
                "draft": False,
                "prerelease": False,
                "assets": [
                    {"name": n, "browser_download_url": f"{self.url}/download/{n}", "size": len(b)}
                    for n, b in assets.items()
                ],
            },
        )
        self.feed = json.dumps(doc).encode()


@contextmanager
def release_server() -> Iterator[ReleaseServer]:
    """Serve a ReleaseServer until the block ends."""
    state = ReleaseServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("Range")))
            if self.path == "/releases":
                body = state.feed
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            name = self.path.removeprefix("/download/")
            data = state.files.get(name)
            if data is None:
                self.send_error(404)
                return
            start = 0
            match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
            if match:
                start = int(match.group(1))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            chunk = data[start:]
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if state.drop_once and name.endswith(".tar.gz") and len(chunk) > 1000:
                state.drop_once = False
                self.wfile.write(chunk[: len(chunk) // 3])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# --- systemd for one unit --------------------------------------------------------------

_FAKE_SYSTEMCTL = r"""
import json, os, signal, subprocess, sys, time
state = os.environ["FAKE_SYSTEMD_DIR"]
def note(argv):
    with open(os.path.join(state, "calls.jsonl"), "a") as fh:
        fh.write(json.dumps({"argv": argv, "t": time.time(), "pid": os.getpid()}) + "\n")
def pid():
    try:
        p = int(open(os.path.join(state, "agent.pid")).read())
        with open(f"/proc/{p}/stat") as fh:
            return None if fh.read().rsplit(")", 1)[1].split()[0] == "Z" else p
    except (OSError, ValueError):
        return None
def stop():
    p = pid()
    if p is None:
        return
    os.kill(p, signal.SIGTERM)
    end = time.time() + 15
    while pid() is not None and time.time() < end:
        time.sleep(0.05)
    if pid() is not None:
        os.kill(p, signal.SIGKILL)
        while pid() is not None:
            time.sleep(0.05)
def start():
    if pid() is not None:
        return
    unit = json.load(open(os.path.join(state, "unit.json")))
    log = open(os.path.join(state, "agent.log"), "ab")
    proc = subprocess.Popen(unit["exec"], env=unit["env"], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    tmp = os.path.join(state, "agent.pid.tmp")
    open(tmp, "w").write(str(proc.pid))
    os.replace(tmp, os.path.join(state, "agent.pid"))
    with open(os.path.join(state, "started.jsonl"), "a") as fh:
        fh.write(json.dumps({"pid": proc.pid, "current": os.readlink(unit["current"])}) + "\n")
def start_instance(name):
    # a template's instance: its ExecStart with %i, as systemd would run it, detached
    template, _, rest = name.partition("@")
    instance = rest.removesuffix(".service")
    argv = json.load(open(os.path.join(state, "templates.json")))[template + "@.service"]
    log = open(os.path.join(state, f"{name}.log"), "ab")
    proc = subprocess.Popen([a.replace("%i", instance) for a in argv], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    with open(os.path.join(state, "transient.pids"), "a") as fh:
        fh.write(f"{proc.pid}\n")
args = sys.argv[1:]
note(["systemctl", *args])
verb = args[0] if args else ""
units = [a for a in args[1:] if not a.startswith("-")]
if verb == "restart":
    stop(); start()
elif verb == "start" and units and "@" in units[0]:
    start_instance(units[0])
elif verb == "start":
    start()
elif verb == "stop":
    stop()
elif verb == "is-active":
    sys.exit(0 if pid() is not None else 3)
else:
    sys.exit(1)
"""


@dataclass
class FakeSystemd:
    """The stand-in's folder: calls, the unit's pid, the agent's log."""

    dir: Path
    bin: Path

    def env(self) -> dict[str, str]:
        return {"FAKE_SYSTEMD_DIR": str(self.dir), "PATH": f"{self.bin}:{os.environ['PATH']}"}

    def systemctl(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin / "systemctl"), *args],
            env={**os.environ, **self.env()},
            check=True,
            timeout=60,
        )

    def calls(self) -> list[list[str]]:
        path = self.dir / "calls.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line)["argv"] for line in lines]

    def starts(self) -> list[dict[str, Any]]:
        path = self.dir / "started.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    def agent_pid(self) -> int | None:
        try:
            pid = int((self.dir / "agent.pid").read_text())
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return None
        return None if stat.rsplit(")", 1)[1].split()[0] == "Z" else pid

    def finisher_pids(self) -> list[int]:
        path = self.dir / "transient.pids"
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def kill_everything(self) -> None:
        for pid in [self.agent_pid(), *self.finisher_pids()]:
            if pid is None:
                continue
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def template_exec(unit: Path, paths: dict[str, str]) -> list[str]:
    """A committed template unit's ExecStart as argv, its absolute paths moved (``paths``:
    the deploy path's prefix to the test's), so the stand-in runs the real command."""
    line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    for old, new in paths.items():
        argv = [new + a[len(old) :] if a.startswith(old) else a for a in argv]
    return argv


def fake_systemd(
    root: Path,
    exec_argv: list[str],
    env: dict[str, str],
    current: Path,
    templates: dict[str, list[str]] | None = None,
) -> FakeSystemd:
    """Write the stand-in, the unit (its command and environment) and the templates."""
    bin_dir, state = root / "fakebin", root / "systemd"
    bin_dir.mkdir(parents=True)
    state.mkdir(parents=True)
    path = bin_dir / "systemctl"
    path.write_text(f"#!{sys.executable}\n{_FAKE_SYSTEMCTL}")
    path.chmod(0o755)
    (state / "templates.json").write_text(json.dumps(templates or {}))
    fake = FakeSystemd(state, bin_dir)
    unit_env = {**os.environ, **env, **fake.env()}
    (state / "unit.json").write_text(
        json.dumps({"exec": exec_argv, "env": unit_env, "current": str(current)})
    )
    return fake


def tar_with(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A tar.gz of ``members`` (and symlinks ``links``: name -> target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()
