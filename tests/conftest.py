"""Shared fixtures: real coordinator and agent processes on loopback ports."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.demo import Child, spawn, stop_all, wait_healthy
from bench.common import free_port
from tests.pg import coordinator_db_url, db_url, pg_cluster, postgres_url

__all__ = ["coordinator_db_url", "db_url", "pg_cluster", "postgres_url"]  # fixtures from tests.pg

CAMERAS = (("CAM_L", "left"), ("CAM_C", "centre"), ("CAM_R", "right"))
TEST_CAMERA = {
    "CAMFLEET_CAMERA__SOURCE": "synthetic",
    "CAMFLEET_CAMERA__WIDTH": "320",
    "CAMFLEET_CAMERA__HEIGHT": "240",
    "CAMFLEET_CAMERA__BITRATE_BPS": "2000000",
    "CAMFLEET_CAMERA__BITRATE_MIN_BPS": "500000",
}
# Test agents share this machine's clock and have no chronyd to ask: the clock gate warns
# instead of refusing (tests of the gate itself set the policy they test).
NO_CHRONY = {"CAMFLEET_GATES__CLOCK_POLICY": "warn"}


@dataclass
class RunningFleet:
    """A coordinator and agents started as real processes for one test."""

    root: Path
    operator_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    fleet_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    coordinator_port: int = field(default_factory=free_port)
    coordinator: Child | None = None
    agents: dict[str, Child] = field(default_factory=dict)
    coordinator_env: dict[str, str] = field(default_factory=dict)
    fps: float = 30.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.coordinator_port}"

    def client(self, token: str | None = None) -> httpx.Client:
        """An operator client for the coordinator."""
        tok = self.operator_token if token is None else token
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {tok}"}, timeout=30
        )

    def start_coordinator(self, wait: bool = True) -> Child:
        """Start the coordinator; with ``wait``, return once it answers /health."""
        env = {
            "CAMFLEET_OPERATOR_TOKEN": self.operator_token,
            "CAMFLEET_FLEET_TOKEN": self.fleet_token,
            "CAMFLEET_DATA_DIR": str(self.root / "coordinator"),
            "CAMFLEET_POLL_INTERVAL_S": "0.5",
            "CAMFLEET_OFFLINE_AFTER_S": "3",
            "CAMFLEET_HEARTBEAT_INTERVAL_S": "0.5",
            "CAMFLEET_COMMAND_TIMEOUT_S": "2",
            "CAMFLEET_MANIFEST_SYNC_INTERVAL_S": "1",
        } | self.coordinator_env
        self.coordinator = spawn(
            "coordinator", "coordinator", self.coordinator_port, env, self.root / "coordinator.log"
        )
        if wait:
            wait_healthy([self.coordinator])
        return self.coordinator

    def start_fleet(
        self,
        cams: Sequence[tuple[str, str]] = CAMERAS,
        extra: Mapping[str, Mapping[str, str]] | None = None,
        online_timeout_s: float = 20.0,
        **common: str,
    ) -> None:
        """The coordinator and the agents started at once (their start-ups overlap; an
        agent that finds no coordinator yet tries its join again), then every agent
        online."""
        coordinator = self.start_coordinator(wait=False)
        self.start_agents(cams, extra, **common)
        wait_healthy([coordinator])
        self.wait_online(len(cams), timeout_s=online_timeout_s)

    def start_agent(self, cam_id: str, position: str, **extra: str) -> Child:
        """Start one agent and wait until it answers /health."""
        (child,) = self.start_agents([(cam_id, position)], {cam_id: extra})
        return child

    def start_agents(
        self,
        cams: Sequence[tuple[str, str]] = CAMERAS,
        extra: Mapping[str, Mapping[str, str]] | None = None,
        **common: str,
    ) -> list[Child]:
        """Start agents (``(cam_id, position)``) all at once, so their start-ups overlap,
        and wait until every one answers /health. ``common`` settings go to each agent,
        ``extra[cam_id]`` to that one."""
        children = []
        for cam_id, position in cams:
            env = (
                {
                    "CAMFLEET_NODE_ID": cam_id.lower().replace("_", "-"),
                    "CAMFLEET_CAM_ID": cam_id,
                    "CAMFLEET_POSITION": position,
                    "CAMFLEET_DATA_DIR": str(self.root / cam_id),
                    "CAMFLEET_COORDINATOR_URL": self.url,
                    "CAMFLEET_FLEET_TOKEN": self.fleet_token,
                    "CAMFLEET_HEARTBEAT_INTERVAL_S": "0.5",
                    "CAMFLEET_JOIN_BACKOFF_MAX_S": "1",
                    "CAMFLEET_CAMERA__FPS": str(self.fps),
                }
                | TEST_CAMERA
                | NO_CHRONY
                | common
                | dict((extra or {}).get(cam_id, {}))
            )
            env = {k: v for k, v in env.items() if v != ""}  # "" means: leave the setting out
            child = spawn(cam_id, "agent", free_port(), env, self.root / f"{cam_id}.log")
            self.agents[cam_id] = child  # registered at once: stopped with the rest if it fails
            children.append(child)
        wait_healthy(children)
        return children

    def wait_online(self, count: int, timeout_s: float = 20.0) -> dict[str, object]:
        """Wait until ``count`` nodes are online at the coordinator."""
        deadline = time.monotonic() + timeout_s
        with self.client() as c:
            while True:
                body = c.get("/api/v1/nodes").json()
                if body["online"] >= count:
                    return dict(body)
                if time.monotonic() > deadline:
                    raise AssertionError(f"only {body['online']} of {count} nodes online: {body}")
                time.sleep(0.1)

    def recordings_dir(self, cam_id: str) -> Path:
        return self.root / cam_id / "recordings"

    def kill(self, child: Child, sig: int = signal.SIGKILL) -> None:
        os.killpg(child.proc.pid, sig)
        child.proc.wait(10)

    def children(self) -> list[Child]:
        out = list(self.agents.values())
        if self.coordinator is not None:
            out.append(self.coordinator)
        return out

    def logs(self) -> str:
        parts = []
        for log in sorted(self.root.glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


@pytest.fixture(scope="session", autouse=True)
def _status_file_of_in_process_agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Agents built inside the test process write their status file here, not to the
    machine's /run/camfleet (agents started as processes each get their own)."""
    saved = os.environ.get("CAMFLEET_STATUS_FILE")
    os.environ["CAMFLEET_STATUS_FILE"] = str(tmp_path_factory.mktemp("status") / "status.json")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CAMFLEET_STATUS_FILE", None)
        else:
            os.environ["CAMFLEET_STATUS_FILE"] = saved


@pytest.fixture
def fleet_factory(tmp_path: Path, coordinator_db_url: str) -> Iterator[RunningFleet]:
    """A RunningFleet on ``coordinator_db_url`` whose processes are all stopped after the test."""
    fleet = RunningFleet(
        root=tmp_path, coordinator_env={"CAMFLEET_DATABASE_URL": coordinator_db_url}
    )
    try:
        yield fleet
    finally:
        stop_all(fleet.children(), timeout_s=20)


@pytest.fixture
def three_cameras(fleet_factory: RunningFleet) -> RunningFleet:
    """A coordinator and CAM_L, CAM_C, CAM_R, all joined."""
    fleet_factory.start_fleet(CAMERAS)
    return fleet_factory


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """A coordinator and one agent (CAM_C), shared by the tests of one module."""
    running = RunningFleet(root=tmp_path_factory.mktemp("fleet"))
    try:
        running.start_coordinator()
        running.start_agent("CAM_C", "centre")
        running.wait_online(1)
        yield running
    finally:
        stop_all(running.children())


@pytest.fixture(scope="module")
def agent(fleet: RunningFleet) -> Iterator[httpx.Client]:
    """A client for CAM_C's own API, with its token."""
    token = (fleet.root / "CAM_C" / "api_token").read_text().strip()
    with httpx.Client(
        base_url=f"http://127.0.0.1:{fleet.agents['CAM_C'].port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:
        yield client
