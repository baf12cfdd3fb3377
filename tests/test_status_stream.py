"""GET /api/v1/status/stream on a real agent: the full status first, changes, heartbeats,
at most two clients, the token, and the setting that turns the route off."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from app.demo import Child
from tests.conftest import RunningFleet
from tests.stream_reader import StreamReader

pytestmark = pytest.mark.slow

HEARTBEAT_S = 0.3


@dataclass
class Solo:
    """One agent with no coordinator, and a client for its API."""

    url: str
    token: str
    client: httpx.Client
    child: Child

    @property
    def stream_url(self) -> str:
        return f"{self.url}/api/v1/status/stream"


def _solo(fleet: RunningFleet, **extra: str) -> Iterator[Solo]:
    child = fleet.start_agent(
        "CAM_C",
        "centre",
        CAMFLEET_COORDINATOR_URL="",
        CAMFLEET_STATUS_STREAM_HEARTBEAT_S=str(HEARTBEAT_S),
        **extra,
    )
    token = (fleet.root / "CAM_C" / "api_token").read_text().strip()
    url = f"http://127.0.0.1:{child.port}"
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        yield Solo(url, token, client, child)


@pytest.fixture
def solo(fleet_factory: RunningFleet) -> Iterator[Solo]:
    yield from _solo(fleet_factory)


def test_first_event_is_the_full_status_then_heartbeats_then_changes(solo: Solo) -> None:
    with StreamReader(solo.stream_url, solo.token) as reader:
        first = reader.next(10)
        assert reader.status_code == 200
        assert first.kind == "status"
        now = solo.client.get("/api/v1/status").json()
        # The whole document (readings carry their own read times, so compare the parts
        # that do not move by themselves).
        assert first.data.keys() == now.keys()
        for key in ("node_id", "cam_id", "position", "version", "recorder", "timelapse"):
            assert first.data[key] == now[key], key
        assert first.data["node_id"] == "cam-c" and first.data["timelapse"]["running"] is False

        # A quiet node: heartbeats about every HEARTBEAT_S (and a status only when a
        # reading is new: the clock's and the battery's every few seconds).
        beats: list[float] = []
        while len(beats) < 5:
            item = reader.next(5)
            if item.kind == "comment":
                beats.append(item.at)
        gaps = [b - a for a, b in itertools.pairwise(beats)]
        print(f"heartbeat gaps: {[round(g, 3) for g in gaps]}")
        assert all(HEARTBEAT_S * 0.5 < g < HEARTBEAT_S * 3 for g in gaps), gaps

        # A change through the node's own API reaches the stream at once.
        before = time.monotonic()
        assert solo.client.post("/api/v1/timelapse/start", json={"interval_s": 0.5}).is_success
        seen = reader.wait_for(lambda d: d["timelapse"]["running"], 5)
        print(f"timelapse start to its status event: {seen.at - before:.3f} s")
        assert seen.at - before < 1.0

        # A change the node makes by itself (the next still): the periodic re-read sees it.
        count = seen.data["timelapse"]["captures_total"]
        later = reader.wait_for(lambda d: d["timelapse"]["captures_total"] > count, 5)
        assert later.data["timelapse"]["running"] is True
        assert solo.client.post("/api/v1/timelapse/stop").is_success


def test_at_most_two_clients_the_oldest_gives_way(solo: Solo) -> None:
    with StreamReader(solo.stream_url, solo.token) as a:
        assert a.next_event(10).kind == "status"
        b = StreamReader(solo.stream_url, solo.token).__enter__()
        assert b.next_event(10).kind == "status"
        with StreamReader(solo.stream_url, solo.token) as c:
            assert c.next_event(10).kind == "status"
            assert a.ended.wait(5), "the oldest client was not ended"
            assert not b.ended.is_set()
            # The two left still get heartbeats.
            for reader in (b, c):
                while reader.next(5).kind != "comment":
                    pass
            assert not b.ended.is_set() and not c.ended.is_set()
        b.__exit__()


def test_the_stream_needs_the_token(solo: Solo) -> None:
    assert httpx.get(solo.stream_url, timeout=5).status_code == 401
    wrong = httpx.get(solo.stream_url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401


def test_the_route_can_be_turned_off(fleet_factory: RunningFleet) -> None:
    for solo in _solo(fleet_factory, CAMFLEET_STATUS_STREAM_ENABLED="false"):
        assert solo.client.get("/api/v1/status/stream").status_code == 404
        assert solo.client.get("/api/v1/status").status_code == 200


def test_the_agent_exits_at_once_with_a_stream_open(solo: Solo) -> None:
    with StreamReader(solo.stream_url, solo.token) as reader:
        assert reader.next_event(10).kind == "status"
        t0 = time.monotonic()
        os.killpg(solo.child.proc.pid, signal.SIGTERM)
        solo.child.proc.wait(30)
        took = time.monotonic() - t0
        print(f"exit after SIGTERM with a status stream open: {took:.2f} s")
        assert took < 5, took  # not uvicorn's 20 s graceful wait for the stream
        assert reader.ended.wait(5)
