"""``camfleet offload``/``download``/``archive`` against a real coordinator and three real agents."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.demo import stop_all
from tests.conftest import CAMERAS, RunningFleet

pytestmark = pytest.mark.slow

NODES = {cam: cam.lower().replace("_", "-") for cam, _ in CAMERAS}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """A coordinator and CAM_L, CAM_C, CAM_R, shared by this module's tests."""
    fleet = RunningFleet(root=tmp_path_factory.mktemp("rig"))
    try:
        fleet.start_fleet(CAMERAS)
        yield fleet
    finally:
        stop_all(fleet.children())


def record(fleet: RunningFleet, seconds: float = 2.0) -> str:
    """A three-camera session, stopped, with its three manifests at the coordinator."""
    with fleet.client() as c:
        made = c.post("/api/v1/sessions", json={"lead_ms": 500})
        assert made.status_code == 201, made.text
        sid = str(made.json()["session_id"])
        time.sleep(0.5 + seconds)
        assert c.post(f"/api/v1/sessions/{sid}/stop").status_code == 200
        deadline = time.monotonic() + 20
        while len(c.get("/api/v1/recordings", params={"session_id": sid}).json()["recordings"]) < 3:
            assert time.monotonic() < deadline, fleet.logs()
            time.sleep(0.2)
    return sid


def node_manifest(fleet: RunningFleet, cam: str, sid: str) -> dict[str, Any]:
    return dict(json.loads((fleet.recordings_dir(cam) / f"{sid}_{cam}.json").read_text()))


def cli_json(
    fleet: RunningFleet, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, Any]:
    code = cli.main(["--url", fleet.url, f"--token={fleet.operator_token}", *argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_offload_of_a_three_camera_session_verifies_all_and_confirms_node_copies_only(
    rig: RunningFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = record(rig)
    # The coordinator archives CAM_L's file first; the laptop then takes that one from the
    # archive and the other two straight from their nodes.
    code, archived = cli_json(rig, capsys, "archive", sid, "--node", NODES["CAM_L"], "--wait")
    assert code == 0, archived
    assert archived["ok"] and archived["job"]["files"], archived
    by_place_before = node_manifest(rig, "CAM_L", sid)["offloaded_to"]
    assert by_place_before and not by_place_before.startswith("laptop:")

    code, out = cli_json(rig, capsys, "offload", sid, str(tmp_path))
    assert code == 0, out
    files = {f["node"]: f for f in out["files"]}
    assert sorted(files) == sorted(NODES.values())
    for cam, node in NODES.items():
        manifest = node_manifest(rig, cam, sid)
        f = files[node]
        copy = tmp_path / sid / manifest["file_name"]
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == manifest["sha256"] == f["sha256"]
        assert copy.stat().st_size == manifest["size_bytes"] == f["bytes"]
        assert (
            json.loads((tmp_path / sid / f"{sid}_{cam}.json").read_text())["sha256"] == f["sha256"]
        )
        assert f["verified"] and f["error"] is None
        assert manifest["offloaded"] is True
        if cam == "CAM_L":
            assert f["source"] == "archive" and not f["confirmed"]
            assert manifest["offloaded_to"] == by_place_before  # the CLI did not confirm it again
        else:
            assert f["source"] == "node" and f["confirmed"]
            assert manifest["offloaded_to"] == f"laptop:{socket.gethostname()}:{copy}"
    assert out["totals"]["verified"] == 3 and out["totals"]["confirmed"] == 2


def test_download_never_confirms(
    rig: RunningFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = record(rig, 1.0)
    code, out = cli_json(rig, capsys, "download", sid, str(tmp_path))
    assert code == 0, out
    assert [f["verified"] for f in out["files"]] == [True, True, True]
    assert not any(f["confirmed"] for f in out["files"])
    for cam, _ in CAMERAS:
        assert node_manifest(rig, cam, sid)["offloaded"] is False


def test_an_interrupted_copy_resumes_from_the_length_of_its_part(
    rig: RunningFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = record(rig)
    manifest = node_manifest(rig, "CAM_C", sid)
    data = (rig.recordings_dir("CAM_C") / manifest["file_name"]).read_bytes()
    kept = len(data) // 3
    folder = tmp_path / sid
    folder.mkdir()
    (folder / f".{manifest['file_name']}.part").write_bytes(data[:kept])
    code, out = cli_json(rig, capsys, "offload", sid, str(tmp_path), "--from", "nodes")
    assert code == 0, out
    f = next(f for f in out["files"] if f["node"] == NODES["CAM_C"])
    # The CLI hashed the kept bytes and asked the node (through the relay) only for the rest.
    assert f["resumed_from"] == kept and f["fetched_bytes"] == len(data) - kept, f
    assert not f["restarted"] and f["confirmed"]
    assert (folder / manifest["file_name"]).read_bytes() == data
    assert not (folder / f".{manifest['file_name']}.part").exists()


def test_a_corrupted_byte_on_a_node_is_caught_and_nothing_of_it_is_confirmed(
    rig: RunningFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = record(rig)
    manifest = node_manifest(rig, "CAM_R", sid)
    path = rig.recordings_dir("CAM_R") / manifest["file_name"]
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    code, out = cli_json(rig, capsys, "offload", sid, str(tmp_path))
    assert code == 1, out
    files = {f["node"]: f for f in out["files"]}
    bad = files[NODES["CAM_R"]]
    assert bad["corrupt"] and not bad["verified"] and not bad["confirmed"]
    assert "checksum mismatch" in bad["error"]
    assert not (tmp_path / sid / manifest["file_name"]).exists()
    assert (tmp_path / sid / f"{manifest['file_name']}.corrupt").read_bytes() == bytes(damaged)
    assert node_manifest(rig, "CAM_R", sid)["offloaded"] is False
    assert files[NODES["CAM_L"]]["confirmed"] and files[NODES["CAM_C"]]["confirmed"]
    assert out["totals"]["corrupt"] == 1 and out["totals"]["failed"] == 1


def test_a_wrong_token_and_an_unknown_session_exit_2_saying_why(
    rig: RunningFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--url", rig.url, "--token=not-the-token", "offload", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "refused the operator token" in err, err
    code, out = cli_json(rig, capsys, "download", "NO-SUCH-SESSION", str(tmp_path))
    assert code == 2 and "no session 'NO-SUCH-SESSION'" in out["error"], out
    code = cli.main(["--url", rig.url, f"--token={rig.operator_token}", "archive", "NOPE"])
    assert code == 2 and "no session 'NOPE'" in capsys.readouterr().err
