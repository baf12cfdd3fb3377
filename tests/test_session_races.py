"""A session's state is never lost to a concurrent writer: the manifest sweep racing a
stop, or the reconciler holding a row it read before the stop (both seen in full-suite
runs on PostgreSQL, where the stop answered 'recording')."""

from __future__ import annotations

import asyncio
import secrets
import time
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import Session

from app import db
from app.fleet.state import FleetState
from app.recordings import repository as recording_repository
from app.recordings.service import ingest
from app.sessions import reconcile, repository
from app.sessions.models import RecordingSession, SessionState
from app.sessions.service import _finish
from app.settings import CoordinatorSettings
from app.store import Store
from node_agent.schemas import RecorderState
from tests.test_audio import status_with
from tests.test_recordings_ingest import manifest

T0 = 1_780_000_000_000_000_000


def open_session(engine: Any, state: SessionState) -> None:
    with Session(engine, expire_on_commit=False) as s:
        s.add(
            RecordingSession(
                session_id="S1",
                state=state.value,
                lead_ms=500,
                start_at_ns=T0,
                created_at_ns=T0,
            )
        )
        s.commit()


def state_of(engine: Any) -> str:
    with Session(engine) as s:
        row = s.get(RecordingSession, "S1")
        assert row is not None
        return row.state


def test_a_manifest_insert_that_loses_its_race_does_not_undo_the_stop(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    open_session(engine, SessionState.recording)
    m = manifest("S1_CAM_L.mp4")
    # The poller's sweep stored the manifest after the stop's unit had looked for it.
    with Session(engine) as s:
        ingest(s, "cam-l", [m])
    real = recording_repository.by_node
    looked = []

    def before_the_sweep(session: Session, node_id: str) -> Any:
        looked.append(node_id)
        return [] if len(looked) == 1 else real(session, node_id)

    monkeypatch.setattr(recording_repository, "by_node", before_the_sweep)

    def stop(session: RecordingSession) -> None:
        session.state = SessionState.stopped.value

    with Session(engine, expire_on_commit=False) as s:
        public = _finish(s, "S1", [], [("cam-l", m)], stop)
    assert len(looked) == 2  # the insert failed once and was retried
    assert public.state == SessionState.stopped
    assert state_of(engine) == "stopped"
    engine.dispose()


def test_the_reconciler_never_writes_back_a_row_it_read_before_a_stop(db_url: str) -> None:
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    open_session(engine, SessionState.starting)
    store = Store(engine, 2)
    (stale,) = store.run_sync(reconcile._load)  # read while the session was starting
    with Session(engine) as s:  # ... then a stop ended it
        row = s.get(RecordingSession, "S1")
        assert row is not None
        row.state = SessionState.stopped.value
        s.commit()
    state = FleetState(offline_after_s=5)
    state.set_address(SimpleNamespace(node_id="cam-l"), "CAM_L")  # type: ignore[arg-type]
    still = status_with().recorder.model_copy(
        update={"state": RecorderState.recording, "session_id": "S1"}
    )
    # The node's cached status still shows the recording (the stop's answer is newer).
    state.set_status("cam-l", status_with(recorder=still, time_ns=time.time_ns()))
    fleet = SimpleNamespace(
        settings=CoordinatorSettings(
            operator_token=SecretStr(secrets.token_urlsafe(24)),
            fleet_token=SecretStr(secrets.token_urlsafe(24)),
        ),
        state=state,
        store=store,
        busy_sessions={},
        restarted_sessions=set(),
    )
    asyncio.run(reconcile._settle(fleet, stale))  # type: ignore[arg-type]
    assert state_of(engine) == "stopped"
    # A session still starting is advanced, as before.
    with Session(engine) as s:
        assert repository.advance(s, "S1", "stopped", "starting")
    asyncio.run(reconcile._settle(fleet, stale))  # type: ignore[arg-type]
    assert state_of(engine) == "recording"
    engine.dispose()
