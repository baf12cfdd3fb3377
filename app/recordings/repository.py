"""Recording queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from app.recordings.models import Recording


def by_session(db: Session, session_id: str) -> Sequence[Recording]:
    """The recordings of one session."""
    return db.exec(select(Recording).where(Recording.session_id == session_id)).all()


def by_node(db: Session, node_id: str) -> Sequence[Recording]:
    """The recordings of one node."""
    return db.exec(select(Recording).where(Recording.node_id == node_id)).all()


def list_all(db: Session, session_id: str | None = None) -> Sequence[Recording]:
    """Every recording, newest first."""
    stmt = select(Recording).order_by(col(Recording.first_frame_ns).desc())
    if session_id:
        stmt = stmt.where(Recording.session_id == session_id)
    return db.exec(stmt).all()


def save(db: Session, rows: Sequence[Recording]) -> None:
    """Insert or update rows in one transaction."""
    for row in rows:
        db.add(row)
    db.commit()
