"""`camfleet fleet status|start|stop|selftest|lockview`, `sessions`, `session`, `recordings`.

Each command prints a table (or, with ``--json``, the coordinator's answer unchanged) and
returns its exit code: 0 ok, 1 some node failed, 2 usage or connection (OperatorError).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from app.operator.client import OperatorClient, OperatorError
from app.operator.fleetview import fleet_rows
from app.operator.tables import call_cell, recordings_view, session_detail, sessions_table, table

ACTIVE_STATES = ("starting", "recording", "stopping")
OK, NODE_FAILED = 0, 1


def out() -> Console:
    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(body: Any) -> None:
    sys.stdout.write(json.dumps(body, indent=2) + "\n")


def call(client: OperatorClient, method: str, path: str, what: str, **kwargs: Any) -> Any:
    """One API call whose answer must be a success with JSON."""
    return client.expect_json(client.request(method, path, **kwargs), what)


@contextmanager
def busy(label: str, show: bool) -> Iterator[None]:
    """A spinner with elapsed time on stderr (stdout stays the table or the JSON); only on
    a terminal, where it can be redrawn and then erased."""
    console = err_console()
    if not show or not console.is_terminal:
        yield
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        progress.add_task(label)
        yield


def fleet_status(client: OperatorClient, json_output: bool) -> int:
    """``GET /api/v1/nodes`` as a table; 1 when a node is offline."""
    body = call(client, "GET", "/api/v1/nodes", "listing the nodes")
    rows = fleet_rows(body)
    if json_output:
        print_json(body)
    else:
        from app.operator.tables import fleet_table

        console = out()
        if not rows:
            console.print("No node has joined yet.")
        else:
            console.print(
                fleet_table(
                    rows, body.get("online", 0), body.get("total", len(rows)), console.width
                )
            )
    return NODE_FAILED if any(r.state == "offline" for r in rows) else OK


def node_calls_table(title: str, nodes: list[dict[str, Any]], key: str | None) -> Any:
    t = table(title)
    t.add_column("node", overflow="fold")
    t.add_column("result", overflow="fold")
    t.add_column("ms", justify="right")
    for n in nodes:
        result = n.get(key) if key else n
        latency = (result or {}).get("latency_ms")
        t.add_row(
            f"{n.get('cam_id') or ''}\n{n.get('node_id')}".strip(),
            call_cell(result),
            "-" if latency is None else f"{latency:.0f}",
        )
    return t


def wait_for(start_at_ns: int, json_output: bool) -> None:
    """Until the scheduled start instant, with a countdown bar on a terminal."""
    left_s = (start_at_ns - time.time_ns()) / 1e9
    if left_s <= 0:
        return
    console = err_console()
    if json_output or not console.is_terminal:
        time.sleep(left_s)
        return
    with Progress(
        TextColumn("starting in"),
        BarColumn(),
        TextColumn("{task.fields[left]}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("lead", total=left_s, left=f"{left_s:.1f} s")
        while (now_left := (start_at_ns - time.time_ns()) / 1e9) > 0:
            bar.update(task, completed=left_s - now_left, left=f"{now_left:.1f} s")
            time.sleep(min(0.1, now_left))


@dataclass(frozen=True)
class StartOptions:
    """What ``fleet start`` was asked for."""

    name: str | None = None
    lead_ms: int | None = None
    duration_s: float | None = None
    node_ids: list[str] | None = None
    all_or_nothing: bool = False
    wait: bool = True

    def body(self) -> dict[str, Any]:
        """The ``POST /api/v1/sessions`` body: only what was given."""
        body: dict[str, Any] = {
            "name": self.name,
            "lead_ms": self.lead_ms,
            "node_ids": self.node_ids,
            "planned_duration_s": self.duration_s,
        }
        if self.all_or_nothing:
            body["mode"] = "all_or_nothing"
        return {k: v for k, v in body.items() if v is not None}


def fleet_start(client: OperatorClient, json_output: bool, opts: StartOptions) -> int:
    """``POST /api/v1/sessions``, then wait for the start instant; 1 when a node refused."""
    body = opts.body()
    session = call(client, "POST", "/api/v1/sessions", "starting a session", json=body)
    failed = [n for n in session["nodes"] if not (n.get("start") or {}).get("ok")]
    if opts.wait and session.get("state") == "recording":
        wait_for(int(session["start_at_ns"]), json_output)
    if json_output:
        print_json(session)
    else:
        console = out()
        console.print(
            node_calls_table(
                f"session {session['session_id']}: {session['state']}", session["nodes"], "start"
            )
        )
        if session["state"] == "recording":
            console.print(f"recording; stop it with: camfleet fleet stop {session['session_id']}")
        elif session.get("end_reason"):
            console.print(f"[red]{escape(str(session['end_reason']))}[/]")
    return NODE_FAILED if failed or session.get("state") != "recording" else OK


def active_session(client: OperatorClient) -> str:
    """The session that records now, or a clear error."""
    body = call(client, "GET", "/api/v1/sessions", "listing the sessions", params={"limit": 20})
    for s in body.get("sessions") or []:
        if s.get("state") in ACTIVE_STATES:
            return str(s["session_id"])
    raise OperatorError(
        f"no session is recording at {client.url}; give a SESSION_ID (camfleet sessions)"
    )


def session_or_404(client: OperatorClient, method: str, session_id: str, suffix: str) -> Any:
    resp = client.request(method, f"/api/v1/sessions/{session_id}{suffix}")
    if resp.status_code in (404, 422):
        raise OperatorError(
            f"the coordinator at {client.url} has no session {session_id!r} "
            "(camfleet sessions lists them)"
        )
    return client.expect_json(resp, f"session {session_id}")


def session_recordings(client: OperatorClient, session_id: str) -> list[dict[str, Any]]:
    body = call(
        client,
        "GET",
        "/api/v1/recordings",
        "listing the recordings",
        params={"session_id": session_id},
    )
    return list(body.get("recordings") or [])


def fleet_stop(client: OperatorClient, json_output: bool, session_id: str | None) -> int:
    """Stop the given (or the running) session; 1 when a node did not stop cleanly."""
    sid = session_id or active_session(client)
    with busy(f"stopping {sid} and collecting manifests", not json_output):
        session = session_or_404(client, "POST", sid, "/stop")
    if json_output:
        print_json(session)
    else:
        session_detail(out(), session, session_recordings(client, sid))
    # A node that never started has nothing to stop; one that started must have stopped.
    started_nodes = [n for n in session["nodes"] if (n.get("start") or {}).get("ok")]
    bad = [n for n in started_nodes if not (n.get("stop") or {}).get("ok")]
    return NODE_FAILED if bad else OK


def fleet_selftest(
    client: OperatorClient, json_output: bool, duration_s: float, node_ids: list[str] | None
) -> int:
    """``POST /api/v1/selftest`` with a spinner; 1 unless every node passed."""
    body: dict[str, Any] = {"duration_s": duration_s}
    if node_ids:
        body["node_ids"] = node_ids
    with busy(f"self-test: a {duration_s:g} s clip on every camera", not json_output):
        result = call(client, "POST", "/api/v1/selftest", "the self-test", json=body)
    if json_output:
        print_json(result)
        return OK if result.get("passed") else NODE_FAILED
    t = table("self-test " + ("passed" if result.get("passed") else "FAILED"))
    for name in ("node", "result", "profile", "enc fps", "dropped", "disk MB/s", "errors"):
        t.add_column(name, overflow="fold")
    for n in result.get("nodes") or []:
        r = n.get("result")
        if not r:
            t.add_row(str(n.get("node_id")), "[red]failed[/]", "", "", "", "", str(n.get("error")))
            continue
        t.add_row(
            f"{r.get('cam_id')}\n{n.get('node_id')}",
            "pass" if r.get("passed") else "[red]FAIL[/]",
            str(r.get("profile")),
            f"{r.get('encode_fps', 0):.1f}",
            str(r.get("dropped_frames")),
            f"{(r.get('disk_write_bytes_per_s') or 0) / 1e6:.0f}",
            "\n".join(r.get("errors") or []),
        )
    out().print(t)
    return OK if result.get("passed") else NODE_FAILED


def fleet_lockview(client: OperatorClient, json_output: bool, session_id: str | None) -> int:
    """Lock View on every node of the (running) session; 1 when a node failed."""
    sid = session_id or active_session(client)
    result = session_or_404(client, "POST", sid, "/lockview")
    if json_output:
        print_json(result)
    else:
        t = node_calls_table(f"Lock View, session {sid}", result.get("nodes") or [], None)
        out().print(t)
    return OK if all(n.get("ok") for n in result.get("nodes") or []) else NODE_FAILED


def fleet_mode(
    client: OperatorClient, json_output: bool, mode: str, node_ids: list[str] | None
) -> int:
    """Switch the coordinator and every node (or --node ones); 1 when a node failed."""
    body: dict[str, Any] = {"mode": mode}
    if node_ids:
        body["node_ids"] = node_ids
    result = call(client, "PUT", "/api/v1/fleet/mode", f"switching to {mode} mode", json=body)
    if json_output:
        print_json(result)
    else:
        own = (result.get("coordinator") or {}).get("mode")
        out().print(node_calls_table(f"{mode} mode (coordinator: {own})", result["nodes"], None))
    return OK if not result.get("failed") else NODE_FAILED


def sessions(client: OperatorClient, json_output: bool, limit: int) -> int:
    body = call(client, "GET", "/api/v1/sessions", "listing the sessions", params={"limit": limit})
    if json_output:
        print_json(body)
    else:
        out().print(sessions_table(list(body.get("sessions") or [])))
    return OK


def session(client: OperatorClient, json_output: bool, session_id: str) -> int:
    """One session in detail: skew and bound, each node, each manifest with its SHA-256."""
    body = session_or_404(client, "GET", session_id, "")
    if json_output:
        print_json(body)
    else:
        session_detail(out(), body, session_recordings(client, session_id))
    failed = [n for n in body.get("nodes") or [] if not (n.get("start") or {}).get("ok")]
    return NODE_FAILED if failed else OK


def recordings(client: OperatorClient, json_output: bool, session_id: str | None) -> int:
    params = {"session_id": session_id} if session_id else None
    body = call(client, "GET", "/api/v1/recordings", "listing the recordings", params=params)
    if json_output:
        print_json(body)
    else:
        console = out()
        console.print(recordings_view(list(body.get("recordings") or []), console.width))
    return OK
