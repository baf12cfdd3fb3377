"""``camfleet offload`` and ``camfleet download``: a session's footage onto this machine.

Each recording goes to ``DIR/{SESSION_ID}/`` with its manifest JSON and Lock View still
beside it, from the coordinator's archive when it holds a verified copy, otherwise straight
from the node through the coordinator's relay. ``offload`` then confirms to the node the
files it took from the node and verified (never those from the archive: the coordinator
confirms its own); ``download`` never confirms.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.fleet.wire import manifest_name
from app.operator.client import (
    OperatorClient,
    OperatorError,
    Recording,
    archive_file_path,
    archive_lockview_path,
    confirm_path,
    error_detail,
    node_file_path,
)
from app.operator.progress import Display, Rate, human_bytes, make_display
from app.operator.transfer import Pulled, pull_file
from common.fsutil import atomic_write_bytes

SOURCES = ("auto", "archive", "nodes")
MAX_PLACE = 512  # ConfirmRequest.copied_to: printable ASCII, at most 512 characters


class Interrupted(Exception):
    """Ctrl-C: the transfers in flight stop where they are."""


@dataclass
class FileReport:
    """One recording's line in the output (and in ``--json``)."""

    node: str
    session: str
    name: str
    bytes: int
    sha256: str
    source: str  # "archive" or "node"
    path: str
    verified: bool = False
    confirmed: bool = False
    corrupt: bool = False
    error: str | None = None
    already_present: bool = False
    fetched_bytes: int = 0
    resumed_from: int = 0
    restarted: bool = False
    attempts: int = 0
    corrupt_path: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verified and self.error is None


def choose_source(rec: Recording, wanted: str) -> tuple[str, str | None]:
    """``(source, problem)``: where this recording is taken from, or why it cannot be."""
    if wanted == "nodes":
        return "node", None
    if wanted == "archive":
        if rec.archived:
            return "archive", None
        return "archive", (
            f"not in the coordinator's archive (archive state {rec.archive_state}); "
            f"run 'camfleet archive {rec.session_id}' first, or use --from nodes"
        )
    return ("archive", None) if rec.archived else ("node", None)


def copy_place(path: Path) -> str:
    """``laptop:{hostname}:{absolute path}`` as a confirm's ``copied_to`` accepts it."""
    place = f"laptop:{socket.gethostname()}:{path.resolve()}"
    place = place.encode("ascii", "backslashreplace").decode("ascii")
    place = "".join(c if " " <= c <= "~" else "?" for c in place)
    if len(place) > MAX_PLACE:
        place = place[:200] + "..." + place[-(MAX_PLACE - 203) :]
    return place


def write_manifest_beside(folder: Path, rec: Recording) -> None:
    """The manifest as the coordinator has it, written atomically when it differs."""
    name = manifest_name(rec.session_id, rec.cam_id)
    data = json.dumps(rec.manifest, indent=2).encode() + b"\n"
    path = folder / name
    if path.exists() and path.read_bytes() == data:
        return
    atomic_write_bytes(path, data)


def fetch_lockview(client: OperatorClient, rec: Recording, source: str, folder: Path) -> str | None:
    """The Lock View still beside the video; a warning when it cannot be had."""
    name = rec.lockview_file
    if name is None or (folder / name).exists():
        return None
    path = archive_lockview_path(rec) if source == "archive" else node_file_path(rec.node_id, name)
    try:
        resp = client.http.get(path)
    except httpx.HTTPError as err:
        return f"the Lock View still {name} could not be fetched: {err}"
    if not resp.is_success:
        return f"the Lock View still {name} could not be fetched ({resp.status_code}: {error_detail(resp)})"
    atomic_write_bytes(folder / name, resp.content)
    return None


def confirm(client: OperatorClient, rec: Recording, final: Path) -> str | None:
    """Tell the node its file has a verified copy here; the problem, if it did not take it."""
    body = {
        "sha256": rec.sha256,
        "copied_to": copy_place(final),
        "copied_at_ns": time.time_ns(),
    }
    try:
        resp = client.http.post(confirm_path(rec.node_id, rec.file_name), json=body)
    except httpx.HTTPError as err:
        return f"verified, but the confirm to {rec.node_id} did not get through: {err}"
    if not resp.is_success:
        return (
            f"verified, but {rec.node_id} did not confirm ({resp.status_code}: "
            f"{error_detail(resp)})"
        )
    try:
        offloaded = bool(resp.json().get("offloaded"))
    except (ValueError, AttributeError):
        offloaded = False
    return None if offloaded else f"verified, but {rec.node_id} did not mark it offloaded"


def _describe(rep: FileReport, pulled: Pulled, rate: Rate) -> str:
    where = "the archive" if rep.source == "archive" else f"node {rep.node}"
    if not rep.ok and not rep.verified:
        return f"FAILED {rep.name} from {where}: {rep.error}"
    if pulled.already_present:
        head = f"{rep.name}: already here and verified"
    else:
        resumed = f", resumed at {human_bytes(rep.resumed_from)}" if rep.resumed_from else ""
        head = f"{rep.name}: verified from {where} ({rate.describe(rep.fetched_bytes)}{resumed})"
    if rep.confirmed:
        head += f"; confirmed to {rep.node}"
    if rep.error:
        head = f"FAILED {head}; {rep.error}"
    return head


@dataclass
class PullJob:
    """Everything one ``offload``/``download`` run needs."""

    client: OperatorClient
    root: Path
    source: str
    confirm: bool
    display: Display
    retries: int = 4
    cancel: threading.Event = field(default_factory=threading.Event)

    def one(self, rec: Recording) -> FileReport:
        source, problem = choose_source(rec, self.source)
        folder = self.root / rec.session_id
        final = folder / rec.file_name
        rep = FileReport(
            node=rec.node_id,
            session=rec.session_id,
            name=rec.file_name,
            bytes=rec.size_bytes,
            sha256=rec.sha256,
            source=source,
            path=str(final),
        )
        if problem:
            rep.error = problem
            self.display.finish(rep.path, f"FAILED {rec.file_name}: {problem}", False)
            return rep
        url = (
            archive_file_path(rec)
            if source == "archive"
            else node_file_path(rec.node_id, rec.file_name)
        )
        where = "archive" if source == "archive" else rec.node_id
        self.display.add(rep.path, f"{where}: {rec.file_name}", rec.size_bytes)
        rate = Rate()
        try:
            pulled = pull_file(
                self.client.http,
                url,
                final,
                rec.sha256,
                rec.size_bytes,
                self.progress(rep.path),
                retries=self.retries,
            )
        except OSError as err:
            rep.error = f"cannot write {final}: {err}"
            self.display.finish(rep.path, f"FAILED {rec.file_name}: {rep.error}", False)
            return rep
        rep.verified, rep.error = pulled.verified, pulled.error
        rep.already_present, rep.fetched_bytes = pulled.already_present, pulled.fetched_bytes
        rep.resumed_from, rep.restarted = pulled.resumed_from, pulled.restarted
        rep.attempts, rep.warnings = pulled.attempts, pulled.warnings
        rep.corrupt = pulled.corrupt_path is not None
        rep.corrupt_path = str(pulled.corrupt_path) if pulled.corrupt_path else None
        if pulled.verified:
            write_manifest_beside(folder, rec)
            warning = fetch_lockview(self.client, rec, source, folder)
            if warning:
                rep.warnings.append(warning)
            if self.confirm and source == "node":
                rep.error = confirm(self.client, rec, final)
                rep.confirmed = rep.error is None
        self.display.finish(rep.path, _describe(rep, pulled, rate), rep.ok)
        return rep

    def progress(self, key: str) -> Callable[[int], None]:
        def update(done_bytes: int) -> None:
            if self.cancel.is_set():
                raise Interrupted  # unwinds the transfer; its .part stays for the next run
            self.display.update(key, done_bytes)

        return update

    def run(self, recs: list[Recording], jobs: int) -> list[FileReport]:
        """Every recording, at most one at a time per node and ``jobs`` in all."""
        by_node: dict[str, list[Recording]] = {}
        for rec in recs:
            by_node.setdefault(rec.node_id, []).append(rec)
        reports: dict[tuple[str, str], FileReport] = {}

        def node_queue(items: list[Recording]) -> None:
            for rec in items:
                reports[(rec.node_id, rec.file_name)] = self.one(rec)

        pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(by_node) or 1)))
        try:
            for future in [pool.submit(node_queue, items) for items in by_node.values()]:
                future.result()
        except KeyboardInterrupt:
            self.cancel.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return [reports[(r.node_id, r.file_name)] for r in recs]


def select(client: OperatorClient, session_id: str | None) -> list[Recording]:
    """One session's recordings, or every recording not yet offloaded anywhere."""
    if session_id:
        recs = client.recordings(session_id)
        if not recs:
            client.check_session(session_id)  # an unknown session is an error, not "nothing"
        return recs
    return [
        r for r in client.recordings(None) if not r.offloaded and r.archive_state != "confirmed"
    ]


def totals(reports: list[FileReport], seconds: float) -> dict[str, Any]:
    return {
        "files": len(reports),
        "verified": sum(r.verified for r in reports),
        "confirmed": sum(r.confirmed for r in reports),
        "failed": sum(not r.ok for r in reports),
        "corrupt": sum(r.corrupt for r in reports),
        "bytes": sum(r.bytes for r in reports),
        "fetched_bytes": sum(r.fetched_bytes for r in reports),
        "seconds": round(seconds, 3),
    }


def run_pull(
    url: str,
    token: str | None,
    session_id: str | None,
    directory: str,
    *,
    command: str,
    source: str = "auto",
    jobs: int = 2,
    json_output: bool = False,
) -> int:
    """Pull, verify and (for ``offload``) confirm; exit 0 all verified, 1 some not, 2 usage."""
    display = make_display(json_output)
    t0 = time.monotonic()
    root = Path(directory).expanduser().absolute()
    try:
        with OperatorClient(url, token) as client:
            recs = select(client, session_id)
            if not recs:
                what = (
                    f"session {session_id} has no recordings yet"
                    if session_id
                    else ("every recording the coordinator knows is offloaded already")
                )
                display.note(f"nothing to {command}: {what}")
            root.mkdir(parents=True, exist_ok=True)
            job = PullJob(client, root, source, command == "offload", display)
            try:
                reports = job.run(recs, jobs)
            finally:
                display.close()
    except OperatorError as err:
        display.close()
        print(f"camfleet {command}: {err}", file=sys.stderr)
        if json_output:
            print(json.dumps({"command": command, "ok": False, "error": str(err)}))
        return 2
    except KeyboardInterrupt:
        display.close()
        print(
            f"camfleet {command}: interrupted; partial copies stay as .{{file}}.part in "
            f"{root} and the same command resumes them",
            file=sys.stderr,
        )
        return 130
    except OSError as err:
        display.close()
        print(f"camfleet {command}: cannot write into {root}: {err}", file=sys.stderr)
        if json_output:
            print(json.dumps({"command": command, "ok": False, "error": str(err)}))
        return 2
    summary = totals(reports, time.monotonic() - t0)
    ok = summary["failed"] == 0
    if json_output:
        out = {
            "command": command,
            "coordinator": url,
            "dir": str(root),
            "session": session_id,
            "ok": ok,
            "files": [vars(r) | {"ok": r.ok} for r in reports],
            "totals": summary,
        }
        print(json.dumps(out, indent=2))
    elif reports:
        confirmed = (
            f", {summary['confirmed']} confirmed to their nodes" if command == "offload" else ""
        )
        failed = f", {summary['failed']} FAILED" if summary["failed"] else ""
        print(
            f"{summary['verified']} of {summary['files']} files verified in {root}"
            f"{confirmed}{failed} ({human_bytes(summary['fetched_bytes'])} fetched in "
            f"{summary['seconds']:.1f} s)"
        )
    return 0 if ok else 1
