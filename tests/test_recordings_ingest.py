"""Manifests collected again and again (every poller sweep) are stored once, updated when
they change."""

from __future__ import annotations

from sqlmodel import Session, select

from app import db
from app.recordings.models import Recording
from app.recordings.service import ingest
from node_agent.schemas import Codec, Manifest, Position


def manifest(name: str, **changes: object) -> Manifest:
    base = Manifest(
        session_id="S1",
        cam_id="CAM_L",
        node_id="cam-l",
        position=Position.left,
        file_name=name,
        scheduled_start_ns=None,
        # real nanosecond timestamps: far past 2**31, so an INTEGER column on PostgreSQL would overflow
        first_frame_ns=1_780_000_000_000_000_000,
        last_frame_ns=1_780_000_001_000_000_000,
        clock_offset_ns=-12_345,
        clock_synchronized=False,
        duration_s=1.0,
        frame_count=30,
        dropped_frames=0,
        width=320,
        height=240,
        fps=30,
        codec=Codec.h264,
        encoder="libx264",
        bitrate_bps=2_000_000,
        size_bytes=1234,
        sha256="a" * 64,
        software_version="1",
    )
    return base.model_copy(update=changes)


def test_ingest_stores_once_and_follows_changes(db_url: str) -> None:
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    with Session(engine) as s:
        ingest(s, "cam-l", [manifest("a.mp4"), manifest("b.mp4")])
        first = {r.file_name: r.collected_at_ns for r in s.exec(select(Recording)).all()}
        ingest(s, "cam-l", [manifest("a.mp4"), manifest("b.mp4")])  # the next sweep
        ingest(s, "cam-l", [manifest("a.mp4", offloaded=True)])
        rows = {r.file_name: r for r in s.exec(select(Recording)).all()}
    engine.dispose()
    assert sorted(rows) == ["a.mp4", "b.mp4"]
    assert rows["a.mp4"].offloaded is True and rows["b.mp4"].offloaded is False
    assert rows["a.mp4"].manifest().offloaded is True
    assert rows["b.mp4"].first_frame_ns == 1_780_000_000_000_000_000
    assert rows["b.mp4"].clock_offset_ns == -12_345
    assert {k: r.collected_at_ns for k, r in rows.items()} == first


def test_a_manifest_that_comes_after_its_session_ended_updates_the_skew(db_url: str) -> None:
    from app.sessions.models import RecordingSession, SessionState
    from app.sessions.skew import refresh_ended

    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    t0 = 1_780_000_000_000_000_000
    with Session(engine, expire_on_commit=False) as s:
        s.add(
            RecordingSession(
                session_id="S1",
                state=SessionState.stopped.value,
                lead_ms=500,
                start_at_ns=t0,
                created_at_ns=t0,
                skew_ms=0.0,  # computed when only CAM_L's manifest was there
            )
        )
        s.commit()
        assert ingest(s, "cam-l", [manifest("a.mp4", first_frame_ns=t0)]) == {"S1"}
        assert ingest(s, "cam-l", [manifest("a.mp4", first_frame_ns=t0)]) == set()  # no change
        # The node that was unreachable when the session ended reports 2.5 ms later.
        late = manifest("r.mp4", node_id="cam-r", cam_id="CAM_R", first_frame_ns=t0 + 2_500_000)
        refresh_ended(s, ingest(s, "cam-r", [late]))
        ended = s.get(RecordingSession, "S1")
    engine.dispose()
    assert ended is not None and ended.skew_ms == 2.5
