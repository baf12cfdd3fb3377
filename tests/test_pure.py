"""Pure parts: table and property tests."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.recordings.models import Recording
from app.sessions.service import new_session_id
from app.sessions.skew import compute_skew_ms
from node_agent.backoff import backoff_s
from node_agent.camera.synthetic import overlay_label, render_text
from node_agent.errors import BadRequest, NotFound
from node_agent.naming import manifest_name, recording_name
from node_agent.schemas import SESSION_ID_PATTERN
from node_agent.storage.recordings import resolve_recording
from node_agent.telemetry.disk import minutes_left


@pytest.fixture(scope="module")
def recordings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("node")
    (root / "api_token").write_text("secret")
    rec = root / "recordings"
    rec.mkdir()
    (rec / "S1_CAM_L_20260101_120000.mp4").write_bytes(b"video")
    (rec / "S1_CAM_L.json").write_text("{}")
    return rec


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=0, max_size=40))
def test_resolve_recording_never_leaves_the_folder(recordings_dir: Path, name: str) -> None:
    try:
        path = resolve_recording(recordings_dir, name)
    except (BadRequest, NotFound):
        return
    assert path.parent == recordings_dir.resolve()
    assert path.name == name


def test_resolve_recording_finds_real_files(recordings_dir: Path) -> None:
    assert resolve_recording(recordings_dir, "S1_CAM_L.json").read_text() == "{}"
    with pytest.raises(BadRequest):
        resolve_recording(recordings_dir, "../api_token")


def test_a_name_too_long_for_the_file_system_is_a_bad_request(recordings_dir: Path) -> None:
    resolve_recording(recordings_dir, "S1_CAM_L.json")  # a real name resolves
    with pytest.raises(BadRequest, match="at most 255 bytes"):
        resolve_recording(recordings_dir, "A" * 300 + ".mp4")
    with pytest.raises(NotFound):
        resolve_recording(recordings_dir, "S2_CAM_L.json")


def recording(first_ns: int, offset_ns: int | None) -> Recording:
    return Recording(
        session_id="S",
        node_id=f"n{first_ns}",
        cam_id="C",
        file_name="f.mp4",
        sha256="0" * 64,
        size_bytes=1,
        first_frame_ns=first_ns,
        clock_offset_ns=offset_ns,
        duration_s=1.0,
        frame_count=30,
        dropped_frames=0,
        manifest_json="{}",
        collected_at_ns=0,
    )


def test_skew_corrects_each_first_frame_by_its_clock_offset() -> None:
    # Node B's clock runs 2 ms ahead: its first frame stamped 2 ms late was really on time.
    recs = [recording(1_000_000_000, 0), recording(1_002_000_000, 2_000_000)]
    assert compute_skew_ms(recs) == 0.0
    recs = [recording(1_000_000_000, None), recording(1_000_500_000, None)]
    assert compute_skew_ms(recs) == 0.5
    assert compute_skew_ms([]) is None
    assert compute_skew_ms([recording(5, 0)]) == 0.0


@given(
    firsts=st.lists(st.integers(0, 10**12), min_size=2, max_size=20),
    shift=st.integers(-(10**9), 10**9),
)
def test_skew_is_a_spread(firsts: list[int], shift: int) -> None:
    base = compute_skew_ms([recording(f, 0) for f in firsts])
    assert base == round((max(firsts) - min(firsts)) / 1e6, 4)
    assert compute_skew_ms([recording(f + shift, 0) for f in reversed(firsts)]) == base


@given(st.integers(0, 4102444800 * 10**9))
def test_session_ids_and_file_names_follow_the_naming_rule(now_ns: int) -> None:
    sid = new_session_id(now_ns)
    assert re.match(SESSION_ID_PATTERN, sid)
    name = recording_name(sid, "CAM_L", now_ns)
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(now_ns // 10**9))
    assert name == f"{sid}_CAM_L_{stamp}.mp4"
    assert manifest_name(sid, "CAM_L") == f"{sid}_CAM_L.json"


def test_minutes_left_at_a_bitrate() -> None:
    assert minutes_left(60 * 30_000_000 // 8, 30_000_000) == pytest.approx(1.0)
    assert minutes_left(0, 30_000_000) == 0.0


@given(attempt=st.integers(0, 40), cap=st.floats(0.1, 600))
def test_backoff_grows_then_caps(attempt: int, cap: float) -> None:
    ceiling = min(cap, 2.0**attempt)
    assert 0.5 * ceiling <= backoff_s(attempt + 1, 1.0, cap) <= ceiling


def test_overlay_text_renders_every_character() -> None:
    label = overlay_label(123, 1_700_000_000_123_456_789, "CAM_L")
    assert label == "CAM_L F000123 22:13:20.123"
    bitmap = render_text(label, 2)
    assert bitmap.shape == (10, len(label) * 4 * 2)
    # every character but the spaces leaves ink in its own 4-pixel column
    for i, ch in enumerate(label):
        assert bitmap[:, i * 8 : i * 8 + 6].any() == (ch != " "), ch


def test_cameras_started_together_still_differ() -> None:
    from node_agent.camera.synthetic import SyntheticCamera

    t = 1_700_000_000_000_000_000
    left = SyntheticCamera(64, 48, 30, "CAM_L").render(0, t).to_ndarray()
    right = SyntheticCamera(64, 48, 30, "CAM_R").render(0, t).to_ndarray()
    again = SyntheticCamera(64, 48, 30, "CAM_L").render(0, t).to_ndarray()
    assert (left != right).any()
    assert (left == again).all()  # deterministic per camera
