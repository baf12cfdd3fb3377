"""Every answer documented: schemathesis against both apps, in-process over ASGI.

Each operation of the coordinator's and the agent's OpenAPI schema gets generated cases,
valid and invalid (positive and negative generation), and every response must be:
not a 5xx, a status code the operation documents, a content type it documents for that
status, a body that matches the documented schema, and headers that match theirs.

``make test`` runs a smoke (``SMOKE_CASES`` per API); ``make fuzz`` sets
``CAMFLEET_FUZZ_CASES=5000``. The cases are spread evenly over the operations and are
derandomized, so a failure reproduces on the next run.

The apps are the real ones (``create_app``) with their lifespans running: the
coordinator on a fresh SQLite file with no node joined, the agent with a synthetic
camera at 64x48 and no chronyc. Schemathesis' ASGI transport starts each app's lifespan
on its first request (on its own event-loop thread, which then serves every request);
the fixtures stop them with ``shutdown_lifespans`` before their folders are removed.
"""

from __future__ import annotations

import math
import os
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app as create_coordinator
from app.settings import CoordinatorSettings
from node_agent.dashcam.settings import DashcamSettings
from node_agent.main import create_app as create_agent
from node_agent.settings import AgentSettings, CameraSettings, GateSettings

SMOKE_CASES = 300
CASES_PER_API = int(os.environ.get("CAMFLEET_FUZZ_CASES", SMOKE_CASES))
NO_CHRONYC = "/nonexistent/camfleet-fuzz/chronyc"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Operations left out of the fuzz, with why. Everything else runs.
AGENT_EXCLUDED: dict[str, str] = {
    # Records, decodes and hashes a real clip of duration_s (1-120 s) per case: thousands
    # of cases would take hours. Its body bounds are in the schema and its error paths are
    # the recorder's (409 busy), which POST /api/v1/recording/start exercises here.
    "POST /api/v1/selftest": "records 1-120 s of video per case",
    # An endless MJPEG stream (an idle synthetic camera streams): a case would never end.
    # It takes no parameters; its answers (200, 404, 409, 503) are tested against real
    # processes in tests/test_liveview_e2e.py.
    "GET /api/v1/live.mjpg": "an endless stream",
    # An endless event stream: a case would never end. tests/test_status_stream.py runs it.
    "GET /api/v1/status/stream": "an endless server-sent events stream",
}
COORDINATOR_EXCLUDED: dict[str, str] = {
    # An endless event stream: each case waited for the client's time-out (60 s of the
    # smoke's 70). Its token check and answers are tested against a real coordinator in
    # tests/test_live_events.py and tests/test_live_dashboard.py.
    "GET /api/v1/events": "an endless server-sent events stream",
}


class Target:
    """One app under test: its schema, the token each path needs, what was run."""

    def __init__(
        self, name: str, app: Any, token_for: Callable[[str], str], excluded: dict[str, str]
    ) -> None:
        self.name = name
        self.app = app
        self.token_for = token_for
        self.excluded = excluded
        self.schema = schemathesis.openapi.from_dict(app.openapi())
        self.schema.app = app

    def operations(self) -> list[Any]:
        ops = []
        for result in self.schema.get_all_operations():
            assert isinstance(result, Ok), result.err()  # an operation schemathesis can't read
            ops.append(result.ok())
        return [op for op in ops if f"{op.method.upper()} {op.path}" not in self.excluded]

    def headers(self, path: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token_for(path)}"}


def _start(app: Any, path: str, token: str) -> None:
    """Run the app's lifespan (on schemathesis' loop) and prove the token is taken."""
    with asgi.get_client(app) as client:
        answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    operator, fleet = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    settings = CoordinatorSettings(
        operator_token=SecretStr(operator),
        fleet_token=SecretStr(fleet),
        data_dir=tmp_path_factory.mktemp("coordinator"),
        poll_interval_s=3600,
        command_timeout_s=0.5,
    )
    app = create_coordinator(settings)
    _start(app, "/api/v1/nodes", operator)
    join_paths = {"/api/v1/nodes/join", "/api/v1/nodes/challenge"}
    try:
        yield Target(
            "coordinator",
            app,
            lambda path: fleet if path in join_paths else operator,
            COORDINATOR_EXCLUDED,
        )
    finally:
        asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    token = secrets.token_urlsafe(24)
    data_dir = tmp_path_factory.mktemp("agent")
    settings = AgentSettings(
        node_id="fuzz-agent",
        cam_id="CAM_F",
        host="127.0.0.1",
        port=1,
        data_dir=data_dir,
        status_file=data_dir / "run" / "status.json",  # GET /status answers its content
        api_token=SecretStr(token),
        chronyc_path=NO_CHRONYC,
        clock_poll_interval_s=3600,
        gates=GateSettings(clock_policy="warn"),  # no chronyd here: the clock gate warns
        # POST /api/v1/shutdown is fuzzed too: in dry run it powers nothing off.
        dashcam=DashcamSettings(dry_run=True),
        camera=CameraSettings(
            source="synthetic",
            width=64,
            height=48,
            fps=10,
            bitrate_bps=200_000,
            bitrate_min_bps=100_000,
            encoder_options={"libx264": {"threads": "1"}},
        ),
    )
    app = create_agent(settings)
    _start(app, "/api/v1/status", token)
    try:
        yield Target("agent", app, lambda _path: token, AGENT_EXCLUDED)
    finally:
        asgi.shutdown_lifespans()


def _run_operation(op: Any, headers: dict[str, str], cases: int) -> tuple[int, str | None]:
    """Up to ``cases`` cases of ``op``, valid and invalid; how many ran, and the failure."""
    ran = 0
    strategy = st.one_of(
        op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)
    )

    @settings(
        max_examples=cases,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        nonlocal ran
        ran += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is a BaseExceptionGroup
        return ran, f"{op.method.upper()} {op.path}: {exc}"
    return ran, None


def _fuzz(target: Target) -> None:
    ops = target.operations()
    # Hypothesis stops early on an operation with few distinct inputs (no parameters),
    # so the total can be below CASES_PER_API.
    per_op = max(2, math.ceil(CASES_PER_API / len(ops)))
    failures: list[str] = []
    total = 0
    began = time.monotonic()
    for op in ops:
        op_began = time.monotonic()
        ran, failure = _run_operation(op, target.headers(op.path), per_op)
        total += ran
        if failure is not None:
            failures.append(failure)
        if os.environ.get("CAMFLEET_FUZZ_TIMES"):
            print(
                f"  {op.method.upper()} {op.path}: {ran} cases, {time.monotonic() - op_began:.2f} s"
            )
    took = time.monotonic() - began
    print(f"\n{target.name}: {total} cases over {len(ops)} operations in {took:.1f} s")
    assert not failures, "\n\n".join(failures)


def test_coordinator_schema_fuzz(coordinator: Target) -> None:
    _fuzz(coordinator)


def test_agent_schema_fuzz(agent: Target) -> None:
    _fuzz(agent)


def _unparseable_body(target: Target) -> None:
    """A body that is not JSON is a documented 4xx on every operation that takes one."""
    problems = []
    with asgi.get_client(target.app) as client:
        for op in target.operations():
            if not op.body:
                continue
            path = op.path
            for name in ("session_id", "node_id", "name"):
                path = path.replace("{" + name + "}", "abc")
            answer: requests.Response = client.request(
                op.method.upper(),
                path,
                data=b'{"not json',
                headers={**target.headers(op.path), "Content-Type": "application/json"},
            )
            documented = set(op.definition.raw.get("responses", {}))
            if str(answer.status_code) not in documented or answer.status_code >= 500:
                problems.append(f"{op.method.upper()} {op.path}: {answer.status_code}")
            elif answer.headers.get("content-type") != "application/json":
                problems.append(f"{op.method.upper()} {op.path}: {answer.headers}")
    assert not problems, problems


def test_coordinator_unparseable_body(coordinator: Target) -> None:
    _unparseable_body(coordinator)


def test_agent_unparseable_body(agent: Target) -> None:
    _unparseable_body(agent)
