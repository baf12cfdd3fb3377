"""`camfleet config get|set`, `camfleet fleet shutdown NODE` and `camfleet logs`.

Routes: ``GET/PUT /api/v1/nodes/{id}/config``, ``POST /api/v1/nodes/{id}/shutdown``,
``GET /api/v1/logs?lines=&level=``. A coordinator older than these answers FastAPI's own
404 ("Not Found"); that is told apart from "no such node" and said as such.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import yaml
from rich.text import Text

from app.operator.client import OperatorClient, OperatorError, error_detail
from app.operator.fleetcmd import NODE_FAILED, OK, busy, out, print_json

# FastAPI's answer for a path no route matches.
NO_ROUTE_DETAIL = "Not Found"
# Where a config answer keeps the settings document, if it wraps it.
DOC_KEYS = ("settings", "config")


def answer(client: OperatorClient, resp: httpx.Response, route: str, node_id: str | None) -> Any:
    """The JSON of a success; OperatorError for a missing route, node, or a refusal."""
    # 405: the path is there, but not for this method (a coordinator half-way there)
    if resp.status_code == 405 or resp.status_code == 404:
        if resp.status_code == 405 or error_detail(resp) == NO_ROUTE_DETAIL:
            raise OperatorError(
                f"the coordinator at {client.url} has no {route} yet; "
                "update the coordinator to a camfleet that has it"
            )
        if node_id is not None:
            raise OperatorError(
                f"the coordinator at {client.url} has no node {node_id!r} "
                "(camfleet fleet status lists them)"
            )
    if resp.status_code == 422:
        raise OperatorError(f"refused: {error_detail(resp)}")
    return resp


def settings_doc(body: Any) -> Any:
    """The settings document inside a config answer (or the answer itself)."""
    if isinstance(body, dict):
        for key in DOC_KEYS:
            if isinstance(body.get(key), dict):
                return body[key]
    return body


def get_path(doc: Any, key: str) -> Any:
    node = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise OperatorError(f"the node's settings have no {key!r} (config get NODE lists them)")
        node = node[part]
    return node


def patch_for(key: str, value: Any) -> dict[str, Any]:
    """``{"camera": {"fps": 25}}`` for ``camera.fps`` = 25: the PUT merges it."""
    if not key or any(not part for part in key.split(".")):
        raise OperatorError(f"{key!r} is not a setting's name (like camera.fps)")
    patch: dict[str, Any] = {}
    node = patch
    *parents, last = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return patch


def parse_value(text: str) -> Any:
    """A value as YAML reads it: 25 is a number, true a boolean, anything else text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def show(value: Any) -> None:
    if isinstance(value, dict | list):
        sys.stdout.write(yaml.safe_dump(value, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(f"{value}\n")


def config_get(client: OperatorClient, json_output: bool, node_id: str, key: str | None) -> int:
    route = "GET /api/v1/nodes/{id}/config"
    resp = answer(client, client.request("GET", f"/api/v1/nodes/{node_id}/config"), route, node_id)
    body = client.expect_json(resp, f"reading {node_id}'s settings")
    value = get_path(settings_doc(body), key) if key else body
    if json_output:
        print_json(value)
    else:
        show(settings_doc(value) if not key else value)
    return OK


def config_set(
    client: OperatorClient, json_output: bool, node_id: str, key: str, raw_value: str
) -> int:
    """PUT one key; 1 when the node refuses it now (409: it would change a recording)."""
    route = "PUT /api/v1/nodes/{id}/config"
    resp = client.request(
        "PUT",
        f"/api/v1/nodes/{node_id}/config",
        json={"settings": patch_for(key, parse_value(raw_value))},
    )
    resp = answer(client, resp, route, node_id)
    if resp.status_code in (409, 502, 503, 504):
        sys.stderr.write(f"{node_id} refused {key}: {error_detail(resp)}\n")
        return NODE_FAILED
    body = client.expect_json(resp, f"setting {key} on {node_id}")
    if json_output:
        print_json(body)
        return OK
    console = out()
    console.print(f"{node_id}: {key} = {raw_value}")
    if isinstance(body, dict):
        restart = body.get("restart_required")
        if restart:
            keys = ", ".join(restart) if isinstance(restart, list) else str(restart)
            console.print(f"[yellow]restart the agent for: {keys}[/]")
        if isinstance(body.get("applied"), list) and body["applied"]:
            console.print(f"in effect now: {', '.join(body['applied'])}")
        if body.get("message"):
            console.print(str(body["message"]))
    return OK


def shutdown(client: OperatorClient, json_output: bool, node_id: str, yes: bool) -> int:
    """Finish the node's recording and power it off; asks first unless --yes."""
    if not yes:
        if not sys.stdin.isatty():
            raise OperatorError(f"add --yes to shut {node_id} down without a question")
        reply = input(f"shut {node_id} down (stops its recording, powers it off)? [y/N] ")
        if reply.strip().lower() not in ("y", "yes"):
            sys.stderr.write("not shut down\n")
            return OK
    route = "POST /api/v1/nodes/{id}/shutdown"
    with busy(f"shutting {node_id} down", not json_output):
        resp = client.request("POST", f"/api/v1/nodes/{node_id}/shutdown")
    resp = answer(client, resp, route, node_id)
    if not resp.is_success and resp.status_code >= 409:
        sys.stderr.write(f"{node_id} did not shut down: {error_detail(resp)}\n")
        return NODE_FAILED
    body = client.expect_json(resp, f"shutting {node_id} down")
    if json_output:
        print_json(body)
    else:
        out().print(f"{node_id} is shutting down")
    return OK


def logs(client: OperatorClient, json_output: bool, lines: int, level: str) -> int:
    """The coordinator's recent log records, oldest first."""
    params = {"lines": lines, "level": level.upper()}
    resp = answer(
        client, client.request("GET", "/api/v1/logs", params=params), "GET /api/v1/logs", None
    )
    body = client.expect_json(resp, "reading the logs")
    if json_output:
        print_json(body)
        return OK
    console = out()
    entries = body.get("entries") if isinstance(body, dict) else None
    for e in entries or []:
        style = {"ERROR": "red", "CRITICAL": "bold red", "WARNING": "yellow"}.get(
            e.get("level"), ""
        )
        line = f"{e.get('time', '')} {e.get('level', ''):<8} {e.get('logger', '')}: {e.get('message', '')}"
        console.print(Text(line, style=style), soft_wrap=True)
    return OK


def registry(client: OperatorClient, json_output: bool, cmd: str, node_id: str) -> int:
    """``approve`` or ``remove`` one node."""
    method, suffix = ("POST", "/approve") if cmd == "approve" else ("DELETE", "")
    resp = client.request(method, f"/api/v1/nodes/{node_id}{suffix}")
    if resp.status_code == 404:
        raise OperatorError(
            f"the coordinator at {client.url} has no node {node_id!r} "
            "(camfleet fleet status lists them)"
        )
    if resp.status_code == 204:
        body: Any = {"node_id": node_id, "removed": True}
    else:
        body = client.expect_json(resp, f"{cmd} {node_id}")
    if json_output:
        print_json(body)
    else:
        out().print(f"{node_id}: {'approved' if cmd == 'approve' else 'removed'}")
    return OK
