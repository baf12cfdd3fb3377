"""``camfleet fleet update``: start the coordinator's fleet update and follow it to the end."""

from __future__ import annotations

import time
from typing import Any

from app.operator.client import OperatorClient
from app.operator.fleetcmd import NODE_FAILED, OK, busy, call, out, print_json
from app.operator.tables import table

POLL_S = 1.0
COLOURS = {"updated": "green", "up_to_date": "green", "skipped": "yellow", "failed": "red"}


def fleet_update(
    client: OperatorClient,
    json_output: bool,
    version: str | None,
    node_ids: list[str] | None,
    wait: bool = True,
    poll_s: float = POLL_S,
) -> int:
    """Update one node at a time; 1 when a node failed (the run stopped there) or was
    skipped because it records."""
    body: dict[str, Any] = {}
    if version:
        body["version"] = version
    if node_ids:
        body["node_ids"] = node_ids
    run = call(client, "POST", "/api/v1/fleet/update", "starting the fleet update", json=body)
    with busy("updating the fleet, one node at a time", wait and not json_output):
        while wait and run.get("state") == "running":
            time.sleep(poll_s)
            run = call(client, "GET", "/api/v1/fleet/update", "following the fleet update")
    if json_output:
        print_json(run)
    else:
        out().print(update_table(run))
    if run.get("state") == "running":
        return OK  # --no-wait: it goes on in the coordinator
    done = all(n.get("outcome") in ("updated", "up_to_date") for n in run.get("nodes") or [])
    return OK if done else NODE_FAILED


def update_table(run: dict[str, Any]) -> Any:
    """One row per node in the order they were (or will be) updated."""
    t = table(
        f"Fleet update {run.get('id')} to {run.get('target') or 'the newest release'}: "
        f"{run.get('state')}"
    )
    for column in ("node", "outcome", "from", "now", "detail"):
        t.add_column(column, overflow="fold")
    for n in run.get("nodes") or []:
        outcome = str(n.get("outcome"))
        colour = COLOURS.get(outcome)
        t.add_row(
            str(n.get("node_id")),
            f"[{colour}]{outcome}[/]" if colour else outcome,
            str(n.get("from_version") or "-"),
            str(n.get("version") or "-"),
            str(n.get("detail") or ""),
        )
    return t
