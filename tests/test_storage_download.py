"""Downloads from a real agent: a recording still being written, Range, 206 and 416."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from node_agent.storage.download import ByteRange, RangeNotSatisfiable, parse_range
from tests.solo_agent import SoloAgent, solo_agent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoloAgent]:
    with solo_agent(tmp_path_factory.mktemp("download")) as agent:
        yield agent


@pytest.fixture(scope="module")
def finished(node: SoloAgent) -> dict[str, Any]:
    return node.record("D1", 1.0)


def test_a_growing_recording_is_served_up_to_its_length_when_asked(node: SoloAgent) -> None:
    started = node.client.post(
        "/api/v1/recording/start", json={"session_id": "D2", "command_id": "D2-a"}
    )
    assert started.status_code == 200, started.text
    name = started.json()["file_name"]
    downloads: list[httpx.Response] = []
    try:
        time.sleep(0.8)
        for _ in range(6):  # each one while the file grows under it
            answer = node.client.get(f"/api/v1/recordings/{name}")
            assert answer.status_code == 200, answer.text
            downloads.append(answer)
            time.sleep(0.25)
        ranged = node.client.get(f"/api/v1/recordings/{name}", headers={"Range": "bytes=100-"})
        assert node.status()["recorder"]["state"] == "recording"
    finally:
        stopped = node.client.post(
            "/api/v1/recording/stop", json={"session_id": "D2", "command_id": "D2-o"}
        )
    manifest = stopped.json()["manifest"]
    data = (node.recordings / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    lengths = [len(d.content) for d in downloads]
    assert lengths == sorted(lengths) and lengths[-1] > lengths[0]  # it grew between them
    assert max(lengths) < len(data)  # each was cut where the file ended when asked
    for d in downloads:
        assert int(d.headers["content-length"]) == len(d.content)
        assert d.content == data[: len(d.content)]  # the first N bytes of the finished file
        assert d.headers["accept-ranges"] == "bytes"
        assert d.headers["content-type"] == "video/mp4"
    assert ranged.status_code == 206
    total = int(ranged.headers["content-range"].rsplit("/", 1)[1])
    assert ranged.headers["content-range"] == f"bytes 100-{total - 1}/{total}"
    assert ranged.content == data[100:total]


def test_downloads_during_a_recording_leave_it_running(node: SoloAgent) -> None:
    started = node.client.post(
        "/api/v1/recording/start", json={"session_id": "D3", "command_id": "D3-a"}
    )
    name = started.json()["file_name"]
    stop = threading.Event()
    fetched: list[int] = []

    def pull() -> None:
        with httpx.Client(
            base_url=str(node.client.base_url), headers=dict(node.client.headers), timeout=30
        ) as c:
            while not stop.is_set():
                answer = c.get(f"/api/v1/recordings/{name}")
                assert int(answer.headers["content-length"]) == len(answer.content)
                fetched.append(len(answer.content))

    pullers = [threading.Thread(target=pull) for _ in range(3)]
    try:
        time.sleep(0.5)
        for t in pullers:
            t.start()
        frames = [node.status()["recorder"]["frames"]]
        for _ in range(4):
            time.sleep(0.5)
            frames.append(node.status()["recorder"]["frames"])  # the loop still answers
    finally:
        stop.set()
        for t in pullers:
            t.join(30)
        stopped = node.client.post(
            "/api/v1/recording/stop", json={"session_id": "D3", "command_id": "D3-o"}
        )
    assert fetched and frames == sorted(frames) and frames[-1] > frames[0]
    assert stopped.json()["manifest"]["stop_reason"] == "stopped"


def test_ranges_on_a_finished_recording(node: SoloAgent, finished: dict[str, Any]) -> None:
    name = finished["file_name"]
    data = (node.recordings / name).read_bytes()
    n = len(data)
    url = f"/api/v1/recordings/{name}"
    whole = node.client.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-length"] == str(n) and whole.headers["accept-ranges"] == "bytes"
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=1000-": (1000, n - 1),
        "bytes=-500": (n - 500, n - 1),
        f"bytes=10-{n + 1000}": (10, n - 1),  # an end past the file is cut to it
        f"bytes=-{n * 2}": (0, n - 1),
    }
    for header, (start, end) in cases.items():
        part = node.client.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{n}", header
        assert part.content == data[start : end + 1], header
        assert part.headers["content-length"] == str(end - start + 1)
    for ignored in (
        b"bytes=5-1",
        b"bytes=0-1,5-9",
        b"items=0-5",
        b"bytes=abc",
        "bytes=²-".encode("latin-1"),
    ):
        answer = node.client.get(url, headers={b"Range": ignored})
        assert answer.status_code == 200 and answer.content == data, ignored


def test_a_range_past_the_end_is_416(node: SoloAgent, finished: dict[str, Any]) -> None:
    name = finished["file_name"]
    n = (node.recordings / name).stat().st_size
    for header in (f"bytes={n}-", f"bytes={n + 10}-{n + 20}", "bytes=-0"):
        answer = node.client.get(f"/api/v1/recordings/{name}", headers={"Range": header})
        assert answer.status_code == 416, header
        assert answer.headers["content-range"] == f"bytes */{n}"
        assert answer.json()["code"] == "range_not_satisfiable" and answer.json()["detail"]


def test_manifests_and_unknown_names(node: SoloAgent, finished: dict[str, Any]) -> None:
    manifest = node.client.get(f"/api/v1/recordings/{finished['session_id']}_CAM_C.json")
    assert manifest.status_code == 200
    assert manifest.headers["content-type"] == "application/json"
    assert manifest.json()["sha256"] == finished["sha256"]
    assert node.client.get("/api/v1/recordings/S0_CAM_C_20260101_000000.mp4").status_code == 404
    assert node.client.get("/api/v1/recordings/%2E%2E").status_code == 400
    assert node.client.get("/api/v1/recordings/api_token").status_code == 400


@pytest.mark.parametrize(
    ("header", "length", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, ByteRange(0, 0)),
        ("bytes=9-", 10, ByteRange(9, 9)),
        ("bytes= 2 - 4 ", 10, ByteRange(2, 4)),
        ("BYTES=-3", 10, ByteRange(7, 9)),
        ("bytes=-30", 10, ByteRange(0, 9)),
        ("bytes=4-2", 10, None),
        ("bytes=1-2,4-5", 10, None),
        ("bytes=", 10, None),
        ("bytes=-", 10, None),
        ("bytes=1", 10, None),
        ("bytes=0x1-", 10, None),
        ("bytes=²-", 10, None),
        ("bytes=1-2-3", 10, None),
        ("bytes=" + "9" * 30 + "-", 10, None),
    ],
)
def test_parse_range(header: str | None, length: int, expected: ByteRange | None) -> None:
    assert parse_range(header, length) == expected


@pytest.mark.parametrize(
    ("header", "length"), [("bytes=10-", 10), ("bytes=-1", 0), ("bytes=0-", 0)]
)
def test_parse_range_unsatisfiable(header: str, length: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, length)
