"""``camfleet offload``/``download`` against a stand-in coordinator (a real HTTP server process)
that misbehaves on demand: resume, a Range ignored, a dropped connection, a corrupt source."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.demo import Child, wait_healthy
from app.operator.pull import MAX_PLACE, copy_place
from bench.common import free_port

SESSION = "S1"
SIZE = 3 * 1024 * 1024 + 123


@dataclass
class Standin:
    """The stand-in process, its files and its request log."""

    root: Path
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    recordings: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "requests.jsonl"

    def add(
        self, node_id: str, *, archived: bool = False, corrupt: bool = False, **behaviour: Any
    ) -> dict[str, Any]:
        data = os.urandom(SIZE)
        cam = node_id.upper().replace("-", "_")
        name = f"{SESSION}_{cam}_20260101_120000.mp4"
        src = self.root / "sources" / node_id
        src.mkdir(parents=True, exist_ok=True)
        node_path = src / name
        served = bytearray(data)
        if corrupt:
            served[SIZE // 2] ^= 0x01
        node_path.write_bytes(bytes(served))
        rec_id = len(self.recordings) + 1
        sha = hashlib.sha256(data).hexdigest()
        manifest = {
            "session_id": SESSION,
            "cam_id": cam,
            "node_id": node_id,
            "file_name": name,
            "sha256": sha,
            "size_bytes": SIZE,
            "lockview_file": f"{SESSION}_{cam}_lockview.jpg",
        }
        rec = {
            "wire": {
                "id": rec_id,
                "node_id": node_id,
                "session_id": SESSION,
                "file_name": name,
                "sha256": sha,
                "size_bytes": SIZE,
                "offloaded": archived,
                "archive_state": "confirmed" if archived else "none",
                "manifest": manifest,
            },
            "node_path": str(node_path),
            "archive_path": str(node_path),
            "data": data,
        } | behaviour
        self.recordings.append(rec)
        return rec

    def start(self) -> None:
        config = {
            "token": self.token,
            "log": str(self.log),
            "sessions": [SESSION],
            "recordings": [{k: v for k, v in r.items() if k != "data"} for r in self.recordings],
        }
        path = self.root / "standin.json"
        path.write_text(json.dumps(config))
        out = open(self.root / "standin.log", "wb")  # noqa: SIM115 - the child holds it
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.offload_standin", str(path), str(self.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        self.child = Child("standin", proc, self.port)
        wait_healthy([self.child])

    def requests(self, path_part: str = "", method: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        lines = [json.loads(x) for x in self.log.read_text().splitlines()]
        return [x for x in lines if path_part in x["path"] and method in (None, x["method"])]


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[Standin]:
    s = Standin(root=tmp_path / "standin")
    s.root.mkdir()
    try:
        yield s
    finally:
        if s.child is not None:
            s.child.proc.terminate()
            s.child.proc.wait(10)


def run(
    s: Standin, capsys: pytest.CaptureFixture[str], *argv: str, token: str | None = None
) -> tuple[int, Any, str]:
    """Run the command in-process; ``(exit code, parsed JSON or stdout, stderr)``."""
    code = cli.main(["--url", s.url, f"--token={token or s.token}", *argv])
    out, err = capsys.readouterr()
    if "--json" in argv:
        return code, json.loads(out), err
    return code, out, err


def test_offload_takes_archived_files_from_the_archive_and_confirms_only_node_files(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archived = standin.add("cam-l", archived=True)
    from_node = standin.add("cam-r")
    standin.start()
    code, out, _ = run(standin, capsys, "offload", SESSION, str(tmp_path / "out"), "--json")
    assert code == 0, out
    by_node = {f["node"]: f for f in out["files"]}
    assert by_node["cam-l"]["source"] == "archive" and not by_node["cam-l"]["confirmed"]
    assert by_node["cam-r"]["source"] == "node" and by_node["cam-r"]["confirmed"]
    for rec in (archived, from_node):
        wire = rec["wire"]
        folder = tmp_path / "out" / SESSION
        video = folder / wire["file_name"]
        assert hashlib.sha256(video.read_bytes()).hexdigest() == wire["sha256"]
        manifest = json.loads((folder / f"{SESSION}_{wire['manifest']['cam_id']}.json").read_text())
        assert manifest["sha256"] == wire["sha256"]
        assert (folder / wire["manifest"]["lockview_file"]).read_bytes().startswith(b"\xff\xd8")
        assert not list(folder.glob(".*.part"))
    confirms = standin.requests("/confirm")
    assert [c["path"].split("/")[4] for c in confirms] == ["cam-r"]
    expected_place = f"laptop:{socket.gethostname()}:{tmp_path / 'out' / SESSION / from_node['wire']['file_name']}"
    assert confirms[0]["body"]["copied_to"] == expected_place
    assert confirms[0]["body"]["sha256"] == from_node["wire"]["sha256"]
    assert out["totals"] | {"seconds": 0} == {
        "files": 2,
        "verified": 2,
        "confirmed": 1,
        "failed": 0,
        "corrupt": 0,
        "bytes": 2 * SIZE,
        "fetched_bytes": 2 * SIZE,
        "seconds": 0,
    }
    for f in out["files"]:
        for key in ("node", "session", "name", "bytes", "sha256", "source", "verified", "error"):
            assert key in f


def test_download_never_confirms(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.add("cam-l")
    standin.add("cam-r")
    standin.start()
    code, out, _ = run(standin, capsys, "download", SESSION, str(tmp_path / "out"), "--json")
    assert code == 0, out
    assert all(f["verified"] and f["source"] == "node" for f in out["files"])
    assert not any(f["confirmed"] for f in out["files"])
    assert standin.requests("/confirm") == []


def test_a_truncated_part_is_hashed_and_continued_with_a_range(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = standin.add("cam-c")
    standin.start()
    folder = tmp_path / "out" / SESSION
    folder.mkdir(parents=True)
    kept = 1_000_003
    (folder / f".{rec['wire']['file_name']}.part").write_bytes(rec["data"][:kept])
    code, out, _ = run(standin, capsys, "offload", SESSION, str(tmp_path / "out"), "--json")
    assert code == 0, out
    [f] = out["files"]
    assert f["resumed_from"] == kept and f["fetched_bytes"] == SIZE - kept and f["confirmed"]
    [get] = standin.requests("/recordings/S1_CAM_C_2026", "GET")
    assert get["range"] == f"bytes={kept}-"
    assert (folder / rec["wire"]["file_name"]).read_bytes() == rec["data"]


def test_a_server_that_ignores_range_restarts_the_copy_cleanly(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = standin.add("cam-c", ignore_range=True)
    standin.start()
    folder = tmp_path / "out" / SESSION
    folder.mkdir(parents=True)
    (folder / f".{rec['wire']['file_name']}.part").write_bytes(rec["data"][:500_000])
    code, out, _ = run(standin, capsys, "offload", SESSION, str(tmp_path / "out"), "--json")
    assert code == 0, out
    [f] = out["files"]
    assert f["restarted"] and f["fetched_bytes"] == SIZE and f["verified"]
    assert (folder / rec["wire"]["file_name"]).read_bytes() == rec["data"]


def test_a_dropped_connection_is_retried_from_the_byte_reached(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = standin.add("cam-c", drop_after=1_500_000)
    standin.start()
    code, out, _ = run(standin, capsys, "offload", SESSION, str(tmp_path / "out"), "--json")
    assert code == 0, out
    [f] = out["files"]
    assert f["attempts"] == 2 and f["verified"] and f["confirmed"]
    first, second = standin.requests("/recordings/S1_CAM_C_2026", "GET")
    assert first["range"] is None
    resumed_at = int(second["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 1_500_000
    assert f["fetched_bytes"] == SIZE  # nothing fetched twice
    video = tmp_path / "out" / SESSION / rec["wire"]["file_name"]
    assert video.read_bytes() == rec["data"]


def test_a_corrupt_source_is_kept_aside_nothing_confirmed_and_exit_1(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = standin.add("cam-l", corrupt=True)
    good = standin.add("cam-r")
    standin.start()
    code, out, _ = run(standin, capsys, "offload", SESSION, str(tmp_path / "out"), "--json")
    assert code == 1
    by_node = {f["node"]: f for f in out["files"]}
    assert by_node["cam-l"]["corrupt"] and not by_node["cam-l"]["verified"]
    assert not by_node["cam-l"]["confirmed"] and "checksum mismatch" in by_node["cam-l"]["error"]
    assert by_node["cam-r"]["confirmed"]
    folder = tmp_path / "out" / SESSION
    assert not (folder / bad["wire"]["file_name"]).exists()
    kept = folder / f"{bad['wire']['file_name']}.corrupt"
    assert kept.read_bytes() == Path(bad["node_path"]).read_bytes()
    assert [c["path"].split("/")[4] for c in standin.requests("/confirm")] == ["cam-r"]
    assert (folder / good["wire"]["file_name"]).exists()
    assert out["totals"]["corrupt"] == 1 and not out["ok"]


def test_a_verified_copy_already_there_is_not_fetched_again(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.add("cam-c")
    standin.start()
    dest = str(tmp_path / "out")
    assert run(standin, capsys, "download", SESSION, dest, "--json")[0] == 0
    code, out, _ = run(standin, capsys, "download", SESSION, dest, "--json")
    assert code == 0
    [f] = out["files"]
    assert f["already_present"] and f["verified"] and f["fetched_bytes"] == 0
    assert len(standin.requests("/recordings/S1_CAM_C_2026", "GET")) == 1


def test_plain_lines_when_stdout_is_not_a_terminal(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.add("cam-c")
    standin.start()
    code, out, _ = run(standin, capsys, "offload", SESSION, str(tmp_path / "out"))
    assert code == 0
    assert "verified from node cam-c" in out and "confirmed to cam-c" in out
    assert "1 of 1 files verified" in out and "\x1b[" not in out


def test_from_archive_refuses_a_file_the_archive_does_not_have(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.add("cam-c")
    standin.start()
    dest = str(tmp_path / "out")
    code, out, _ = run(standin, capsys, "offload", SESSION, dest, "--from", "archive", "--json")
    assert code == 1
    assert "camfleet archive S1" in out["files"][0]["error"]
    assert standin.requests("/recordings/S1_CAM_C_2026", "GET") == []


def test_a_wrong_token_an_unknown_session_and_no_coordinator_exit_2(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.add("cam-c")
    standin.start()
    dest = str(tmp_path / "out")
    code, _, err = run(standin, capsys, "offload", SESSION, dest, token="wrong")
    assert code == 2 and "refused the operator token" in err and "CAMFLEET_OPERATOR_TOKEN" in err
    code, _, err = run(standin, capsys, "download", "NOPE", dest)
    assert code == 2 and "no session 'NOPE'" in err
    code, out, err = run(standin, capsys, "offload", "NOPE", dest, "--json")
    assert code == 2 and "no session" in out["error"]
    code = cli.main(["--url", f"http://127.0.0.1:{free_port()}", "--token", "x", "offload", dest])
    assert code == 2 and "cannot reach the coordinator" in capsys.readouterr().err


def test_copy_place_is_printable_ascii_within_the_confirm_limit(tmp_path: Path) -> None:
    long = tmp_path / ("é" * 300) / "f.mp4"
    place = copy_place(long)
    assert place.startswith(f"laptop:{socket.gethostname()}:")
    assert len(place) <= MAX_PLACE and all(" " <= c <= "~" for c in place)
    assert place.endswith("f.mp4")


def test_ctrl_c_leaves_a_part_that_the_next_run_resumes(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = standin.add("cam-c", chunk_delay_s=0.05)  # about 3 s for the whole file
    standin.start()
    dest = tmp_path / "out"
    part = dest / SESSION / f".{rec['wire']['file_name']}.part"
    argv = [sys.executable, "-m", "app.cli", "--url", standin.url, f"--token={standin.token}"]
    # A Ctrl-C at a terminal: a SIGINT the child did not inherit as ignored (a test run
    # started in the background of a shell has it ignored, and so would every child).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [*argv, "offload", SESSION, str(dest)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size > 0):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert b"the same command resumes them" in err
    kept = part.stat().st_size
    assert 0 < kept < SIZE and part.read_bytes() == rec["data"][:kept]
    assert standin.requests("/confirm") == []
    code, out, _ = run(standin, capsys, "offload", SESSION, str(dest), "--json")
    assert code == 0, out
    [f] = out["files"]
    assert f["resumed_from"] == kept and f["confirmed"]
    assert standin.requests("/recordings/S1_CAM_C_2026", "GET")[-1]["range"] == f"bytes={kept}-"


def test_a_part_whose_kept_bytes_differ_is_set_aside_and_fetched_whole(
    standin: Standin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = standin.add("cam-c")
    standin.start()
    folder = tmp_path / "out" / SESSION
    folder.mkdir(parents=True)
    stale = b"x" * 700_000  # not a prefix of the recording
    (folder / f".{rec['wire']['file_name']}.part").write_bytes(stale)
    code, out, _ = run(standin, capsys, "offload", SESSION, str(tmp_path / "out"), "--json")
    assert code == 0, out
    [f] = out["files"]
    assert f["verified"] and f["confirmed"] and f["restarted"] and not f["corrupt"]
    assert "fetched again from byte 0" in " ".join(f["warnings"])
    assert (folder / rec["wire"]["file_name"]).read_bytes() == rec["data"]
    assert (folder / f"{rec['wire']['file_name']}.corrupt").read_bytes().startswith(stale)
    ranges = [r["range"] for r in standin.requests("/recordings/S1_CAM_C_2026", "GET")]
    assert ranges == ["bytes=700000-", None]
