"""Node identity with real processes: a Python attacker holding the fleet token (but not the
node's key) cannot take a node over, bad join fields are refused by name, the callback
address is the TCP peer, and approval and removal work end to end."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import identity
from node_agent import __version__ as agent_version
from tests.conftest import RunningFleet

pytestmark = pytest.mark.slow

NODE_ID = "cam-c"


def join_body(fleet: RunningFleet, key: Ed25519PrivateKey, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "node_id": NODE_ID,
        "cam_id": "CAM_C",
        "position": "centre",
        "port": 65000,
        "api_token": secrets.token_urlsafe(24),
        "public_key": identity.public_key_text(key),
        "version": agent_version,
        "hostname": "attacker",
    }
    return body | overrides


def fleet_auth(fleet: RunningFleet) -> dict[str, str]:
    return {"Authorization": f"Bearer {fleet.fleet_token}"}


def challenge(fleet: RunningFleet, node_id: str = NODE_ID) -> str:
    resp = httpx.post(
        f"{fleet.url}/api/v1/nodes/challenge",
        json={"node_id": node_id},
        headers=fleet_auth(fleet),
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["nonce"])


def post_join(
    fleet: RunningFleet,
    raw: bytes,
    nonce: str | None = None,
    signature: str | None = None,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    headers = fleet_auth(fleet) | {"Content-Type": "application/json"} | (extra or {})
    if nonce is not None:
        headers[identity.NONCE_HEADER] = nonce
    if signature is not None:
        headers[identity.SIGNATURE_HEADER] = signature
    return httpx.post(f"{fleet.url}/api/v1/nodes/join", content=raw, headers=headers, timeout=5)


def encode(body: dict[str, Any]) -> bytes:
    return httpx.Request("POST", "http://x", json=body).content


def refused_total(fleet: RunningFleet) -> float:
    with fleet.client() as c:
        text = c.get("/metrics").text
    return sum(
        float(m) for m in re.findall(r"^camfleet_join_refused_total\{[^}]*\} (\S+)$", text, re.M)
    )


def node_entry(fleet: RunningFleet, node_id: str = NODE_ID) -> dict[str, Any]:
    with fleet.client() as c:
        nodes = c.get("/api/v1/nodes").json()["nodes"]
    return next(n for n in nodes if n["node_id"] == node_id)


def real_address(fleet: RunningFleet) -> str:
    return f"127.0.0.1:{fleet.agents['CAM_C'].port}"


def assert_refused(fleet: RunningFleet, resp: httpx.Response, before: float) -> float:
    assert resp.status_code == 409, resp.text
    assert resp.json()["code"] == "identity_refused"
    assert node_entry(fleet)["address"] == real_address(fleet)
    after = refused_total(fleet)
    assert after > before
    return after


def record_briefly(fleet: RunningFleet) -> dict[str, Any]:
    """A short session; its manifest's SHA-256 must match the file on the real node."""
    with fleet.client() as c:
        session = c.post("/api/v1/sessions", json={"lead_ms": 300}).json()
        assert session["nodes"][0]["start"]["ok"], session
        time.sleep(1.0)
        stopped = c.post(f"/api/v1/sessions/{session['session_id']}/stop").json()
        recordings = c.get(
            "/api/v1/recordings", params={"session_id": session["session_id"]}
        ).json()["recordings"]
    assert stopped["state"] == "stopped", stopped
    assert len(recordings) == 1, recordings
    video = fleet.recordings_dir("CAM_C") / recordings[0]["manifest"]["file_name"]
    assert recordings[0]["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
    return dict(stopped)


def real_key(fleet: RunningFleet) -> Ed25519PrivateKey:
    return identity.load_or_create_key(fleet.root / "CAM_C" / "node_key.pem")


def test_takeover_without_the_nodes_key_is_refused_and_changes_nothing(
    fleet: RunningFleet,
) -> None:
    assert node_entry(fleet)["address"] == real_address(fleet)
    count = refused_total(fleet)
    attacker = Ed25519PrivateKey.generate()

    # (a) same node_id, new port and token, the fleet token only: no proof at all
    raw = encode(join_body(fleet, attacker))
    count = assert_refused(fleet, post_join(fleet, raw), count)

    # (b) a fresh challenge signed with another key, claiming that key ...
    nonce = challenge(fleet)
    count = assert_refused(
        fleet, post_join(fleet, raw, nonce, identity.sign(attacker, nonce, raw)), count
    )
    # ... or claiming the real node's public key (which is no secret)
    raw_real_pk = encode(
        join_body(fleet, attacker, public_key=identity.public_key_text(real_key(fleet)))
    )
    nonce = challenge(fleet)
    count = assert_refused(
        fleet,
        post_join(fleet, raw_real_pk, nonce, identity.sign(attacker, nonce, raw_real_pk)),
        count,
    )

    # (c) a real exchange, then its nonce and signature replayed, as is and on another body
    key = real_key(fleet)
    token = (fleet.root / "CAM_C" / "api_token").read_text().strip()
    genuine = encode(
        join_body(fleet, key, port=fleet.agents["CAM_C"].port, api_token=token, hostname="")
    )
    nonce = challenge(fleet)
    signature = identity.sign(key, nonce, genuine)
    assert post_join(fleet, genuine, nonce, signature).status_code == 200
    count = assert_refused(fleet, post_join(fleet, genuine, nonce, signature), count)
    count = assert_refused(fleet, post_join(fleet, raw_real_pk, nonce, signature), count)
    # a nonce issued for another node id is no good for this one either
    other = challenge(fleet, "someone-else")
    assert_refused(
        fleet, post_join(fleet, genuine, other, identity.sign(key, other, genuine)), count
    )

    # the real node still answers at its own address and records
    fleet.wait_online(1)
    record_briefly(fleet)


BAD_FIELDS = [
    ("api_token", "a" * 20 + "\r\nX-Injected: 1"),
    ("api_token", "tökén-" + "a" * 20),
    ("hostname", "h" * 1000),
    ("hostname", "bad host\r\n"),
    ("port", "8081"),
    ("port", True),
    ("version", "1.0\n"),
]


@pytest.mark.parametrize(
    ("field", "value"), BAD_FIELDS, ids=[f"{f}={v!r:.20}" for f, v in BAD_FIELDS]
)
def test_a_bad_join_field_is_refused_by_name(fleet: RunningFleet, field: str, value: Any) -> None:
    raw = encode(
        join_body(fleet, Ed25519PrivateKey.generate(), node_id="newcomer", **{field: value})
    )
    resp = post_join(fleet, raw)
    assert resp.status_code == 422, resp.text
    assert [e["field"] for e in resp.json()["errors"]] == [f"body.{field}"], resp.text


def test_a_megabyte_hostname_is_refused_before_the_body_is_parsed(fleet: RunningFleet) -> None:
    # The join route takes 16 KiB, so the gate answers 413 before any field is looked at.
    raw = encode(join_body(fleet, Ed25519PrivateKey.generate(), hostname="h" * 1_000_000))
    resp = post_join(fleet, raw)
    assert resp.status_code == 413, resp.text
    assert resp.json()["code"] == "body_too_large"


def test_the_callback_address_is_the_tcp_peer_not_x_forwarded_for(fleet: RunningFleet) -> None:
    key = Ed25519PrivateKey.generate()
    raw = encode(join_body(fleet, key, node_id="forwarded", port=65001))
    nonce = challenge(fleet, "forwarded")
    resp = post_join(
        fleet, raw, nonce, identity.sign(key, nonce, raw), {"X-Forwarded-For": "10.9.9.9"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["address"] == "127.0.0.1"
    assert node_entry(fleet, "forwarded")["address"] == "127.0.0.1:65001"
    with fleet.client() as c:
        assert c.delete("/api/v1/nodes/forwarded").status_code == 204


def test_a_removed_node_is_gone_then_re_registers_fresh(fleet: RunningFleet) -> None:
    fleet.wait_online(1)
    before = node_entry(fleet)
    with fleet.client() as c:
        assert c.delete(f"/api/v1/nodes/{NODE_ID}").status_code == 204
        gone = c.get(f"/api/v1/nodes/{NODE_ID}")
        # the agent heartbeats every 0.5 s, so it may already be back, but then afresh
        assert gone.status_code == 404 or gone.json()["joined_at"] != before["joined_at"]
        assert c.delete("/api/v1/nodes/no-such-node").status_code == 404
    fleet.wait_online(1, timeout_s=10)
    after = node_entry(fleet)
    assert after["joined_at"] > before["joined_at"]
    assert after["address"] == real_address(fleet)
    record_briefly(fleet)


def test_a_new_node_waits_for_approval(fleet_factory: RunningFleet, tmp_path: Path) -> None:
    fleet = fleet_factory
    fleet.coordinator_env = {"CAMFLEET_APPROVE_NEW_NODES": "true"}
    fleet.start_coordinator()
    fleet.start_agent("CAM_C", "centre")
    with fleet.client() as c:
        deadline = time.monotonic() + 10
        while (body := c.get("/api/v1/nodes").json())["pending"] < 1:
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
        assert body["online"] == 0 and body["nodes"][0]["approved"] is False
        refused = c.post("/api/v1/sessions", json={"lead_ms": 300})
        assert refused.status_code == 409 and refused.json()["code"] == "fleet_empty", refused.text
        named = c.post("/api/v1/sessions", json={"lead_ms": 300, "node_ids": [NODE_ID]})
        assert named.status_code == 409, named.text
        time.sleep(1.0)  # heartbeats do not approve it
        assert c.get(f"/api/v1/nodes/{NODE_ID}").json()["approved"] is False
        approved = c.post(f"/api/v1/nodes/{NODE_ID}/approve")
        assert approved.status_code == 200 and approved.json()["approved"] is True
    fleet.wait_online(1, timeout_s=10)
    stopped = record_briefly(fleet)
    assert [n["node_id"] for n in stopped["nodes"]] == [NODE_ID]
