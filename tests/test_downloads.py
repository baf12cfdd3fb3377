"""Downloads from the archive and relays to the nodes, with real processes: Range (206,
416), a session as one zip and one tar that open and match byte for byte, a node's file
and a confirm relayed through, deletes of offloaded footage, and bad input."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from app.demo import stop_all
from node_agent.recorder.manifest import write_manifest
from node_agent.schemas import Manifest
from tests.conftest import RunningFleet
from tests.offload_helpers import archive_dir, node_id_of, offload, plant, wait_known

pytestmark = pytest.mark.slow

SESSION = "DL1"
CAMS = ("CAM_L", "CAM_R")
JPEG = b"\xff\xd8\xff\xe0" + hashlib.shake_256(b"still").digest(5000)


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two agents, one recording each in SESSION (with a Lock View still) offloaded, and
    one more recording on CAM_L (another session) left on the node."""
    fleet = RunningFleet(root=tmp_path_factory.mktemp("downloads"))
    try:
        fleet.start_coordinator()
        planted: dict[str, Manifest] = {}
        for i, cam in enumerate(CAMS):
            fleet.start_agent(cam, "left" if cam == "CAM_L" else "right")
            m = plant(fleet, cam, SESSION, 700_000 + i * 1000, seed=i)
            still = f"{SESSION}_{cam}_lockview.jpg"
            (fleet.recordings_dir(cam) / still).write_bytes(JPEG)
            m = m.model_copy(update={"lockview_file": still})
            write_manifest(fleet.recordings_dir(cam), m)
            planted[cam] = m
        left = plant(fleet, "CAM_L", "DL2", 50_000)
        fleet.wait_online(2)
        with fleet.client() as c:
            wait_known(c, 2, SESSION)
            wait_known(c, 1, "DL2")
            job = offload(c, {"session_id": SESSION})
            assert job["state"] in ("done", "failed") and all(
                f["state"] in ("confirmed", "archived") for f in job["files"]
            ), job
            recs = c.get("/api/v1/recordings").json()["recordings"]
        by_file = {r["file_name"]: r for r in recs}
        yield {"fleet": fleet, "planted": planted, "left": left, "recs": by_file}
    finally:
        stop_all(fleet.children())


def _data(ctx: dict[str, Any], cam: str) -> bytes:
    m = ctx["planted"][cam]
    return bytes((archive_dir(ctx["fleet"]) / SESSION / m.file_name).read_bytes())


def test_an_archived_file_is_served_with_ranges(archived: dict[str, Any]) -> None:
    fleet, m = archived["fleet"], archived["planted"]["CAM_L"]
    rec = archived["recs"][m.file_name]
    data = _data(archived, "CAM_L")
    assert hashlib.sha256(data).hexdigest() == m.sha256
    url = rec["download_url"]
    assert url == f"/api/v1/recordings/{rec['id']}/file"
    with fleet.client() as c:
        whole = c.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["accept-ranges"] == "bytes"
        assert whole.headers["content-length"] == str(len(data))
        for header, part in (
            ("bytes=100-1099", data[100:1100]),
            ("bytes=699000-", data[699000:]),
            ("bytes=-10", data[-10:]),
        ):
            r = c.get(url, headers={"Range": header})
            assert r.status_code == 206 and r.content == part, header
            start = (
                len(data) - len(part)
                if header.startswith("bytes=-")
                else int(header[6:].split("-")[0])
            )
            assert r.headers["content-range"] == (
                f"bytes {start}-{start + len(part) - 1}/{len(data)}"
            )
        past = c.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert past.status_code == 416
        assert past.headers["content-range"] == f"bytes */{len(data)}"
        assert past.json()["code"] == "range_not_satisfiable"
        manifest = c.get(f"/api/v1/recordings/{rec['id']}/manifest")
        assert manifest.status_code == 200 and manifest.json()["sha256"] == m.sha256
        still = c.get(f"/api/v1/recordings/{rec['id']}/lockview.jpg")
        assert still.status_code == 200 and still.content == JPEG
        assert still.headers["content-type"] == "image/jpeg"


def test_not_archived_and_unknown_recordings_are_404(archived: dict[str, Any]) -> None:
    fleet, left = archived["fleet"], archived["left"]
    rec = archived["recs"][left.file_name]
    assert rec["archive_state"] == "none" and rec["download_url"] is None
    with fleet.client() as c:
        for what in ("file", "manifest", "lockview.jpg"):
            r = c.get(f"/api/v1/recordings/{rec['id']}/{what}")
            assert r.status_code == 404, r.text
            assert "not archived yet: POST /api/v1/offload" in r.json()["detail"]
        assert c.get("/api/v1/recordings/999999/file").status_code == 404
        assert c.get("/api/v1/recordings/0/file").status_code == 422
        assert c.get("/api/v1/recordings/abc/file").status_code == 422


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_a_session_streams_as_one_archive_that_opens_and_matches(
    archived: dict[str, Any], fmt: str
) -> None:
    fleet = archived["fleet"]
    expected = {}
    for cam, m in archived["planted"].items():
        expected[f"{SESSION}/{m.file_name}"] = _data(archived, cam)
        expected[f"{SESSION}/{SESSION}_{cam}_lockview.jpg"] = JPEG
        manifest = archive_dir(fleet) / SESSION / f"{SESSION}_{cam}.json"
        expected[f"{SESSION}/{manifest.name}"] = manifest.read_bytes()
    with (
        fleet.client() as c,
        c.stream("GET", f"/api/v1/sessions/{SESSION}/archive", params={"format": fmt}) as r,
    ):
        assert r.status_code == 200
        blob = b"".join(r.iter_raw())
        assert int(r.headers["content-length"]) == len(blob)
        assert f'filename="{SESSION}.{fmt}"' in r.headers["content-disposition"]
    found = {}
    if fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            assert z.testzip() is None
            assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
            found = {n: z.read(n) for n in z.namelist()}
    else:
        with tarfile.open(fileobj=io.BytesIO(blob)) as t:
            for member in t.getmembers():
                fh = t.extractfile(member)
                assert fh is not None
                found[member.name] = fh.read()
    assert found == expected


def test_session_archive_bad_input(archived: dict[str, Any]) -> None:
    with archived["fleet"].client() as c:
        assert c.get("/api/v1/sessions/NOPE/archive").status_code == 404
        r = c.get("/api/v1/sessions/DL2/archive")
        assert r.status_code == 404 and "not archived yet" in r.json()["detail"]
        assert c.get(f"/api/v1/sessions/{SESSION}/archive?format=rar").status_code == 422
        assert c.get("/api/v1/sessions/a_b/archive").status_code == 422


def test_a_nodes_file_is_relayed_with_range_and_nothing_is_kept(
    archived: dict[str, Any],
) -> None:
    fleet, left = archived["fleet"], archived["left"]
    data = (fleet.recordings_dir("CAM_L") / left.file_name).read_bytes()
    node = node_id_of("CAM_L")
    url = f"/api/v1/nodes/{node}/recordings/{left.file_name}"
    with fleet.client() as c:
        whole = c.get(url)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["content-type"] == "video/mp4"
        part = c.get(url, headers={"Range": "bytes=1000-"})
        assert part.status_code == 206 and part.content == data[1000:]
        assert part.headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
        manifest = c.get(f"/api/v1/nodes/{node}/recordings/DL2_CAM_L.json")
        assert manifest.status_code == 200 and manifest.json()["sha256"] == left.sha256
        # Only what the coordinator knows is relayed; names are checked before anything.
        assert c.get(f"/api/v1/nodes/{node}/recordings/other.mp4").status_code == 404
        assert c.get(f"/api/v1/nodes/{node}/recordings/%2E%2E").status_code == 400
        assert c.get(f"/api/v1/nodes/{node}/recordings/..%2F{left.file_name}").status_code == 404
        assert c.get(f"/api/v1/nodes/{node}/recordings/a%20b.mp4").status_code == 400
        assert c.get(f"/api/v1/nodes/{node}/recordings/x.txt").status_code == 400
        assert c.get(f"/api/v1/nodes/nobody/recordings/{left.file_name}").status_code == 404
    assert not (archive_dir(fleet) / "DL2").exists()


def test_a_confirm_is_relayed_to_the_node(archived: dict[str, Any]) -> None:
    fleet, left = archived["fleet"], archived["left"]
    node = node_id_of("CAM_L")
    url = f"/api/v1/nodes/{node}/recordings/{left.file_name}/confirm"
    with fleet.client() as c:
        wrong = c.post(url, json={"sha256": "0" * 64, "copied_to": "laptop:/footage"})
        assert wrong.status_code == 409, wrong.text
        ok = c.post(url, json={"sha256": left.sha256, "copied_to": "laptop:/footage"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["offloaded"] is True
        assert ok.json()["manifest"]["offloaded_to"] == "laptop:/footage"
        (rec,) = c.get("/api/v1/recordings", params={"session_id": "DL2"}).json()["recordings"]
        assert rec["offloaded"] is True and rec["archive_state"] == "none"
        bad = c.post(
            url.replace(left.file_name, "x.json"), json={"sha256": left.sha256, "copied_to": "x"}
        )
        assert bad.status_code == 400
        extra = c.post(url, json={"sha256": left.sha256, "copied_to": "x", "more": 1})
        assert extra.status_code == 422


def test_deleting_offloaded_footage_says_what_each_node_freed(archived: dict[str, Any]) -> None:
    fleet = archived["fleet"]
    with fleet.client() as c:
        refused = c.delete("/api/v1/recordings")
        assert refused.status_code == 400 and "offloaded=true" in refused.json()["detail"]
        assert c.delete("/api/v1/recordings?offloaded=true&node_id=nobody").status_code == 404
        r = c.delete("/api/v1/recordings", params={"offloaded": "true"})
        assert r.status_code == 200, r.text
        body = r.json()
    by_node = {n["node_id"]: n for n in body["nodes"]}
    assert set(by_node) == {node_id_of(cam) for cam in CAMS}
    for cam, m in archived["planted"].items():
        result = by_node[node_id_of(cam)]["result"]
        assert m.file_name in result["deleted"], result
        assert not (fleet.recordings_dir(cam) / m.file_name).exists()
        # The archive keeps its copy, and serves it still.
        assert (archive_dir(fleet) / SESSION / m.file_name).is_file()
    assert body["freed_bytes"] >= sum(m.size_bytes for m in archived["planted"].values())


def test_offload_bad_input(archived: dict[str, Any]) -> None:
    with archived["fleet"].client() as c:
        for body, status in (
            ({"node_ids": ["nobody"]}, 404),
            ({"session_id": "NOPE"}, 404),
            ({"recordings": [{"node_id": "cam-l", "file_name": "none.mp4"}]}, 404),
            ({"colour": "blue"}, 422),
            ({"session_id": "a/b"}, 422),
            ({"node_ids": []}, 422),
        ):
            r = c.post("/api/v1/offload", json=body)
            assert r.status_code == status, (body, r.text)
            assert r.json()["detail"]
        assert c.get("/api/v1/offload/20260101-000000-abcdef").status_code == 404
        assert c.get("/api/v1/offload/NOT_A_JOB").status_code == 422
        recent = c.get("/api/v1/offload").json()["jobs"]
        assert recent and recent[0]["files"] == []
