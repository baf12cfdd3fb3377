"""Recording queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, func, select

from app.recordings.models import Recording


def by_session(db: Session, session_id: str) -> Sequence[Recording]:
    """The recordings of one session."""
    return db.exec(select(Recording).where(Recording.session_id == session_id)).all()


def by_node(db: Session, node_id: str) -> Sequence[Recording]:
    """The recordings of one node."""
    return db.exec(select(Recording).where(Recording.node_id == node_id)).all()


def list_all(
    db: Session,
    session_id: str | None = None,
    node_id: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> Sequence[Recording]:
    """Every recording (of a session, of a node), newest first; a page of them with limit."""
    stmt = select(Recording).order_by(col(Recording.first_frame_ns).desc(), col(Recording.id))
    if session_id:
        stmt = stmt.where(Recording.session_id == session_id)
    if node_id:
        stmt = stmt.where(Recording.node_id == node_id)
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return db.exec(stmt).all()


def count(db: Session, session_id: str | None = None, node_id: str | None = None) -> int:
    """How many recordings ``list_all`` would list without a limit."""
    stmt = select(func.count()).select_from(Recording)
    if session_id:
        stmt = stmt.where(Recording.session_id == session_id)
    if node_id:
        stmt = stmt.where(Recording.node_id == node_id)
    return int(db.exec(stmt).one())


def save(db: Session, rows: Sequence[Recording]) -> None:
    """Insert or update rows in one transaction."""
    for row in rows:
        db.add(row)
    db.commit()
