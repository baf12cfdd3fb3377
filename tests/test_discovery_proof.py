"""The mutual proof of discovery against a real coordinator process: the handshake proves
the coordinator, a sealed join registers the node with its token, and a wrong key, a
reflected proof, a replayed or expired nonce, or a malformed or oversized field is a 4xx
that says why, never a 500, and registers nothing."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from zeroconf.asyncio import AsyncServiceInfo

from app.demo import stop_all
from app.nodes.identity import Challenges
from common import fleetproof, identity
from node_agent import __version__ as agent_version
from node_agent.discovery.browse import candidates_of
from node_agent.discovery.service import Finder, NotTheCoordinator, same_ip
from node_agent.discovery.settings import AgentDiscoverySettings
from node_agent.schemas import JoinRequest, Position
from tests.conftest import RunningFleet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    running = RunningFleet(root=tmp_path_factory.mktemp("proof"))
    try:
        running.start_coordinator()
        yield running
    finally:
        stop_all(running.children())


class Receiver:
    """A node stand-in on loopback: records the Authorization of every call it gets."""

    def __init__(self) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("Authorization", ""))
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def new_id() -> str:
    return f"proof-{secrets.token_hex(4)}"


def body_of(node_id: str, key: Ed25519PrivateKey, port: int = 65000, **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "node_id": node_id,
        "cam_id": "CAM_C",
        "position": "centre",
        "port": port,
        "public_key": identity.public_key_text(key),
        "version": agent_version,
    } | extra
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def handshake(fleet: RunningFleet, node_id: str, client_nonce: str) -> httpx.Response:
    return httpx.post(
        f"{fleet.url}/api/v1/nodes/handshake",
        json={"node_id": node_id, "client_nonce": client_nonce},
        timeout=5,
    )


class Shake:
    """One handshake made as an honest agent would (its proof checked)."""

    def __init__(self, fleet: RunningFleet, node_id: str) -> None:
        self.fleet, self.node_id = fleet, node_id
        self.client_nonce = fleetproof.new_nonce()
        resp = handshake(fleet, node_id, self.client_nonce)
        assert resp.status_code == 200, resp.text
        self.answer = resp.json()
        self.nonce: str = self.answer["nonce"]
        self.fid = fleetproof.fleet_id(fleet.fleet_token)

    def node_proof(self, token: str | None = None) -> str:
        return fleetproof.node_proof(
            token or self.fleet.fleet_token, self.client_nonce, self.nonce, self.node_id, self.fid
        )

    def sealed(self, api_token: str, token: str | None = None) -> str:
        return fleetproof.seal(
            token or self.fleet.fleet_token, self.client_nonce, self.nonce, self.node_id, api_token
        )

    def join(
        self,
        key: Ed25519PrivateKey,
        raw: bytes,
        proof: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {
            "Content-Type": "application/json",
            identity.NONCE_HEADER: self.nonce,
            identity.SIGNATURE_HEADER: identity.sign(key, self.nonce, raw),
            fleetproof.PROOF_HEADER: proof if proof is not None else self.node_proof(),
        } | (headers or {})
        return httpx.post(
            f"{self.fleet.url}/api/v1/nodes/join", content=raw, headers=sent, timeout=5
        )


def listed(fleet: RunningFleet, node_id: str) -> bool:
    with fleet.client() as c:
        return any(n["node_id"] == node_id for n in c.get("/api/v1/nodes").json()["nodes"])


def test_the_handshake_proves_the_coordinator_holds_the_fleet_token(
    coordinator: RunningFleet,
) -> None:
    node_id = new_id()
    shake = Shake(coordinator, node_id)
    a = shake.answer
    assert a["fleet_id"] == shake.fid and a["api_version"] == "1"
    assert a["seen_address"] == "127.0.0.1"
    expected = fleetproof.coordinator_proof(
        coordinator.fleet_token, shake.client_nonce, shake.nonce, node_id, shake.fid, "127.0.0.1"
    )
    assert fleetproof.same(expected, a["proof"])
    # Nothing else verifies it: another token, another client nonce, another seen address.
    other = fleetproof.coordinator_proof(
        secrets.token_urlsafe(24), shake.client_nonce, shake.nonce, node_id, shake.fid, "127.0.0.1"
    )
    assert not fleetproof.same(other, a["proof"])
    relayed = fleetproof.coordinator_proof(
        coordinator.fleet_token, shake.client_nonce, shake.nonce, node_id, shake.fid, "10.9.9.9"
    )
    assert not fleetproof.same(relayed, a["proof"])
    assert coordinator.fleet_token not in json.dumps(a)


def test_a_sealed_join_registers_the_node_and_the_coordinator_calls_it_with_its_token(
    coordinator: RunningFleet,
) -> None:
    receiver = Receiver()
    try:
        node_id, key, api_token = new_id(), Ed25519PrivateKey.generate(), secrets.token_urlsafe(24)
        shake = Shake(coordinator, node_id)
        raw = body_of(node_id, key, port=receiver.port, sealed_api_token=shake.sealed(api_token))
        assert api_token.encode() not in raw
        resp = shake.join(key, raw)
        assert resp.status_code == 200, resp.text
        assert resp.json()["address"] == "127.0.0.1"
        assert listed(coordinator, node_id)
        deadline = time.monotonic() + 10
        while not receiver.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.seen and receiver.seen[0] == f"Bearer {api_token}"
    finally:
        receiver.close()
        with coordinator.client() as c:
            c.delete(f"/api/v1/nodes/{node_id}")


def test_the_bearer_path_still_works_beside_it(coordinator: RunningFleet) -> None:
    node_id, key = new_id(), Ed25519PrivateKey.generate()
    auth = {"Authorization": f"Bearer {coordinator.fleet_token}"}
    asked = httpx.post(
        f"{coordinator.url}/api/v1/nodes/challenge", json={"node_id": node_id}, headers=auth
    )
    nonce = asked.json()["nonce"]
    raw = body_of(node_id, key, api_token=secrets.token_urlsafe(24))
    headers = auth | {
        "Content-Type": "application/json",
        identity.NONCE_HEADER: nonce,
        identity.SIGNATURE_HEADER: identity.sign(key, nonce, raw),
    }
    resp = httpx.post(f"{coordinator.url}/api/v1/nodes/join", content=raw, headers=headers)
    assert resp.status_code == 200, resp.text
    assert listed(coordinator, node_id)
    # A bearer join's challenge is no handshake: it cannot be answered with a fleet proof.
    asked = httpx.post(
        f"{coordinator.url}/api/v1/nodes/challenge", json={"node_id": node_id}, headers=auth
    )
    nonce = asked.json()["nonce"]
    del headers["Authorization"]
    headers[identity.NONCE_HEADER] = nonce
    headers[identity.SIGNATURE_HEADER] = identity.sign(key, nonce, raw)
    headers[fleetproof.PROOF_HEADER] = fleetproof.new_nonce()
    resp = httpx.post(f"{coordinator.url}/api/v1/nodes/join", content=raw, headers=headers)
    assert resp.status_code == 401 and "handshake is unknown" in resp.json()["detail"]


@pytest.mark.parametrize("how", ["wrong_key", "reflected", "no_proof"])
def test_a_join_without_the_right_fleet_proof_is_refused_and_registers_nothing(
    coordinator: RunningFleet, how: str
) -> None:
    node_id, key = new_id(), Ed25519PrivateKey.generate()
    shake = Shake(coordinator, node_id)
    wrong = secrets.token_urlsafe(24)
    raw = body_of(node_id, key, sealed_api_token=shake.sealed(secrets.token_urlsafe(24)))
    if how == "wrong_key":
        resp = shake.join(key, raw, proof=shake.node_proof(wrong))
        expected = "does not verify: wrong fleet token"
    elif how == "reflected":
        # The coordinator's own answer sent back as the node's: the labels differ.
        resp = shake.join(key, raw, proof=shake.answer["proof"])
        expected = "does not verify"
    else:
        resp = shake.join(key, raw, headers={fleetproof.PROOF_HEADER: ""})
        expected = "does not verify"
    assert resp.status_code == 401, resp.text
    assert expected in resp.json()["detail"]
    assert not listed(coordinator, node_id)


def test_a_nonce_is_good_for_one_join_only(coordinator: RunningFleet) -> None:
    node_id, key = new_id(), Ed25519PrivateKey.generate()
    shake = Shake(coordinator, node_id)
    raw = body_of(node_id, key, sealed_api_token=shake.sealed(secrets.token_urlsafe(24)))
    first = shake.join(key, raw)
    assert first.status_code == 200, first.text
    again = shake.join(key, raw)
    assert again.status_code == 401
    assert "already used or expired" in again.json()["detail"]


def test_a_seal_made_with_another_key_is_refused(coordinator: RunningFleet) -> None:
    node_id, key = new_id(), Ed25519PrivateKey.generate()
    shake = Shake(coordinator, node_id)
    sealed = shake.sealed(secrets.token_urlsafe(24), token=secrets.token_urlsafe(24))
    resp = shake.join(key, body_of(node_id, key, sealed_api_token=sealed))
    assert resp.status_code == 409, resp.text
    assert "not sealed for this handshake" in resp.json()["detail"]
    assert not listed(coordinator, node_id)


def test_the_api_token_in_the_clear_on_the_mutual_path_is_refused(
    coordinator: RunningFleet,
) -> None:
    node_id, key = new_id(), Ed25519PrivateKey.generate()
    shake = Shake(coordinator, node_id)
    resp = shake.join(key, body_of(node_id, key, api_token=secrets.token_urlsafe(24)))
    assert resp.status_code == 422, resp.text
    assert "sealed_api_token" in resp.text
    both = body_of(
        node_id,
        key,
        api_token=secrets.token_urlsafe(24),
        sealed_api_token=shake.sealed(secrets.token_urlsafe(24)),
    )
    resp = Shake(coordinator, node_id).join(key, both)
    assert resp.status_code == 422 and "exactly one" in resp.text


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b'{"node_id": "x", "client_nonce": "' + b"A" * 2000 + b'"}', 413, "larger"),
        (b'{"node_id": "cam-1", "client_nonce": "short"}', 422, "client_nonce"),
        (b'{"node_id": "bad id!", "client_nonce": "' + b"A" * 43 + b'"}', 422, "node_id"),
        (b'{"node_id": "cam-1", "client_nonce": "' + b"A" * 43 + b'", "x": 1}', 422, "x"),
        (b"not json", 422, "JSON"),
    ],
)
def test_a_malformed_or_oversized_handshake_is_a_4xx_that_says_why(
    coordinator: RunningFleet, body: bytes, status: int, says: str
) -> None:
    resp = httpx.post(
        f"{coordinator.url}/api/v1/nodes/handshake",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert resp.status_code == status, resp.text
    assert says.lower() in resp.text.lower()


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({fleetproof.PROOF_HEADER: "p" * 500}, "needs the handshake"),
        ({identity.NONCE_HEADER: "n" * 500}, "needs the handshake"),
        ({identity.NONCE_HEADER: fleetproof.new_nonce()}, "handshake is unknown"),
    ],
)
def test_oversized_or_unknown_proof_headers_are_refused_before_the_body(
    coordinator: RunningFleet, headers: dict[str, str], says: str
) -> None:
    node_id, key = new_id(), Ed25519PrivateKey.generate()
    shake = Shake(coordinator, node_id)
    raw = body_of(node_id, key, sealed_api_token=shake.sealed(secrets.token_urlsafe(24)))
    resp = shake.join(key, raw, headers=headers)
    assert resp.status_code == 401, resp.text
    assert says in resp.json()["detail"]


def test_a_join_with_neither_token_nor_proof_says_what_to_send(coordinator: RunningFleet) -> None:
    resp = httpx.post(f"{coordinator.url}/api/v1/nodes/join", content=b"{}", timeout=5)
    assert resp.status_code == 401
    assert "handshake" in resp.json()["detail"] and "Bearer" in resp.json()["detail"]


# -- pure parts -----------------------------------------------------------------------------


def test_nonces_expire_and_are_spent() -> None:
    store = Challenges(ttl_s=0.05)
    nonce = store.issue("n1", "client")
    assert store.peek(nonce) is not None
    assert store.take("n2", nonce) is None  # another node's nonce is spent, not accepted
    assert store.peek(nonce) is None
    late = store.issue("n1", "client")
    time.sleep(0.08)
    assert store.peek(late) is None and store.take("n1", late) is None


def test_a_flood_of_handshakes_stays_bounded() -> None:
    store = Challenges(max_outstanding=100)
    for i in range(5000):
        store.issue(f"node-{i}", "c")
    assert len(store) == 100
    for _ in range(50):
        store.issue("same", "c")
    assert len(store) <= 100


def test_the_proofs_of_the_two_sides_differ_and_the_fleet_id_hides_the_token() -> None:
    token = secrets.token_urlsafe(24)
    c, s = fleetproof.new_nonce(), fleetproof.new_nonce()
    fid = fleetproof.fleet_id(token)
    assert fid == fleetproof.fleet_id(token) and len(fid) == 16 and token not in fid
    assert fleetproof.node_proof(token, c, s, "n", fid) != fleetproof.coordinator_proof(
        token, c, s, "n", fid, ""
    )
    # Field boundaries are part of the transcript: moving a character changes the proof.
    assert fleetproof.node_proof(token, c, s, "ab", "c") != fleetproof.node_proof(
        token, c, s, "a", "bc"
    )
    sealed = fleetproof.seal(token, c, s, "n", "the-api-token-1234")
    assert fleetproof.unseal(token, c, s, "n", sealed) == "the-api-token-1234"
    for args in ((token, s, c, "n"), (token, c, s, "m"), (secrets.token_urlsafe(24), c, s, "n")):
        with pytest.raises(ValueError, match="not sealed for this handshake"):
            fleetproof.unseal(*args, sealed)


def test_an_agent_with_coordinator_url_still_joins_with_the_bearer_and_says_so(
    coordinator: RunningFleet,
) -> None:
    child = coordinator.start_agent("CAM_L", "left")
    coordinator.wait_online(1)
    token = (coordinator.root / "CAM_L" / "api_token").read_text().strip()
    deadline = time.monotonic() + 10
    while True:
        status = httpx.get(
            f"http://127.0.0.1:{child.port}/api/v1/status",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        ).json()
        link = status["coordinator_link"]
        if link["state"] == "joined" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status["coordinator"] == "joined"
    assert link["found_by"] == "configured" and link["url"] == coordinator.url
    assert link["seen_address"] == "127.0.0.1" and link["joins_total"] >= 1
    assert link["candidates"] == 0 and link["rejected"] == []
    metrics = httpx.get(
        f"http://127.0.0.1:{child.port}/metrics",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).text
    joined = [
        line
        for line in metrics.splitlines()
        if line.startswith("camfleet_coordinator_link_state{")
        and 'state="joined"' in line
        and 'found_by="configured"' in line
    ]
    assert joined and joined[0].endswith(" 1.0"), metrics[-2000:]
    assert "camfleet_coordinator_joins_total{" in metrics


# -- the agent's half, in this process, against the real coordinator -----------------------


async def _relay(target_port: int, recorded: bytearray) -> asyncio.Server:
    """A TCP relay on 127.0.0.1 that reaches the coordinator from 127.0.0.2 (its own
    address, as a relay elsewhere on the network would), recording what the agent sends."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, keep: bool) -> None:
        try:
            while data := await src.read(65536):
                if keep:
                    recorded.extend(data)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(
            "127.0.0.1", target_port, local_addr=("127.0.0.2", 0)
        )
        await asyncio.gather(pipe(reader, up_w, True), pipe(up_r, writer, False))

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _request(node_id: str, key: Ed25519PrivateKey, api_token: str) -> JoinRequest:
    return JoinRequest(
        node_id=node_id,
        cam_id="CAM_C",
        position=Position.centre,
        port=65000,
        api_token=api_token,
        public_key=identity.public_key_text(key),
        version=agent_version,
    )


def test_a_relay_in_between_gets_no_join_and_never_the_secrets(coordinator: RunningFleet) -> None:
    node_id, key, api_token = new_id(), Ed25519PrivateKey.generate(), secrets.token_urlsafe(24)
    req = _request(node_id, key, api_token)
    strict = Finder(AgentDiscoverySettings(), coordinator.fleet_token)
    lax = Finder(AgentDiscoverySettings(require_same_address=False), coordinator.fleet_token)
    recorded = bytearray()

    async def main() -> None:
        server = await _relay(coordinator.coordinator_port, recorded)
        relay_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                with pytest.raises(NotTheCoordinator, match="a relay is in between"):
                    await strict.join(client, relay_url, req, key)
                assert b"/api/v1/nodes/join" not in recorded
                assert not listed(coordinator, node_id)
                # Without the address check the join goes through the relay, sealed.
                answer, seen = await lax.join(client, relay_url, req, key)
                assert answer.address == seen == "127.0.0.2"
                assert b"/api/v1/nodes/join" in recorded
                # Directly, the strict agent joins, and the coordinator follows it.
                answer, seen = await strict.join(client, coordinator.url, req, key)
                assert answer.address == seen == "127.0.0.1"
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())
    for secret in (coordinator.fleet_token, api_token):
        assert secret.encode() not in recorded
    assert b"authorization" not in recorded.lower()


def test_answers_of_another_fleet_are_not_candidates() -> None:
    def info(fid: str, addresses: list[str]) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            fleetproof.SERVICE_TYPE,
            f"x.{fleetproof.SERVICE_TYPE}",
            port=8080,
            properties={"fleet_id": fid},
            parsed_addresses=addresses,
        )

    mine = fleetproof.fleet_id(secrets.token_urlsafe(24))
    assert candidates_of("x", info("another", ["10.0.0.1"]), mine) == []
    found = candidates_of("x", info(mine, ["127.0.0.1", "10.0.0.1"]), mine)
    assert [c.url for c in found] == ["http://10.0.0.1:8080", "http://127.0.0.1:8080"]
    assert not same_ip("10.0.0.1", "10.0.0.2")
    assert same_ip("::ffff:10.0.0.1", "10.0.0.1")
