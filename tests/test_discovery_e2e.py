"""Discovery end to end with real processes and real mDNS, in two network namespaces the
test makes (tests/discovery_net.py): a rogue advertiser without the fleet token learns no
secret and gets no node; the agent, which has no coordinator_url, joins the real
coordinator when it appears; it re-joins at once when its own address changes, and
follows the coordinator when that moves to another port."""

from __future__ import annotations

import base64
import json
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.supervise import Child
from bench.common import free_port, log_tail, spawn_command
from common.fleetproof import fleet_id
from tests import discovery_net
from tests.conftest import NO_CHRONY, TEST_CAMERA

pytestmark = pytest.mark.slow

WHY = discovery_net.unavailable()
NODE_ID = "cam-disc"


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, logs: list[Path]) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    tails = "\n".join(f"--- {p.name}\n{log_tail(p, 3000)}" for p in logs)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def stop(child: Child | None) -> None:
    if child is None or child.proc.poll() is not None:
        return
    child.proc.terminate()
    try:
        child.proc.wait(timeout=20)
    except Exception:
        child.proc.kill()
        child.proc.wait(timeout=5)


@pytest.fixture
def pair() -> Iterator[discovery_net.Pair]:
    if WHY is not None:
        pytest.skip(f"network namespaces: {WHY}")
    with discovery_net.namespace_pair() as made:
        yield made


def test_rogue_learns_nothing_agent_joins_the_real_one_and_follows_both_moves(
    pair: discovery_net.Pair, tmp_path: Path
) -> None:
    fleet_token = secrets.token_urlsafe(24)
    operator_token = secrets.token_urlsafe(24)
    api_token = secrets.token_urlsafe(24)
    fid = fleet_id(fleet_token)
    record = tmp_path / "rogue.json"
    rogue_log, agent_log = tmp_path / "rogue.log", tmp_path / "agent.log"
    coord_log = tmp_path / "coordinator.log"
    logs = [agent_log, coord_log, rogue_log]
    rogue_port, agent_port = free_port(), free_port()
    children: list[Child] = []

    def start_coordinator(port: int) -> Child:
        env = {
            "CAMFLEET_OPERATOR_TOKEN": operator_token,
            "CAMFLEET_FLEET_TOKEN": fleet_token,
            "CAMFLEET_DATA_DIR": str(tmp_path / "coordinator"),
            "CAMFLEET_HOST": "0.0.0.0",
            "CAMFLEET_PORT": str(port),
            # Heartbeats every 30 s: a re-join within seconds is the address watch's doing.
            "CAMFLEET_HEARTBEAT_INTERVAL_S": "30",
            "CAMFLEET_POLL_INTERVAL_S": "1",
            "CAMFLEET_OFFLINE_AFTER_S": "120",
            "CAMFLEET_DISCOVERY__ENABLED": "true",
            "CAMFLEET_DISCOVERY__ADDRESSES": json.dumps([pair.c_addr]),
            "CAMFLEET_DISCOVERY__INTERFACES": json.dumps([pair.c_addr]),
        }
        argv = [sys.executable, "-m", "app.cli", "coordinator", "--log-level", "info"]
        child = spawn_command("coordinator", pair.exec_argv(pair.c, argv), env, coord_log, port)
        children.append(child)
        return child

    def nodes(port: int) -> list[dict[str, Any]]:
        try:
            resp = httpx.get(
                f"http://{pair.test_to_c}:{port}/api/v1/nodes",
                headers={"Authorization": f"Bearer {operator_token}"},
                timeout=2,
            )
        except httpx.HTTPError:
            return []
        return list(resp.json()["nodes"]) if resp.status_code == 200 else []

    agent_at = [pair.a_addr]

    def link() -> dict[str, Any]:
        try:
            resp = httpx.get(
                f"http://{agent_at[0]}:{agent_port}/api/v1/status",
                headers={"Authorization": f"Bearer {api_token}"},
                timeout=2,
            )
        except httpx.HTTPError:
            return {}
        return dict(resp.json().get("coordinator_link") or {}) if resp.status_code == 200 else {}

    try:
        # 1. Only the rogue advertises this fleet: the agent tries it and sets it aside.
        rogue_argv = [
            sys.executable,
            "-m",
            "tests.discovery_rogue",
            pair.c_addr,
            str(rogue_port),
            fid,
            str(record),
        ]
        children.append(
            spawn_command("rogue", pair.exec_argv(pair.c, rogue_argv), {}, rogue_log, rogue_port)
        )
        agent_env = (
            {
                "CAMFLEET_NODE_ID": NODE_ID,
                "CAMFLEET_CAM_ID": "CAM_C",
                "CAMFLEET_POSITION": "centre",
                "CAMFLEET_DATA_DIR": str(tmp_path / "agent"),
                "CAMFLEET_HOST": "0.0.0.0",
                "CAMFLEET_PORT": str(agent_port),
                "CAMFLEET_API_TOKEN": api_token,
                "CAMFLEET_FLEET_TOKEN": fleet_token,  # and no coordinator_url
                "CAMFLEET_HEARTBEAT_INTERVAL_S": "30",
                "CAMFLEET_JOIN_BACKOFF_MAX_S": "1",
                "CAMFLEET_STATUS_FILE": str(tmp_path / "agent" / "status.json"),
            }
            | TEST_CAMERA
            | NO_CHRONY
        )
        argv = [sys.executable, "-m", "app.cli", "agent", "--log-level", "info"]
        children.append(
            spawn_command("CAM_C", pair.exec_argv(pair.a, argv), agent_env, agent_log, agent_port)
        )
        rejected = wait_for(
            "the agent to try the rogue and set it aside",
            lambda: [r for r in link().get("rejected", []) if "not the coordinator" in r["reason"]],
            30,
            logs,
        )
        assert rejected[0]["url"] == f"http://{pair.c_addr}:{rogue_port}"
        assert link()["found_by"] == "discovered"
        assert link()["state"] in ("searching", "retrying")

        # 2. The real coordinator appears: the agent finds it and joins.
        port = free_port()
        start_coordinator(port)
        t0 = time.monotonic()

        def healthy() -> bool:
            try:
                return httpx.get(f"http://{pair.test_to_c}:{port}/health", timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_for("the coordinator to answer /health", healthy, 40, logs)
        up_after_s = time.monotonic() - t0
        (node,) = wait_for("the node in GET /api/v1/nodes", lambda: nodes(port), 40, logs)
        joined_after_s = time.monotonic() - t0 - up_after_s
        assert node["node_id"] == NODE_ID
        assert node["address"] == f"{pair.a_addr}:{agent_port}"
        wait_for("the link to say joined", lambda: link().get("state") == "joined", 10, logs)
        assert link()["url"] == f"http://{pair.c_addr}:{port}"
        # The coordinator reaches the node with the token the join sealed: it is online.
        wait_for("the node online", lambda: nodes(port)[0]["online"], 20, logs)

        # 3. What the rogue learnt: handshakes only, with no secret in any byte.
        seen = json.loads(record.read_text())
        assert seen, "the rogue got no request at all"
        assert {r["path"] for r in seen} == {"/api/v1/nodes/handshake"}
        raw = b"".join(
            json.dumps(r["headers"]).encode() + base64.b64decode(r["body_b64"]) for r in seen
        )
        for secret in (fleet_token, api_token):
            assert secret.encode() not in raw
        assert b"authorization" not in raw.lower()
        assert all(NODE_ID in base64.b64decode(r["body_b64"]).decode() for r in seen)

        # 4. The node's own address changes: it re-joins at once, the coordinator follows.
        new_addr = f"10.{pair.b}.1.3"
        pair.move_agent(new_addr)
        agent_at[0] = new_addr
        t1 = time.monotonic()
        wait_for(
            "the coordinator to follow the node's new address",
            lambda: [n for n in nodes(port) if n["address"] == f"{new_addr}:{agent_port}"],
            8,
            logs,
        )
        followed_after_s = time.monotonic() - t1
        assert followed_after_s < 8  # the heartbeat is 30 s: this was the address watch
        wait_for("the node online again", lambda: nodes(port)[0]["online"], 20, logs)

        # 5. The coordinator moves (a restart on another port): the agent follows it.
        stop(children.pop())
        moved = free_port()
        start_coordinator(moved)
        t2 = time.monotonic()
        wait_for(
            "the agent to join the moved coordinator",
            lambda: (
                link().get("url") == f"http://{pair.c_addr}:{moved}"
                and link().get("state") == "joined"
            ),
            40,
            logs,
        )
        moved_after_s = time.monotonic() - t2
        (node,) = wait_for("the node at the moved one", lambda: nodes(moved), 10, logs)
        assert node["address"] == f"{new_addr}:{agent_port}"
        print(
            f"coordinator up in {up_after_s:.2f} s; the node joined {joined_after_s:.2f} s "
            f"after it answered /health; followed the "
            f"node's address in {followed_after_s:.2f} s; followed the coordinator's move "
            f"in {moved_after_s:.2f} s; the rogue got {len(seen)} handshake(s)"
        )
    finally:
        for child in reversed(children):
            stop(child)
