"""The session's skew, its bound and the frame-period warning; the lead that adapts to the
round trips seen."""

from __future__ import annotations

import secrets
import time
from types import SimpleNamespace
from typing import Any

from pydantic import SecretStr
from sqlmodel import Session

from app import db
from app.fleet.state import FleetState
from app.recordings.service import ingest
from app.sessions.models import RecordingSession, SessionState
from app.sessions.service import choose_lead_ms, to_public
from app.sessions.skew import compute_skew_bound_ms, refresh_ended
from app.settings import CoordinatorSettings
from tests.test_recordings_ingest import manifest

MS = 1_000_000
T0 = 1_780_000_000_000_000_000


def cam(cam_id: str, first_ms: float, offset_ms: float, bound_ms: float | None, fps: float) -> Any:
    return manifest(
        f"{cam_id}.mp4",
        cam_id=cam_id,
        node_id=cam_id.lower().replace("_", "-"),
        first_frame_ns=T0 + round(first_ms * MS),
        clock_offset_ns=round(offset_ms * MS),
        clock_error_bound_ns=None if bound_ms is None else round(bound_ms * MS),
        clock_reference="10.42.0.1",
        fps=fps,
    )


def ended_session(db_url: str, manifests: list[Any]) -> dict[str, Any]:
    """A stopped session that receives ``manifests`` afterwards, as the API shows it."""
    db.upgrade(db_url)
    engine = db.make_engine(db_url)
    with Session(engine, expire_on_commit=False) as s:
        session = RecordingSession(
            session_id="S1",
            state=SessionState.stopped.value,
            lead_ms=500,
            start_at_ns=T0,
            created_at_ns=T0,
        )
        s.add(session)
        s.commit()
        for m in manifests:
            refresh_ended(s, ingest(s, m.node_id, [m]))
        fresh = s.get(RecordingSession, "S1")
        assert fresh is not None
        public = to_public(s, fresh).model_dump(mode="json")
    engine.dispose()
    return dict(public)


def test_skew_and_bound_within_a_frame_do_not_warn(db_url: str) -> None:
    # CAM_L 40 ms fast and CAM_R 25 ms slow, started on their own clocks at the fleet instant:
    # corrected, they are 0.4 ms apart; bounds without |offset| are 0.3, 0.5 and 0.2 ms.
    got = ended_session(
        db_url,
        [
            cam("CAM_L", 40.1, 40, 40.3, 30),
            cam("CAM_C", 0.0, 0, 0.5, 30),
            cam("CAM_R", -24.7, -25, 25.2, 30),
        ],
    )
    assert got["skew_ms"] == 0.3
    assert got["skew_bound_ms"] == 0.8  # 0.5 + 0.3: the two largest
    assert got["frame_period_ms"] == 33.333
    assert got["skew_warnings"] == []
    by_cam = {n["cam_id"]: n for n in got["nodes"]}
    assert by_cam["CAM_L"]["clock_error_bound_ns"] == 40_300_000
    assert by_cam["CAM_L"]["clock_reference"] == "10.42.0.1"
    assert by_cam["CAM_L"]["corrected_first_frame_ns"] == T0 + 100_000


def test_a_bound_over_one_frame_warns_even_when_the_skew_looks_small(db_url: str) -> None:
    got = ended_session(db_url, [cam("CAM_L", 0.0, 0, 12.0, 60), cam("CAM_R", 1.0, 0, 9.0, 60)])
    assert (got["skew_ms"], got["skew_bound_ms"], got["frame_period_ms"]) == (1.0, 21.0, 16.667)
    assert len(got["skew_warnings"]) == 1
    assert "allow 21.000 ms" in got["skew_warnings"][0]


def test_skew_over_one_frame_warns_and_an_unknown_bound_says_whose(db_url: str) -> None:
    got = ended_session(db_url, [cam("CAM_L", 0.0, 0, 0.2, 30), cam("CAM_R", 40.0, 0, None, 30)])
    assert got["skew_ms"] == 40.0 and got["skew_bound_ms"] is None
    assert any("exceeds one frame period (33.333 ms)" in w for w in got["skew_warnings"])
    assert any("no clock error bound from CAM_R" in w for w in got["skew_warnings"])


def test_the_bound_of_one_or_no_recording() -> None:
    assert compute_skew_bound_ms([]) is None


def fleet_with_rtts(
    rtts_ms: list[float], factor: float = 3.0, others: dict[str, list[float]] | None = None
) -> Any:
    settings = CoordinatorSettings(
        operator_token=SecretStr(secrets.token_urlsafe(24)),
        fleet_token=SecretStr(secrets.token_urlsafe(24)),
        lead_rtt_factor=factor,
        default_lead_ms=100,
        min_lead_ms=50,
        max_lead_ms=5000,
    )
    state = FleetState(offline_after_s=5)
    for node_id, node_rtts in {"n1": rtts_ms, **(others or {})}.items():
        state.set_address(SimpleNamespace(node_id=node_id), "CAM_L")  # type: ignore[arg-type]
        for rtt in node_rtts:
            state.contact(node_id, rtt)
    return SimpleNamespace(settings=settings, state=state)


def test_the_lead_covers_the_p99_round_trip_not_one_outlier() -> None:
    # 200 round trips of 10-29 ms over Wi-Fi, and one of 900 ms: p99 is 29 ms.
    rtts = [10.0 + i % 20 for i in range(200)] + [900.0]
    fleet = fleet_with_rtts([], others={"a": rtts[:64], "b": rtts[64:128], "c": rtts[128:]})
    assert fleet.state.rtt_quantile_ms(0.99) == 29.0
    assert choose_lead_ms(fleet, None) == (29 * 3 + 50)
    # Two exchanges before start_at (the beep phase): twice the round trips.
    assert choose_lead_ms(fleet, None, round_trips=2) == (2 * 29 * 3 + 50)
    # A longer requested lead is kept; the factor is the coordinator's setting.
    assert choose_lead_ms(fleet, 1000) == 1000
    factor10 = fleet_with_rtts([], factor=10, others={"a": rtts[:64], "b": rtts[64:128]})
    assert choose_lead_ms(factor10, None) == 29 * 10 + 50


def test_only_the_nodes_being_started_set_the_lead() -> None:
    # n1 was stopped for seconds (a SIGSTOP, a stalled Pi); n2 answers in 10 ms.
    fleet = fleet_with_rtts([2000.0, 2500.0], others={"n2": [10.0] * 20})
    assert choose_lead_ms(fleet, None, node_ids=["n2"]) == 100  # 10 x 3 + 50 < the default
    assert choose_lead_ms(fleet, None, node_ids=["n2", "n1"]) == 3000  # 2500 x 3 + 50, capped
    assert choose_lead_ms(fleet, None, node_ids=["gone"]) == 100  # no round trips: default


def test_old_round_trips_age_out_of_the_window() -> None:
    fleet = fleet_with_rtts([400.0] * 5)
    now = time.monotonic_ns()
    assert fleet.state.rtt_quantile_ms(0.99, window_s=60, now_ns=now) == 400.0
    assert fleet.state.rtt_quantile_ms(0.99, window_s=60, now_ns=now + 61 * 10**9) == 0.0


def test_the_lead_without_round_trips_and_its_ceilings() -> None:
    assert choose_lead_ms(fleet_with_rtts([]), None) == 100  # the default, over the margin
    # The round trips raise a lead to max_auto_lead_ms (3000) at most ...
    assert choose_lead_ms(fleet_with_rtts([3000.0] * 10), None) == 3000
    # ... an operator may still ask for longer, up to max_lead_ms.
    assert choose_lead_ms(fleet_with_rtts([3000.0] * 10), 4500) == 4500
    fleet = fleet_with_rtts([3000.0] * 10)
    fleet.settings.max_auto_lead_ms = 60_000
    assert choose_lead_ms(fleet, None) == 5000  # max_lead_ms
