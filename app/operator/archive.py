"""``camfleet archive``: the coordinator offloads into its own archive; ``--wait`` follows it."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from app.operator.client import OperatorClient, OperatorError
from app.operator.progress import Display, human_bytes, make_display

POLL_S = 0.5
# app.offload.models: FileState and JobState, as strings (a newer coordinator may add some).
FILE_FAILED = frozenset({"failed", "corrupt"})
FILE_DONE = frozenset({"confirmed", "archived", "skipped", *FILE_FAILED})
JOB_RUNNING = frozenset({"running"})
JOB_DONE = "done"  # every file confirmed, or skipped because it already was


def job_id(job: dict[str, Any]) -> str:
    return str(job.get("job_id", job.get("id", "")))


def file_key(f: dict[str, Any]) -> str:
    return f"{f.get('node_id')}/{f.get('file_name')}"


def file_total(f: dict[str, Any]) -> int:
    return int(f.get("size_bytes") or f.get("bytes_total") or 0)


def failed_files(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Files that failed, are corrupt, or stopped short of a confirm with a reason."""
    return [
        f
        for f in job.get("files", [])
        if f.get("state") in FILE_FAILED or (f.get("state") != "confirmed" and f.get("error"))
    ]


def job_ok(job: dict[str, Any]) -> bool:
    return str(job.get("state")) == JOB_DONE and not failed_files(job)


class Follower:
    """Turns successive job snapshots into bars (or lines)."""

    def __init__(self, display: Display) -> None:
        self.display = display
        self.seen: set[str] = set()
        self.ended: set[str] = set()

    def show(self, job: dict[str, Any]) -> None:
        for f in job.get("files", []):
            key = file_key(f)
            if key not in self.seen:
                self.seen.add(key)
                self.display.add(key, f"{f.get('node_id')}: {f.get('file_name')}", file_total(f))
            self.display.update(key, int(f.get("bytes_done") or 0))
            state = str(f.get("state"))
            if state in FILE_DONE and key not in self.ended:
                self.ended.add(key)
                ok = state not in FILE_FAILED and not (state != "confirmed" and f.get("error"))
                error = f": {f['error']}" if f.get("error") else ""
                self.display.finish(key, f"{f.get('file_name')}: {state}{error}", ok)


def run_archive(
    url: str,
    token: str | None,
    session_id: str | None,
    node_ids: list[str] | None,
    *,
    wait: bool = False,
    json_output: bool = False,
) -> int:
    """Start an offload job; with ``wait``, follow it: 0 all archived, 1 some failed, 2 usage."""
    body: dict[str, Any] = {}
    if session_id:
        body["session_id"] = session_id
    if node_ids:
        body["node_ids"] = node_ids
    display = make_display(json_output or not wait)
    try:
        with OperatorClient(url, token) as client:
            if session_id:
                client.check_session(session_id)
            job = client.expect_json(
                client.request("POST", "/api/v1/offload", json=body), "starting the offload"
            )
            jid = job_id(job)
            if wait:
                follower = Follower(display)
                try:
                    while True:
                        follower.show(job)
                        if str(job.get("state")) not in JOB_RUNNING:
                            break
                        time.sleep(POLL_S)
                        job = client.expect_json(
                            client.request("GET", f"/api/v1/offload/{jid}"),
                            f"following offload job {jid}",
                        )
                finally:
                    display.close()
    except KeyboardInterrupt:
        display.close()
        print(
            "camfleet archive: stopped following; the job goes on at the coordinator "
            "(GET /api/v1/offload lists the jobs)",
            file=sys.stderr,
        )
        return 130
    except OperatorError as err:
        display.close()
        print(f"camfleet archive: {err}", file=sys.stderr)
        if json_output:
            print(json.dumps({"command": "archive", "ok": False, "error": str(err)}))
        return 2
    failed = failed_files(job) if wait else []
    ok = job_ok(job) if wait else True
    if json_output:
        print(json.dumps({"command": "archive", "ok": ok, "job": job}, indent=2))
    elif wait:
        files = job.get("files", [])
        done = int(job.get("bytes_done") or 0)
        print(
            f"offload job {jid} {job.get('state')}: {len(files) - len(failed)} of {len(files)} "
            f"files archived and confirmed ({human_bytes(done)})"
            + (f", {len(failed)} FAILED" if failed else "")
        )
    else:
        files = job.get("files", [])
        print(
            f"offload job {jid} started ({len(files)} files); follow it with "
            f"'camfleet archive --wait' or GET /api/v1/offload/{jid}"
        )
    return 0 if ok else 1
