"""Session and command-result queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, func, select, update

from app.sessions.models import CommandResult, RecordingSession


def get(db: Session, session_id: str) -> RecordingSession | None:
    """One session by id."""
    return db.get(RecordingSession, session_id)


def list_recent(db: Session, limit: int, offset: int = 0) -> Sequence[RecordingSession]:
    """The newest sessions first, skipping the ``offset`` newest."""
    stmt = (
        select(RecordingSession)
        .order_by(col(RecordingSession.created_at_ns).desc(), col(RecordingSession.session_id))
        .offset(offset)
        .limit(limit)
    )
    return db.exec(stmt).all()


def count(db: Session) -> int:
    """How many sessions are stored."""
    return int(db.exec(select(func.count()).select_from(RecordingSession)).one())


def results(db: Session, session_ids: Sequence[str]) -> Sequence[CommandResult]:
    """Every command result of these sessions, oldest first."""
    if not session_ids:
        return []
    stmt = (
        select(CommandResult)
        .where(col(CommandResult.session_id).in_(session_ids))
        .order_by(col(CommandResult.id))
    )
    return db.exec(stmt).all()


def save(db: Session, *rows: RecordingSession | CommandResult) -> None:
    """Insert or update rows in one transaction."""
    for row in rows:
        db.add(row)
    db.commit()


def advance(db: Session, session_id: str, from_state: str, to_state: str) -> bool:
    """Set the state to ``to_state`` only if it is still ``from_state``, in one statement
    (no read-modify-write a concurrent stop could fall between); whether it was."""
    stmt = (
        update(RecordingSession)
        .where(col(RecordingSession.session_id) == session_id)
        .where(col(RecordingSession.state) == from_state)
        .values(state=to_state)
    )
    changed = db.exec(stmt).rowcount
    db.commit()
    return bool(changed)


def unfinished(db: Session) -> Sequence[RecordingSession]:
    """Sessions not in a final state (starting, recording, stopping), oldest first."""
    open_states = ("starting", "recording", "stopping")
    stmt = (
        select(RecordingSession)
        .where(col(RecordingSession.state).in_(open_states))
        .order_by(col(RecordingSession.created_at_ns))
    )
    return db.exec(stmt).all()
