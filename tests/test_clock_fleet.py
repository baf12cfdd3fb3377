"""The issue's clock test: a real chronyd -x master and client on loopback, real agents
reading them, a real coordinator. Kill the master: the client turns unsynchronized in its
status, its start gate refuses with the numbers, and the coordinator flags it."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.clock_fleet import clock_fleet, synced, wait_for
from tests.conftest import RunningFleet

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="chronyd -u root needs root"),
]


def start(fleet: RunningFleet, node_id: str) -> dict[str, object]:
    with fleet.client() as c:
        resp = c.post("/api/v1/sessions", json={"name": "clock", "node_ids": [node_id]})
        assert resp.status_code == 201, resp.text
        session = resp.json()
        if session["nodes"][0]["start"]["ok"]:
            c.post(f"/api/v1/sessions/{session['session_id']}/stop")
        return dict(session["nodes"][0]["start"])


def test_killing_the_master_unsynchronizes_refuses_and_flags_the_client(
    fleet_factory: RunningFleet, tmp_path: Path
) -> None:
    fleet = fleet_factory
    with clock_fleet(fleet, tmp_path) as pair:
        nodes = wait_for(fleet, "both clocks synchronised", synced, 30)
        master, client = nodes["CAM_C"]["status"]["clock"], nodes["CAM_L"]["status"]["clock"]
        assert master["role"] == "master" and master["reference"] == "LOCAL"
        assert client["role"] == "client" and client["follows_master"] is True
        assert client["selected_source"] == "127.0.0.1" and client["stratum"] == 9
        assert client["sources"][0]["state"] == "selected"
        assert 0 <= client["error_bound_ns"] < 5_000_000
        assert nodes["CAM_L"]["clock_flags"] == [] and nodes["CAM_C"]["clock_flags"] == []
        assert start(fleet, "cam-l")["ok"] is True  # the gate lets a synchronised clock start

        pair.kill_master()
        nodes = wait_for(
            fleet,
            "the client unsynchronised and flagged",
            lambda n: (
                not n["CAM_L"]["status"]["clock"]["synchronized"]
                and any("not following the master" in f for f in n["CAM_L"]["clock_flags"])
            ),
            30,
        )
        client = nodes["CAM_L"]["status"]["clock"]
        assert client["selected_source"] is None and client["follows_master"] is False
        assert client["leap_status"] == "Normal"  # chrony's own word; the sources decided
        assert [s["state"] for s in client["sources"]] == ["unreachable"]
        # the agent itself says so too
        token = (fleet.root / "CAM_L" / "api_token").read_text().strip()
        status = httpx.get(
            f"http://127.0.0.1:{fleet.agents['CAM_L'].port}/api/v1/status",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        assert status["clock"]["synchronized"] is False

        refused = start(fleet, "cam-l")
        assert refused["ok"] is False
        error = str(refused["error"])
        assert "clock unsynchronized" in error and "limit 5 ms" in error
        assert "offset " in error and "error bound " in error and "reference 127.0.0.1" in error
