"""One real agent process without a coordinator, and quick recordings made through its API."""

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

from app.demo import Child, spawn, stop_all, wait_healthy
from bench.common import free_port
from tests.conftest import NO_CHRONY, TEST_CAMERA

NO_CHRONYC = "/nonexistent/camfleet-tests/chronyc"


@dataclass
class SoloAgent:
    """A running agent: its process, an authenticated client and its recordings folder."""

    child: Child
    client: httpx.Client
    recordings: Path
    log: Path

    def record(self, session_id: str, seconds: float = 0.8) -> dict[str, Any]:
        """Start, wait, stop: the finished recording's manifest."""
        started = self.client.post(
            "/api/v1/recording/start",
            json={"session_id": session_id, "command_id": f"{session_id}-a"},
        )
        assert started.status_code == 200, started.text
        time.sleep(seconds)
        stopped = self.client.post(
            "/api/v1/recording/stop",
            json={"session_id": session_id, "command_id": f"{session_id}-o"},
        )
        assert stopped.status_code == 200, stopped.text
        manifest = stopped.json()["manifest"]
        assert manifest is not None
        return dict(manifest)

    def status(self) -> dict[str, Any]:
        answer = self.client.get("/api/v1/status")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def manifest_on_disk(self, manifest: dict[str, Any]) -> dict[str, Any]:
        path = self.recordings / f"{manifest['session_id']}_{manifest['cam_id']}.json"
        return dict(json.loads(path.read_text()))


@contextmanager
def solo_agent(root: Path, **env: str) -> Iterator[SoloAgent]:
    """An agent (CAM_C, synthetic camera 320x240, no coordinator) with ``env`` on top."""
    port = free_port()
    log = root / "agent.log"
    full = (
        {
            "CAMFLEET_NODE_ID": "cam-c",
            "CAMFLEET_CAM_ID": "CAM_C",
            "CAMFLEET_DATA_DIR": str(root / "data"),
            "CAMFLEET_API_TOKEN": secrets.token_urlsafe(24),
            "CAMFLEET_CHRONYC_PATH": NO_CHRONYC,
            "CAMFLEET_CLOCK_POLL_INTERVAL_S": "3600",
            "CAMFLEET_CAMERA__FPS": "30",
            "CAMFLEET_STORAGE__MIN_FREE_MINUTES": "0",
            "CAMFLEET_STORAGE__RESERVE_S": "2",
        }
        | TEST_CAMERA
        | NO_CHRONY
    )
    full |= env
    child = spawn("CAM_C", "agent", port, full, log)
    try:
        wait_healthy([child])
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {full['CAMFLEET_API_TOKEN']}"},
            timeout=30,
        ) as client:
            recordings = Path(full.get("CAMFLEET_RECORDINGS_DIR", root / "data" / "recordings"))
            yield SoloAgent(child, client, recordings, log)
    finally:
        stop_all([child], timeout_s=20)
