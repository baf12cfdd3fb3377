"""One node as systemd would run it: an install root with OLD current, the agent started
by the stand-in ``systemctl`` from ``current/venv/bin/camfleet agent``, a release server."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port
from tests.conftest import NO_CHRONY, TEST_CAMERA
from tests.updater_helpers import (
    FakeSystemd,
    Releases,
    ReleaseServer,
    build_releases,
    copy_install,
    fake_systemd,
    install_template,
    make_base,
    release_server,
    shared_root,
    template_exec,
)

UNIT = "camfleet-agent"
# The committed finisher unit: the stand-in runs its ExecStart with the test's paths.
FINISHER_UNIT = Path(__file__).resolve().parent.parent / "deploy/systemd/camfleet-update@.service"


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    """OLD, NEW and BROKEN, built once per run."""
    return build_releases(shared_root(tmp_path_factory))


@pytest.fixture(scope="session")
def template(releases: Releases) -> Path:
    """An install root with OLD installed, copied by each test."""
    return install_template(releases, make_base(releases.root), releases.root)


@dataclass
class Node:
    """A node under test."""

    root: Path
    opt: Path
    data: Path
    port: int
    token: str
    systemd: FakeSystemd
    server: ReleaseServer

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )

    def version(self) -> str | None:
        """What the agent on the port reports (None: nothing answers)."""
        try:
            answer = httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2)
            return str(answer.json()["version"]) if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError):
            return None

    def wait_version(self, version: str, timeout_s: float = 60) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.version() == version:
                return
            time.sleep(0.1)
        raise AssertionError(f"no agent {version} within {timeout_s} s; log:\n{self.log()}")

    def current(self) -> str:
        return (self.opt / "current").readlink().name

    def progress(self) -> dict[str, Any]:
        with self.client() as c:
            answer = c.get("/api/v1/update/status")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait_end(self, timeout_s: float = 90) -> dict[str, Any]:
        """Until the update is over (done, rolled back or failed) and the agent answers."""
        end = time.monotonic() + timeout_s
        last: dict[str, Any] = {}
        while time.monotonic() < end:
            try:
                last = self.progress()
            except (httpx.HTTPError, AssertionError):
                time.sleep(0.2)
                continue
            pending = (self.data / "updates" / "pending.json").exists()
            if last["state"] in ("done", "rolled_back", "failed") and not pending:
                return last
            time.sleep(0.2)
        raise AssertionError(f"update not over within {timeout_s} s: {last}\n{self.log()}")

    def log(self) -> str:
        parts = []
        for path in sorted(self.systemd.dir.glob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def history(self) -> list[dict[str, Any]]:
        return list(json.loads((self.data / "updates" / "history.json").read_text()))


@contextmanager
def running_node(
    root: Path, releases: Releases, template: Path, start: bool = True, **env: str
) -> Iterator[Node]:
    """A node with OLD running; its processes are killed when the block ends."""
    opt = copy_install(template, root / "opt")
    port, token = free_port(), secrets.token_urlsafe(24)
    with release_server() as server:
        unit_env = (
            {
                "CAMFLEET_NODE_ID": "cam-c",
                "CAMFLEET_CAM_ID": "CAM_C",
                "CAMFLEET_PORT": str(port),
                "CAMFLEET_HOST": "127.0.0.1",
                "CAMFLEET_DATA_DIR": str(root / "data"),
                "CAMFLEET_API_TOKEN": token,
                "CAMFLEET_CHRONYC_PATH": "/nonexistent/camfleet-tests/chronyc",
                "CAMFLEET_CLOCK_POLL_INTERVAL_S": "3600",
                "CAMFLEET_STATUS_FILE": "",
                "CAMFLEET_STORAGE__MIN_FREE_MINUTES": "0",
                "CAMFLEET_STORAGE__RESERVE_S": "2",
                "CAMFLEET_UPDATER__FEED_URL": f"{server.url}/releases",
                "CAMFLEET_UPDATER__PUBLIC_KEY": releases.public_key,
                "CAMFLEET_UPDATER__INSTALL_ROOT": str(opt),
                "CAMFLEET_UPDATER__BASE_VENV": str(releases.root / "base"),
                "CAMFLEET_UPDATER__UNIT": UNIT,
                "CAMFLEET_UPDATER__HEALTH_DEADLINE_S": "25",
                "CAMFLEET_UPDATER__FINISHER_GRACE_S": "2",
            }
            | TEST_CAMERA
            | NO_CHRONY
            | env
        )
        finisher = template_exec(
            FINISHER_UNIT, {"/opt/camfleet": str(opt), "/var/lib/camfleet": str(root / "data")}
        )
        systemd = fake_systemd(
            root,
            [str(opt / "current" / "venv" / "bin" / "camfleet"), "agent"],
            unit_env,
            opt / "current",
            {"camfleet-update@.service": finisher},
        )
        node = Node(root, opt, root / "data", port, token, systemd, server)
        try:
            if start:
                systemd.systemctl("start", UNIT)
                node.wait_version(releases_old())
            yield node
        finally:
            systemd.kill_everything()


def releases_old() -> str:
    from tests.updater_helpers import OLD

    return OLD
