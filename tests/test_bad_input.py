"""Bad input gets a 4xx with a message a person can act on: never a 500, never another file."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningFleet


def detail(resp: httpx.Response) -> str:
    body = resp.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nodes"),
        ("GET", "/api/v1/nodes/cam-c"),
        ("GET", "/api/v1/sessions"),
        ("POST", "/api/v1/sessions"),
        ("PATCH", "/api/v1/sessions/20261201-000000-abcd"),
        ("GET", "/api/v1/recordings"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/api/v1/logs"),
        ("PUT", "/api/v1/mode"),
        ("PUT", "/api/v1/nodes/cam-c/mode"),
        ("GET", "/api/v1/nodes/cam-c/logs"),
    ],
)
@pytest.mark.parametrize("token", [None, "wrong-token-wrong-token", "FLEET"])
def test_coordinator_routes_refuse_a_missing_or_wrong_token(
    fleet: RunningFleet, method: str, path: str, token: str | None
) -> None:
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {fleet.fleet_token if token == 'FLEET' else token}"
    resp = httpx.request(method, fleet.url + path, headers=headers, json={})
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "token" in detail(resp) or "Authorization" in detail(resp)


def test_health_needs_no_token(fleet: RunningFleet) -> None:
    assert httpx.get(fleet.url + "/health").json()["status"] == "ok"
    port = fleet.agents["CAM_C"].port
    assert httpx.get(f"http://127.0.0.1:{port}/health").json()["node_id"] == "cam-c"


def test_join_takes_the_fleet_token_not_the_operator_token(fleet: RunningFleet) -> None:
    body = {
        "node_id": "intruder",
        "cam_id": "CAM_X",
        "position": "left",
        "port": 9,
        "api_token": "x" * 20,
        "version": "1",
    }
    resp = httpx.post(
        fleet.url + "/api/v1/nodes/join",
        json=body,
        headers={"Authorization": f"Bearer {fleet.operator_token}"},
    )
    assert resp.status_code == 401
    with fleet.client() as c:
        assert c.get("/api/v1/nodes/intruder").status_code == 404


def test_join_with_a_missing_field_names_it(fleet: RunningFleet) -> None:
    resp = httpx.post(
        fleet.url + "/api/v1/nodes/join",
        json={"node_id": "n1", "cam_id": "CAM_X", "position": "left", "version": "1"},
        headers={"Authorization": f"Bearer {fleet.fleet_token}"},
    )
    assert resp.status_code == 422
    fields = {e["field"] for e in resp.json()["errors"]}
    assert {"body.port", "body.public_key"} <= fields
    # the token may come in the clear (bearer path) or sealed (discovery): one is required
    whole = {
        "node_id": "n1",
        "cam_id": "CAM_X",
        "position": "left",
        "version": "1",
        "port": 8081,
        "public_key": "A" * 43,
    }
    tokenless = httpx.post(
        fleet.url + "/api/v1/nodes/join",
        json=whole,
        headers={"Authorization": f"Bearer {fleet.fleet_token}"},
    )
    assert tokenless.status_code == 422, tokenless.text
    assert "exactly one of api_token and sealed_api_token" in tokenless.text


def test_unknown_node_and_session_are_404(fleet: RunningFleet) -> None:
    with fleet.client() as c:
        node = c.get("/api/v1/nodes/no-such-node")
        assert node.status_code == 404 and "no-such-node" in detail(node)
        session = c.get("/api/v1/sessions/20200101-000000-abcd")
        assert session.status_code == 404 and "20200101-000000-abcd" in detail(session)
        stop = c.post("/api/v1/sessions/20200101-000000-abcd/stop")
        assert stop.status_code == 404
        start = c.post("/api/v1/sessions", json={"node_ids": ["cam-c", "ghost"]})
        assert start.status_code == 404 and "ghost" in detail(start)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lead_ms": "soon"}, "body.lead_ms"),
        ({"name": "x" * 201}, "body.name"),
        ({"node_ids": ["../etc"]}, "body.node_ids.0"),
        ({"node_ids": []}, "body.node_ids"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_malformed_session_body_is_422_naming_the_field(
    fleet: RunningFleet, body: dict[str, object], field: str
) -> None:
    with fleet.client() as c:
        resp = c.post("/api/v1/sessions", json=body)
    assert resp.status_code == 422
    assert field in {e["field"] for e in resp.json()["errors"]}
    assert field in detail(resp)


def test_body_that_is_not_json_is_422(fleet: RunningFleet) -> None:
    with fleet.client() as c:
        resp = c.post(
            "/api/v1/sessions", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert resp.status_code == 422
    assert "invalid request" in detail(resp)


@pytest.mark.parametrize("lead_ms", [0, 99, 60_001, 10**12])
def test_lead_out_of_bounds_is_422_with_the_bounds(fleet: RunningFleet, lead_ms: int) -> None:
    with fleet.client() as c:
        resp = c.post("/api/v1/sessions", json={"lead_ms": lead_ms})
        sessions = c.get("/api/v1/sessions").json()["sessions"]
    assert resp.status_code == 422
    assert "between 100 and 60000" in detail(resp)
    assert sessions == []  # nothing was started or stored


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "..%2Fapi_token",
        "%2Fetc%2Fpasswd",
        "api_token",
        "node_id",
        "..",
        "x.mp4%00.json",
        "a%5C..%5Capi_token.json",
    ],
)
def test_recording_names_never_reach_another_file(agent: httpx.Client, name: str) -> None:
    resp = agent.get(f"/api/v1/recordings/{name}")
    assert resp.status_code in (400, 404)
    assert b"root:" not in resp.content
    secret = agent.headers["Authorization"].split()[1]
    assert secret.encode() not in resp.content


def test_agent_refuses_missing_token(agent: httpx.Client) -> None:
    resp = httpx.get(f"{str(agent.base_url).rstrip('/')}/api/v1/recordings")
    assert resp.status_code == 401
    resp = httpx.post(
        f"{str(agent.base_url).rstrip('/')}/api/v1/recording/start",
        json={"session_id": "S1", "command_id": "c1"},
        headers={"Authorization": "Bearer nope-nope-nope-nope"},
    )
    assert resp.status_code == 401
    for method, path in (("GET", "/api/v1/logs"), ("PUT", "/api/v1/mode")):
        resp = httpx.request(
            method, f"{str(agent.base_url).rstrip('/')}{path}", json={"mode": "development"}
        )
        assert resp.status_code == 401, (method, path)
    assert agent.get("/api/v1/mode").json()["mode"] == "production"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"session_id": "../../x", "command_id": "c1"}, "body.session_id"),
        ({"session_id": "a_b", "command_id": "c1"}, "body.session_id"),
        ({"session_id": "S1"}, "body.command_id"),
        ({"session_id": "S1", "command_id": "c1", "start_at_ns": -5}, "body.start_at_ns"),
    ],
)
def test_agent_start_body_is_validated(
    agent: httpx.Client, body: dict[str, object], field: str
) -> None:
    resp = agent.post("/api/v1/recording/start", json=body)
    assert resp.status_code == 422
    assert field in {e["field"] for e in resp.json()["errors"]}


def test_agent_stop_of_unknown_session_is_404(agent: httpx.Client) -> None:
    resp = agent.post("/api/v1/recording/stop", json={"session_id": "NOPE", "command_id": "c9"})
    assert resp.status_code == 404
    assert "NOPE" in detail(resp)
