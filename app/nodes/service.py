"""Fleet registry: join with proof of identity, approval, removal, listing with cached status."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlmodel import Session

from app.context import Fleet
from app.errors import (
    BadInput,
    FleetEmpty,
    IdentityRefused,
    NodeBusy,
    NodeNotFound,
    NodePending,
    NodeRefused,
    NodeUnreachable,
)
from app.fleet.client import NodeAddress, NodeCall
from app.fleet.wire import JoinChallenge, JoinChallengeRequest, JoinRequest, JoinResponse
from app.nodes import repository
from app.nodes.clockflags import with_clock_flags
from app.nodes.identity import Issued
from app.nodes.models import Node, NodeList, NodePublic
from app.timeutil import iso
from common import fleetproof, identity

T = TypeVar("T")
HEADER_TOKEN = re.compile(r"[\x21-\x7e]{16,128}")

log = logging.getLogger(__name__)


def address_of(node: Node) -> NodeAddress:
    """Where to call a registered node."""
    return NodeAddress(node.node_id, node.host, node.port, node.api_token)


def load_addresses(db: Session, fleet: Fleet) -> None:
    """Fill the in-memory registry and address book from the database (at start)."""
    for node in repository.list_all(db):
        fleet.nodes[node.node_id] = node
        if node.approved:
            fleet.state.set_address(address_of(node), node.cam_id)


def peer_address(peer: str | None, forwarded_for: str | None, trusted: list[str]) -> str:
    """The address to call a node back at: the TCP peer of its join, or, only when that
    peer is a configured trusted proxy, the last X-Forwarded-For hop it vouches for."""
    if peer is None:
        raise BadInput("the join's peer address is unknown; join over TCP")
    if peer not in trusted or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")][-8:]
    for hop in reversed(hops):
        if hop in trusted:
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError as err:
            raise BadInput(
                f"X-Forwarded-For from the trusted proxy is not an IP: {hop!r:.60}"
            ) from err
    return peer


def challenge(fleet: Fleet, req: JoinChallengeRequest) -> JoinChallenge:
    """A nonce for the next join of ``req.node_id``."""
    nonce = fleet.challenges.issue(req.node_id)
    return JoinChallenge(node_id=req.node_id, nonce=nonce, expires_in_s=fleet.challenges.ttl_s)


@dataclass(frozen=True)
class _Joined:
    node: Node
    registered: bool


def _refuse(fleet: Fleet, node_id: str, reason: str, message: str) -> IdentityRefused:
    fleet.join_refused.labels(reason).inc()
    log.warning("join refused for node %r: %s (%s)", node_id, message, reason)
    return IdentityRefused(message, reason)


async def join(
    fleet: Fleet,
    req: JoinRequest,
    body: bytes,
    nonce: str | None,
    signature: str | None,
    peer: str,
    mutual: bool = False,
) -> JoinResponse:
    """Register a new node, or refresh a known one that proves it holds its key.

    ``mutual``: the join answers a handshake (the AuthGate checked its fleet proof) and
    carries its API token sealed for that handshake. Nothing changes when the proof
    fails: the refusal is logged, counted and answered 409.
    """
    if not nonce or not signature:
        raise _refuse(
            fleet,
            req.node_id,
            "no_proof",
            f"a join must carry {identity.NONCE_HEADER} and {identity.SIGNATURE_HEADER}: get a "
            "nonce from POST /api/v1/nodes/challenge and sign it with the node's key",
        )
    store = fleet.handshakes if mutual else fleet.challenges
    entry = None if len(nonce) > 64 or len(signature) > 128 else store.take(req.node_id, nonce)
    if entry is None:
        raise _refuse(
            fleet,
            req.node_id,
            "stale_challenge",
            "the challenge is unknown, already used, expired, or for another node; ask for a "
            "new one",
        )
    api_token = _api_token(fleet, req, entry, nonce, mutual)
    settings = fleet.settings

    def tx(db: Session) -> _Joined:
        now = time.time_ns()
        node = repository.get(db, req.node_id)
        registered = node is None
        key = req.public_key
        if node is not None and node.public_key is not None:
            if node.public_key != req.public_key:
                raise _refuse(
                    fleet,
                    req.node_id,
                    "key_mismatch",
                    f"node {req.node_id!r} is registered with another key; if this is a "
                    "reinstalled node, remove it (DELETE /api/v1/nodes/{id}) and let it join again",
                )
            key = node.public_key
        if not identity.verify(key, nonce, body, signature):
            raise _refuse(
                fleet, req.node_id, "bad_signature", "the join's signature does not verify"
            )
        if node is None:
            node = Node(
                node_id=req.node_id,
                cam_id=req.cam_id,
                host=peer,
                port=req.port,
                api_token=api_token,
                public_key=req.public_key,
                approved=not settings.approve_new_nodes,
                joined_at_ns=now,
                last_seen_ns=now,
            )
        elif node.public_key is None:
            log.warning("node %s registered its key (it joined before keys existed)", node.node_id)
            node.public_key = req.public_key
        node.cam_id = req.cam_id
        node.position = req.position.value
        node.host = peer
        node.port = req.port
        node.api_token = api_token
        node.version = req.version
        node.hostname = req.hostname
        node.last_seen_ns = now
        repository.save(db, node)
        return _Joined(node, registered)

    joined = await fleet.store.run(tx)
    node = joined.node
    fleet.nodes[node.node_id] = node
    if joined.registered:
        log.info("node %s registered from %s (approved: %s)", node.node_id, peer, node.approved)
    if node.approved:
        fleet.state.set_address(address_of(node), node.cam_id)
        fleet.state.heartbeat(node.node_id)
        if fleet.state.cache[node.node_id].last_contact_ns is None:
            fleet.poller.refresh_soon([node.node_id])  # online once it answers a call
    return JoinResponse(
        node_id=node.node_id,
        address=peer,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        approved=node.approved,
    )


def _api_token(fleet: Fleet, req: JoinRequest, entry: Issued, nonce: str, mutual: bool) -> str:
    """The node's API token: in the clear on the bearer path, sealed on the mutual one."""
    if not mutual:
        if req.api_token is None:
            raise BadInput("a join with the fleet token carries api_token, not sealed_api_token")
        return req.api_token
    if req.sealed_api_token is None or entry.client_nonce is None:
        raise BadInput("a join answering a handshake carries sealed_api_token, not api_token")
    try:
        token = fleetproof.unseal(
            fleet.settings.fleet_token.get_secret_value(),
            entry.client_nonce,
            nonce,
            req.node_id,
            req.sealed_api_token,
        )
    except ValueError as err:
        raise _refuse(fleet, req.node_id, "bad_seal", f"sealed_api_token: {err}") from err
    if not HEADER_TOKEN.fullmatch(token):
        raise BadInput("the sealed api_token is not 16-128 printable characters")
    return token


async def approve(fleet: Fleet, node_id: str) -> NodePublic:
    """Let a waiting node be called and join sessions."""

    def tx(db: Session) -> Node:
        node = _get(db, node_id)
        if not node.approved:
            node.approved = True
            repository.save(db, node)
        return node

    node = await fleet.store.run(tx)
    fleet.nodes[node.node_id] = node
    fleet.state.set_address(address_of(node), node.cam_id)
    fleet.poller.refresh_soon([node.node_id])
    return to_public(fleet, node)


async def remove(fleet: Fleet, node_id: str) -> None:
    """Remove a node and everything cached about it; its next join starts afresh."""
    removed = await fleet.store.run(lambda db: repository.delete(db, node_id))
    if not removed:
        raise NodeNotFound(f"no node {node_id!r}; GET /api/v1/nodes lists the fleet")
    fleet.nodes.pop(node_id, None)
    fleet.state.remove(node_id)
    fleet.fanout.forget(node_id)
    fleet.challenges.forget(node_id)
    log.info("node %s removed by the operator", node_id)


def to_public(fleet: Fleet, node: Node) -> NodePublic:
    """A node with its liveness and cached status."""
    cache = fleet.state.cache.get(node.node_id) if node.approved else None
    return NodePublic(
        node_id=node.node_id,
        cam_id=node.cam_id,
        position=node.position,
        address=f"{node.host}:{node.port}",
        version=node.version,
        hostname=node.hostname,
        approved=node.approved,
        online=fleet.state.online(node.node_id) if node.approved else False,
        last_heartbeat=iso(cache.last_heartbeat_ns if cache else None),
        joined_at=iso(node.joined_at_ns),
        last_contact=iso(cache.last_contact_ns if cache else None),
        last_error=cache.last_error if cache else None,
        rtt_ms=cache.rtt_ms if cache else None,
        status=cache.status if cache else None,
    )


def list_nodes(fleet: Fleet) -> NodeList:
    """The fleet, from the in-memory registry and the caches (no database wait)."""
    rows = sorted(fleet.nodes.values(), key=lambda n: (n.cam_id, n.node_id))
    nodes = with_clock_flags([to_public(fleet, n) for n in rows])
    return NodeList(
        nodes=nodes,
        online=sum(n.online for n in nodes),
        total=len(nodes),
        pending=sum(not n.approved for n in nodes),
    )


def _get(db: Session, node_id: str) -> Node:
    node = repository.get(db, node_id)
    if node is None:
        raise NodeNotFound(f"no node {node_id!r} has joined; GET /api/v1/nodes lists the fleet")
    return node


def get_node(fleet: Fleet, node_id: str) -> NodePublic:
    """One node from the in-memory registry, or NodeNotFound."""
    if node_id not in fleet.nodes:
        raise NodeNotFound(f"no node {node_id!r} has joined; GET /api/v1/nodes lists the fleet")
    return next(n for n in list_nodes(fleet).nodes if n.node_id == node_id)


async def preview(fleet: Fleet, node_id: str) -> bytes:
    """A JPEG from the node, or the node's own refusal passed on."""
    node = await fleet.store.run(lambda db: _get(db, node_id))
    if not node.approved:
        raise NodePending(
            f"node {node_id} waits for approval: POST /api/v1/nodes/{node_id}/approve"
        )
    addr = fleet.address(node_id)
    if addr is None:
        raise NodeUnreachable(f"node {node_id} has no known address yet")
    call = await fleet.fanout.call(addr, "preview", fleet.client.preview, deadline_s=10.0)
    if call.ok and call.value is not None:
        return call.value
    if call.status_code == 409:
        raise NodeBusy(f"{node_id}: {call.error}")
    raise NodeUnreachable(f"{node_id}: {call.error}")


def addresses(db: Session, fleet: Fleet, node_ids: list[str] | None) -> list[NodeAddress]:
    """The addresses of ``node_ids`` (every approved node when None).

    NodeNotFound for an unknown id, NodePending for one waiting for approval, FleetEmpty
    when no node can take the command. Runs inside a store unit (``fleet.store.run``).
    """
    if node_ids is None:
        nodes = [n for n in repository.list_all(db) if n.approved]
        if not nodes:
            raise FleetEmpty(
                "no approved node has joined yet; start agents with coordinator_url set"
            )
        ids = [n.node_id for n in nodes]
    else:
        ids = list(dict.fromkeys(node_ids))
        found = repository.get_many(db, ids)
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise NodeNotFound(
                f"unknown node ids: {', '.join(unknown)}; GET /api/v1/nodes lists them"
            )
        pending = [i for i in ids if not found[i].approved]
        if pending:
            raise NodePending(
                f"waiting for approval: {', '.join(pending)}; POST /api/v1/nodes/{{id}}/approve"
            )
    addrs = [fleet.address(i) for i in ids]
    return [a for a in addrs if a is not None]


async def relay_one(
    fleet: Fleet,
    node_id: str,
    command: str,
    fn: Callable[[NodeAddress], Awaitable[NodeCall[T]]],
    deadline_s: float = 15.0,
) -> T:
    """One call to an approved node: its answer, or its refusal raised with its status
    and per-key problems (NodeRefused), or NodeUnreachable.

    NodeNotFound and NodePending come from ``addresses``. Through ``fanout.each`` so that
    the node's cached status is re-read after a command that changes it.
    """
    addrs = await fleet.store.run(lambda db: addresses(db, fleet, [node_id]))
    if not addrs:
        raise NodeUnreachable(f"node {node_id} has no known address yet")
    (call,) = await fleet.fanout.each(addrs[:1], command, fn, deadline_s=deadline_s)
    if call.ok and call.value is not None:
        return call.value
    if call.status_code is not None and 400 <= call.status_code < 500:
        refused = NodeRefused(f"{node_id}: {call.error}", call.status_code)
        refused.details = call.error_items
        raise refused
    raise NodeUnreachable(f"{node_id}: {call.error}")
