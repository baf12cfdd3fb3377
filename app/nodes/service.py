"""Fleet registry: join, heartbeats, listing with cached status."""

from __future__ import annotations

import time

from sqlmodel import Session

from app.context import Fleet
from app.errors import FleetEmpty, NodeBusy, NodeNotFound, NodeUnreachable
from app.fleet.client import NodeAddress
from app.fleet.wire import JoinRequest, JoinResponse
from app.nodes import repository
from app.nodes.models import Node, NodeList, NodePublic
from app.timeutil import iso


def load_addresses(db: Session, fleet: Fleet) -> None:
    """Fill the in-memory address book from the database (at start)."""
    for node in repository.list_all(db):
        fleet.state.set_address(
            NodeAddress(node.node_id, node.host, node.port, node.api_token), node.cam_id
        )


def join(db: Session, fleet: Fleet, req: JoinRequest, address: str) -> JoinResponse:
    """Register or refresh a node; it is called back only at ``address``:``req.port``."""
    now = time.time_ns()
    node = repository.get(db, req.node_id)
    if node is None:
        node = Node(
            node_id=req.node_id,
            cam_id=req.cam_id,
            host=address,
            port=req.port,
            api_token=req.api_token,
            joined_at_ns=now,
            last_seen_ns=now,
        )
    moved = (node.host, node.port) != (address, req.port)
    node.cam_id = req.cam_id
    node.position = req.position.value
    node.host = address
    node.port = req.port
    node.api_token = req.api_token
    node.version = req.version
    node.hostname = req.hostname
    node.last_seen_ns = now
    repository.save(db, node)
    old = fleet.state.addresses.get(node.node_id)
    if moved and old is not None:
        fleet.client.pool.forget(old.host, old.port)
    fleet.state.set_address(
        NodeAddress(node.node_id, address, req.port, req.api_token), node.cam_id
    )
    fleet.state.contact(node.node_id)
    return JoinResponse(
        node_id=node.node_id,
        address=address,
        heartbeat_interval_s=fleet.settings.heartbeat_interval_s,
    )


def to_public(fleet: Fleet, node: Node) -> NodePublic:
    """A node with its liveness and cached status."""
    cache = fleet.state.cache.get(node.node_id)
    return NodePublic(
        node_id=node.node_id,
        cam_id=node.cam_id,
        position=node.position,
        address=f"{node.host}:{node.port}",
        version=node.version,
        hostname=node.hostname,
        online=fleet.state.online(node.node_id),
        joined_at=iso(node.joined_at_ns),
        last_contact=iso(cache.last_contact_ns if cache else None),
        last_error=cache.last_error if cache else None,
        rtt_ms=cache.rtt_ms if cache else None,
        status=cache.status if cache else None,
    )


def list_nodes(db: Session, fleet: Fleet) -> NodeList:
    """The fleet, from the registry and the caches."""
    nodes = [to_public(fleet, n) for n in repository.list_all(db)]
    return NodeList(nodes=nodes, online=sum(n.online for n in nodes), total=len(nodes))


def get_node(db: Session, fleet: Fleet, node_id: str) -> NodePublic:
    """One node, or NodeNotFound."""
    node = repository.get(db, node_id)
    if node is None:
        raise NodeNotFound(f"no node {node_id!r} has joined; GET /api/v1/nodes lists the fleet")
    return to_public(fleet, node)


async def preview(db: Session, fleet: Fleet, node_id: str) -> bytes:
    """A JPEG from the node, or the node's own refusal passed on."""
    get_node(db, fleet, node_id)
    addr = fleet.address(node_id)
    if addr is None:
        raise NodeUnreachable(f"node {node_id} has no known address yet")
    call = await fleet.client.preview(addr)
    if call.ok and call.value is not None:
        return call.value
    if call.status_code == 409:
        raise NodeBusy(f"{node_id}: {call.error}")
    raise NodeUnreachable(f"{node_id}: {call.error}")


def addresses(db: Session, fleet: Fleet, node_ids: list[str] | None) -> list[NodeAddress]:
    """The addresses of ``node_ids`` (every joined node when None); NodeNotFound/FleetEmpty."""
    if node_ids is None:
        nodes = repository.list_all(db)
        if not nodes:
            raise FleetEmpty("no node has joined yet; start agents with coordinator_url set")
        ids = [n.node_id for n in nodes]
    else:
        ids = list(dict.fromkeys(node_ids))
        unknown = [i for i in ids if repository.get(db, i) is None]
        if unknown:
            raise NodeNotFound(
                f"unknown node ids: {', '.join(unknown)}; GET /api/v1/nodes lists them"
            )
    addrs = [fleet.address(i) for i in ids]
    return [a for a in addrs if a is not None]
