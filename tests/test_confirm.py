"""Confirm by checksum, through a real agent process: right, wrong, again, in progress, bad names."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.solo_agent import SoloAgent, solo_agent

pytestmark = pytest.mark.slow

COPIED_TO = "coordinator:archive-host:/srv/camfleet/archive/S/f.mp4"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoloAgent]:
    with solo_agent(tmp_path_factory.mktemp("confirm")) as agent:
        yield agent


def confirm(node: SoloAgent, name: str, sha256: str, **extra: Any) -> Any:
    body = {"sha256": sha256, "copied_to": COPIED_TO} | extra
    return node.client.post(f"/api/v1/recordings/{name}/confirm", json=body)


def manifest_file(node: SoloAgent, m: dict[str, Any]) -> Path:
    return node.recordings / f"{m['session_id']}_{m['cam_id']}.json"


def test_the_right_checksum_marks_it_offloaded_durably_before_the_answer(node: SoloAgent) -> None:
    m = node.record("C1")
    video = node.recordings / m["file_name"]
    assert hashlib.sha256(video.read_bytes()).hexdigest() == m["sha256"]
    # The housekeeper rescans in its own round when a recording ends (woken by the stop),
    # so the status counts the new recording within moments of the stop's answer.
    deadline = time.monotonic() + 10
    while (before := node.status()["disk"])["unoffloaded_count"] < 1:
        assert time.monotonic() < deadline, f"the new recording was never counted: {before}"
        time.sleep(0.05)
    assert before["oldest_unoffloaded_age_s"] is not None

    answer = confirm(node, m["file_name"], m["sha256"], copied_at_ns=1_800_000_000_000_000_000)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["offloaded"] is True and body["already"] is False and body["deleted"] is False
    assert body["manifest"]["offloaded_to"] == COPIED_TO
    # Read back from the disk right after the answer: it was written before it.
    on_disk = node.manifest_on_disk(m)
    assert on_disk["offloaded"] is True
    assert on_disk["offloaded_to"] == COPIED_TO
    assert on_disk["offloaded_at_ns"] == 1_800_000_000_000_000_000
    assert on_disk["sha256"] == m["sha256"] and on_disk["size_bytes"] == m["size_bytes"]
    assert not list(node.recordings.glob(".*tmp*"))  # the temp file was renamed into place
    listed = node.client.get("/api/v1/recordings").json()["recordings"]
    entry = next(e for e in listed if e["name"] == m["file_name"])
    assert entry["manifest"]["offloaded"] is True
    after = node.status()["disk"]
    assert after["offloaded_bytes"] >= m["size_bytes"]
    assert after["unoffloaded_count"] == before["unoffloaded_count"] - 1
    assert video.exists()  # delete_after_confirm is off: confirmed, not deleted


def test_without_copied_at_the_confirm_time_is_recorded(node: SoloAgent) -> None:
    m = node.record("C2")
    t0 = time.time_ns()
    assert confirm(node, m["file_name"], m["sha256"]).status_code == 200
    assert t0 <= node.manifest_on_disk(m)["offloaded_at_ns"] <= time.time_ns()


def test_a_wrong_checksum_is_409_and_changes_nothing(node: SoloAgent) -> None:
    m = node.record("C3")
    path = manifest_file(node, m)
    raw, st = path.read_bytes(), path.stat()
    wrong = hashlib.sha256(b"another file").hexdigest()
    answer = confirm(node, m["file_name"], wrong)
    assert answer.status_code == 409
    body = answer.json()
    assert body["code"] == "checksum_mismatch" and m["sha256"] in body["detail"]
    assert path.read_bytes() == raw
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert node.manifest_on_disk(m)["offloaded"] is False


def test_a_second_confirm_answers_already_and_rewrites_nothing(node: SoloAgent) -> None:
    m = node.record("C4")
    assert confirm(node, m["file_name"], m["sha256"]).status_code == 200
    path = manifest_file(node, m)
    st = path.stat()
    again = confirm(node, m["file_name"], m["sha256"], copied_to="somewhere-else")
    assert again.status_code == 200
    assert again.json()["already"] is True and again.json()["offloaded"] is True
    assert again.json()["manifest"]["offloaded_to"] == COPIED_TO  # the first copy's place
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    # a different checksum after the confirm is still refused
    assert confirm(node, m["file_name"], "0" * 64).status_code == 409


def test_a_recording_in_progress_cannot_be_confirmed(node: SoloAgent) -> None:
    started = node.client.post(
        "/api/v1/recording/start", json={"session_id": "C5", "command_id": "C5-a"}
    )
    assert started.status_code == 200, started.text
    name = started.json()["file_name"]
    try:
        deadline = time.monotonic() + 10
        while not (node.recordings / name).exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        answer = confirm(node, name, "a" * 64)
        assert answer.status_code == 409
        assert answer.json()["code"] == "recording_in_progress"
        assert "being recorded" in answer.json()["detail"]
    finally:
        node.client.post("/api/v1/recording/stop", json={"session_id": "C5", "command_id": "C5-o"})


def test_a_file_without_a_manifest_cannot_be_confirmed(node: SoloAgent) -> None:
    m = node.record("C6")
    orphan = node.recordings / "C66_CAM_C_20260101_000000.mp4"
    shutil.copyfile(node.recordings / m["file_name"], orphan)
    answer = confirm(node, orphan.name, m["sha256"])
    assert answer.status_code == 409 and answer.json()["code"] == "no_manifest"
    assert "no manifest" in answer.json()["detail"]
    os.unlink(orphan)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("S9_CAM_C_20260101_000000.mp4", 404),  # well formed, not on this node
        ("notes.txt", 400),
        (".hidden.mp4", 400),
        ("a%20b.mp4", 400),
        ("..", 404),  # the router never sees '..' as a name
        ("%2E%2E", 400),
        ("%2E%2E%2Fapi_token", 404),  # an encoded slash is a path part: not routed here
        ("x" * 300 + ".mp4", 400),
    ],
)
def test_bad_names_are_refused_with_a_message(node: SoloAgent, name: str, status: int) -> None:
    answer = confirm(node, name, "a" * 64)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_a_manifest_name_is_not_confirmable(node: SoloAgent) -> None:
    m = node.record("C7")
    answer = confirm(node, manifest_file(node, m).name, m["sha256"])
    assert answer.status_code == 400 and ".mp4" in answer.json()["detail"]


def test_a_malformed_body_is_422(node: SoloAgent) -> None:
    m = node.record("C8")
    url = f"/api/v1/recordings/{m['file_name']}/confirm"
    assert node.client.post(url, json={"sha256": "XYZ", "copied_to": "x"}).status_code == 422
    assert node.client.post(url, json={"sha256": m["sha256"]}).status_code == 422
    extra = {"sha256": m["sha256"], "copied_to": "x", "offloaded": True}
    assert node.client.post(url, json=extra).status_code == 422
    assert node.manifest_on_disk(m)["offloaded"] is False


def test_delete_needs_offloaded_true_and_deletes_only_offloaded(node: SoloAgent) -> None:
    kept = node.record("C9")
    gone = node.record("C10")
    assert confirm(node, gone["file_name"], gone["sha256"]).status_code == 200
    refused = node.client.delete("/api/v1/recordings")
    assert refused.status_code == 400 and "offloaded=true" in refused.json()["detail"]
    assert (node.recordings / gone["file_name"]).exists()
    answer = node.client.delete("/api/v1/recordings", params={"offloaded": "true"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert gone["file_name"] in result["deleted"]
    assert f"{gone['session_id']}_CAM_C.json" in result["deleted"]
    assert result["freed_bytes"] >= gone["size_bytes"]
    assert result["kept_unoffloaded"] >= 1
    assert not (node.recordings / gone["file_name"]).exists()
    assert not manifest_file(node, gone).exists()
    assert (node.recordings / kept["file_name"]).exists() and manifest_file(node, kept).exists()
    video = node.recordings / kept["file_name"]
    assert hashlib.sha256(video.read_bytes()).hexdigest() == kept["sha256"]
    # every recording confirmed in the earlier tests went too; none not yet offloaded did
    listed = node.client.get("/api/v1/recordings").json()["recordings"]
    assert listed and all(not e["manifest"]["offloaded"] for e in listed if e["manifest"])
    assert node.status()["disk"]["offloaded_bytes"] == 0
    text = node.client.get("/metrics").text
    assert "camfleet_retention_deleted_bytes_total" in text


def test_concurrent_confirms_of_one_file_rewrite_it_once(node: SoloAgent) -> None:
    m = node.record("C11")
    url = f"/api/v1/recordings/{m['file_name']}/confirm"
    body = {"sha256": m["sha256"], "copied_to": COPIED_TO}

    def one(_: int) -> dict[str, Any]:
        with httpx.Client(
            base_url=str(node.client.base_url), headers=dict(node.client.headers), timeout=30
        ) as c:
            answer = c.post(url, json=body)
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    assert sorted(a["already"] for a in answers) == [False] + [True] * 7
    assert node.manifest_on_disk(m)["offloaded"] is True


def test_delete_after_confirm_deletes_right_after_the_manifest_says_offloaded(
    tmp_path: Path,
) -> None:
    with solo_agent(tmp_path, CAMFLEET_STORAGE__DELETE_AFTER_CONFIRM="true") as agent:
        kept = agent.record("K1")
        m = agent.record("K2")
        answer = confirm(agent, m["file_name"], m["sha256"])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["deleted"] is True and body["manifest"]["offloaded"] is True
        assert not (agent.recordings / m["file_name"]).exists()
        assert not manifest_file(agent, m).exists()
        assert (agent.recordings / kept["file_name"]).exists()
        assert manifest_file(agent, kept).exists()
        # the file is gone: a second confirm has nothing to confirm
        assert confirm(agent, m["file_name"], m["sha256"]).status_code == 404
        assert agent.status()["disk"]["deleted_bytes_total"] >= m["size_bytes"]
