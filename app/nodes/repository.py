"""Node queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from app.nodes.models import Node


def get(db: Session, node_id: str) -> Node | None:
    """One node by id."""
    return db.get(Node, node_id)


def list_all(db: Session) -> Sequence[Node]:
    """Every node, by camera id."""
    return db.exec(select(Node).order_by(Node.cam_id, Node.node_id)).all()


def save(db: Session, node: Node) -> Node:
    """Insert or update a node."""
    db.add(node)
    db.commit()
    return node
