"""`camfleet config get|set`, `fleet shutdown` and `logs` against a stand-in coordinator (a
real uvicorn app on loopback serving those routes), and against one without them (404)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
import uvicorn
from fastapi import Body, FastAPI, HTTPException, Query, Request

from app import cli
from app.errors import CamfleetError
from bench.common import free_port
from common.http import install_error_handlers

TOKEN = "stand-in-operator-token"


class StandIn:
    """What the stand-in coordinator was sent, and the settings it holds."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {"camera": {"fps": 30, "width": 1920}, "cam_id": "CAM_C"}
        self.puts: list[dict[str, Any]] = []
        self.shutdowns: list[str] = []
        self.recording = False


def build_app(state: StandIn) -> FastAPI:
    app = FastAPI()

    def auth(request: Request) -> None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise HTTPException(401, "the token is not valid for this server")

    def node(node_id: str) -> None:
        if node_id != "cam-c":
            raise HTTPException(404, f"no node {node_id}")

    @app.get("/api/v1/nodes/{node_id}/config")
    async def get_config(node_id: str, request: Request) -> dict[str, Any]:
        auth(request)
        node(node_id)
        return {"node_id": node_id, "version": 3, "settings": state.settings}

    @app.put("/api/v1/nodes/{node_id}/config")
    async def put_config(
        node_id: str, request: Request, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        auth(request)
        node(node_id)
        # the coordinator's ConfigUpdate: {"settings": {...}, "if_version"?}
        if set(body) - {"settings", "if_version"} or not isinstance(body.get("settings"), dict):
            raise HTTPException(422, "body: expected {settings: {...}}")
        patch = body["settings"]
        state.puts.append(patch)
        fps = patch.get("camera", {}).get("fps")
        if fps is not None and not isinstance(fps, int):
            raise HTTPException(422, "camera.fps: Input should be a valid integer")
        if state.recording:
            raise HTTPException(409, "camera.fps would change the recording in progress")
        state.settings["camera"].update(patch.get("camera", {}))
        return {"version": 4, "restart_required": ["camera.width"], "settings": state.settings}

    @app.post("/api/v1/nodes/{node_id}/shutdown")
    async def shutdown(node_id: str, request: Request) -> dict[str, Any]:
        auth(request)
        node(node_id)
        state.shutdowns.append(node_id)
        return {"node_id": node_id, "shutting_down": True}

    @app.get("/api/v1/logs")
    async def logs(
        request: Request,
        lines: Annotated[int, Query()] = 200,
        level: Annotated[str, Query()] = "DEBUG",
    ) -> dict[str, Any]:
        auth(request)
        entries = [
            {"time": "2026-01-01T00:00:00.000Z", "level": "INFO", "logger": "app", "message": "up"},
            {
                "time": "2026-01-01T00:00:01.000Z",
                "level": "WARNING",
                "logger": "app.fleet",
                "message": "cam-r [late] by 3 ms",
            },
        ]
        order = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        keep = [e for e in entries if order.index(e["level"]) >= order.index(level)]
        return {"mode": "production", "entries": keep[-lines:]}

    return app


def serve(app: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[str, StandIn]]:
    state = StandIn()
    for url in serve(build_app(state)):
        yield url, state


@pytest.fixture(scope="module")
def bare_url() -> Iterator[str]:
    """A coordinator older than these routes: its error handlers, FastAPI's 404 for each."""
    app = FastAPI()
    install_error_handlers(app, CamfleetError)
    yield from serve(app)


@pytest.fixture(scope="module")
def half_url() -> Iterator[str]:
    """A coordinator with GET of a node's settings but no PUT yet."""
    app = FastAPI()
    install_error_handlers(app, CamfleetError)

    @app.get("/api/v1/nodes/{node_id}/config")
    async def get_config(node_id: str) -> dict[str, Any]:
        return {"settings": {}}

    yield from serve(app)


def run(url: str, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["--url", url, "--token", TOKEN, *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_config_get_shows_all_or_one_key(standin, capsys) -> None:
    url, _ = standin
    code, out, _ = run(url, "config", "get", "cam-c", capsys=capsys)
    assert code == 0 and "fps: 30" in out and "camera:" in out
    code, out, _ = run(url, "config", "get", "cam-c", "camera.fps", capsys=capsys)
    assert (code, out) == (0, "30\n")
    code, out, _ = run(url, "config", "get", "cam-c", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["version"] == 3
    code, _, err = run(url, "config", "get", "cam-c", "camera.nope", capsys=capsys)
    assert code == 2 and "camera.nope" in err and err.count("\n") == 1


def test_config_set_puts_one_nested_key_read_as_yaml(standin, capsys) -> None:
    url, state = standin
    code, out, _ = run(url, "config", "set", "cam-c", "camera.fps", "25", capsys=capsys)
    assert code == 0, out
    assert state.puts[-1] == {"camera": {"fps": 25}}
    assert "camera.fps = 25" in out and "restart" in out
    code, out, _ = run(url, "config", "set", "cam-c", "camera.fps", "24", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["settings"]["camera"]["fps"] == 24


def test_config_set_a_bad_value_is_exit_2_with_the_coordinators_message(standin, capsys) -> None:
    url, _ = standin
    code, _, err = run(url, "config", "set", "cam-c", "camera.fps", "fast", capsys=capsys)
    assert code == 2 and "camera.fps: Input should be a valid integer" in err


def test_config_set_refused_while_recording_is_exit_1(standin, capsys) -> None:
    url, state = standin
    state.recording = True
    try:
        code, _, err = run(url, "config", "set", "cam-c", "camera.fps", "25", capsys=capsys)
    finally:
        state.recording = False
    assert code == 1 and "recording in progress" in err


def test_an_unknown_node_is_exit_2_and_names_it(standin, capsys) -> None:
    url, _ = standin
    code, _, err = run(url, "config", "get", "cam-x", capsys=capsys)
    assert code == 2 and "no node 'cam-x'" in err and "fleet status" in err


def test_shutdown_with_yes_posts_once(standin, capsys) -> None:
    url, state = standin
    code, out, _ = run(url, "fleet", "shutdown", "cam-c", "--yes", capsys=capsys)
    assert code == 0 and "shutting down" in out
    assert state.shutdowns == ["cam-c"]


def test_shutdown_without_yes_and_no_terminal_asks_for_yes(standin, capsys) -> None:
    url, state = standin
    before = list(state.shutdowns)
    code, _, err = run(url, "fleet", "shutdown", "cam-c", capsys=capsys)
    assert code == 2 and "--yes" in err
    assert state.shutdowns == before


def test_logs_prints_each_record_and_passes_level(standin, capsys) -> None:
    url, _ = standin
    code, out, _ = run(url, "logs", capsys=capsys)
    assert code == 0
    assert "INFO" in out and "cam-r [late] by 3 ms" in out  # brackets are text, not markup
    code, out, _ = run(url, "logs", "--level", "warning", "--json", capsys=capsys)
    assert [e["level"] for e in json.loads(out)["entries"]] == ["WARNING"]


@pytest.mark.parametrize(
    ("argv", "route"),
    [
        (("config", "get", "cam-c"), "GET /api/v1/nodes/{id}/config"),
        (("config", "set", "cam-c", "camera.fps", "25"), "PUT /api/v1/nodes/{id}/config"),
        (("fleet", "shutdown", "cam-c", "--yes"), "POST /api/v1/nodes/{id}/shutdown"),
        (("logs",), "GET /api/v1/logs"),
    ],
)
def test_a_coordinator_without_the_route_says_so(bare_url, argv, route, capsys) -> None:
    code, _, err = run(bare_url, *argv, capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and f"has no {route} yet" in err, err


def test_a_coordinator_with_get_but_no_put_says_so(half_url, capsys) -> None:
    code, _, err = run(half_url, "config", "set", "cam-c", "camera.fps", "25", capsys=capsys)
    assert code == 2
    assert "has no PUT /api/v1/nodes/{id}/config yet" in err, err
