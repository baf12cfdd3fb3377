"""Node queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.nodes.models import Node


def get(db: Session, node_id: str) -> Node | None:
    """One node by id."""
    return db.get(Node, node_id)


def get_many(db: Session, node_ids: Sequence[str]) -> dict[str, Node]:
    """The nodes among ``node_ids`` that exist, by id."""
    if not node_ids:
        return {}
    rows = db.exec(select(Node).where(col(Node.node_id).in_(node_ids))).all()
    return {n.node_id: n for n in rows}


def list_all(db: Session) -> Sequence[Node]:
    """Every node, by camera id."""
    return db.exec(select(Node).order_by(Node.cam_id, Node.node_id)).all()


def save(db: Session, node: Node) -> Node:
    """Insert or update a node."""
    db.add(node)
    db.commit()
    return node


def delete(db: Session, node_id: str) -> bool:
    """Remove a node; False when there was none."""
    node = db.get(Node, node_id)
    if node is None:
        return False
    db.delete(node)
    db.commit()
    return True
