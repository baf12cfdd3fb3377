"""A fleet whose clocks are real: a chronyd -x master and client on loopback, read by a
master agent (CAM_C) and a client agent (CAM_L) under a real coordinator."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.chrony import ChronyPair, chrony_pair
from tests.conftest import RunningFleet


def agent_env(pair: ChronyPair, which: str) -> dict[str, str]:
    port = pair.client_cmdport if which == "client" else pair.server_cmdport
    return {
        "CAMFLEET_SYNC__CHRONYC_HOST": "127.0.0.1",
        "CAMFLEET_SYNC__CHRONYC_PORT": str(port),
        "CAMFLEET_SYNC__CHRONYC_TIMEOUT_S": "2",
        "CAMFLEET_SYNC__MASTER_HOST": "127.0.0.1",
        "CAMFLEET_SYNC__MASTER_PORT": str(pair.ntp_port),
        "CAMFLEET_CLOCK_POLL_INTERVAL_S": "0.3",
        "CAMFLEET_GATES__CLOCK_POLICY": "refuse",  # the default, which the test agents relax
    }


@contextmanager
def clock_fleet(fleet: RunningFleet, root: Path) -> Iterator[ChronyPair]:
    """The pair (the client polls every 1/16 s), the coordinator and both agents."""
    with chrony_pair(root / "chrony", poll=-4) as pair:
        fleet.start_fleet(
            [("CAM_C", "centre"), ("CAM_L", "left")],
            {"CAM_C": agent_env(pair, "server"), "CAM_L": agent_env(pair, "client")},
        )
        yield pair


def wait_for(
    fleet: RunningFleet, what: str, ok: Callable[[dict[str, Any]], bool], timeout_s: float
) -> dict[str, Any]:
    """Poll the coordinator's node list until ``ok(nodes by cam_id)`` holds."""
    deadline = time.monotonic() + timeout_s
    with fleet.client() as c:
        while True:
            nodes = {n["cam_id"]: n for n in c.get("/api/v1/nodes").json()["nodes"]}
            if all(n.get("status") for n in nodes.values()) and ok(nodes):
                return nodes
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout_s:g} s: {nodes}\n{fleet.logs()}")
            time.sleep(0.2)


def synced(nodes: dict[str, Any]) -> bool:
    clocks = [n["status"]["clock"] for n in nodes.values()]
    return len(clocks) == 2 and all(c["synchronized"] for c in clocks)
