"""The watch's pieces without processes: the bounded SSE parser, the cache's offline
mark and stale answers, the agent's change digest."""

from __future__ import annotations

import pytest

from app.fleet.client import NodeAddress
from app.fleet.sse import SseEvent, SseParser, StreamProblem
from app.fleet.state import FleetState
from node_agent.status_stream import _coarse


def test_parser_splits_events_comments_and_pieces() -> None:
    p = SseParser(max_line_bytes=100, max_event_bytes=50)
    assert p.feed(b": hb\n\nevent: status\nda") == [SseEvent("comment", "")]
    assert p.feed(b'ta: {"a":\r\ndata: 1}\n') == []
    assert p.feed(b"\n") == [SseEvent("status", '{"a":\n1}')]
    assert p.feed(b"id: 3\nretry: 5\n\n") == []  # no data: nothing dispatched


def test_parser_refuses_a_line_without_end_and_an_oversized_event() -> None:
    with pytest.raises(StreamProblem, match="without an end of line"):
        SseParser(100, 50).feed(b"data: " + b"x" * 200)
    p = SseParser(100, 50)
    with pytest.raises(StreamProblem, match="an event over 50 bytes"):
        for _ in range(10):
            p.feed(b"data: " + b"y" * 20 + b"\n")
    with pytest.raises(StreamProblem, match="not UTF-8"):
        SseParser(100, 50).feed(b"data: \xff\n")


def test_offline_mark_lasts_until_the_next_answer() -> None:
    state = FleetState(offline_after_s=15)
    state.set_address(NodeAddress("n1", "127.0.0.1", 1, "t"), "N1")
    changes = []
    state.on_change = lambda: changes.append(1)
    state.contact("n1")
    assert state.online("n1")
    state.mark_offline("n1", "status stream: reset; probe: refused")
    assert not state.online("n1")
    assert state.cache["n1"].last_error == "status stream: reset; probe: refused"
    before = len(changes)
    state.touch("n1")  # a heartbeat ends the offline spell, and says so
    assert state.online("n1") and len(changes) == before + 1
    state.touch("n1")  # an ordinary heartbeat wakes nobody
    assert len(changes) == before + 1


def test_coarse_digest_ignores_drift_not_changes() -> None:
    a = {"disk": {"free_bytes": 10 * 2**30, "minutes_left": 100.2, "level": "ok"}}
    drift = {"disk": {"free_bytes": 10 * 2**30 + 4096, "minutes_left": 100.4, "level": "ok"}}
    real = {"disk": {"free_bytes": 10 * 2**30, "minutes_left": 100.2, "level": "low"}}
    aged = {"power": {"age_s": 1.0}}
    assert _coarse(a) == _coarse(drift)
    assert _coarse(a) != _coarse(real)
    assert _coarse(aged) == _coarse({"power": {"age_s": 9.0}})
