"""PATCH /api/v1/sessions/{id} on a real coordinator and agent: a session's name and notes
edited after the fact, merged key by key, bounded, and refused with the field named."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.conftest import RunningFleet

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded(fleet: RunningFleet) -> dict[str, Any]:
    """One short session started with notes, stopped."""
    with fleet.client() as c:
        started = c.post(
            "/api/v1/sessions",
            json={"name": "  warm-up  ", "lead_ms": 200, "metadata": {"venue": "North pitch"}},
        )
        assert started.status_code == 201, started.text
        sid = started.json()["session_id"]
        time.sleep(1.0)  # a second of footage
        stopped = c.post(f"/api/v1/sessions/{sid}/stop")
        assert stopped.status_code == 200, stopped.text
        return dict(stopped.json())


def test_a_start_keeps_its_name_trimmed_and_its_notes(recorded: dict[str, Any]) -> None:
    assert recorded["name"] == "warm-up"
    assert recorded["metadata"] == {"venue": "North pitch"}
    assert recorded["edited_at"] is None
    (node,) = recorded["nodes"]
    assert node["recording_id"] >= 1 and node["size_bytes"] > 0
    assert node["archive_state"] == "none"


def test_the_name_and_notes_are_edited_and_kept(
    fleet: RunningFleet, recorded: dict[str, Any]
) -> None:
    sid = recorded["session_id"]
    with fleet.client() as c:
        resp = c.patch(
            f"/api/v1/sessions/{sid}",
            json={"name": "Reds v Blues, 1st half", "metadata": {"home": "Reds", "away": "Blues"}},
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["name"] == "Reds v Blues, 1st half"
        assert body["metadata"] == {"venue": "North pitch", "home": "Reds", "away": "Blues"}
        edited = datetime.fromisoformat(body["edited_at"])
        assert edited >= datetime.fromisoformat(body["stopped_at"])
        # the rest of the session is as it was
        assert body["state"] == "stopped" and body["nodes"] == recorded["nodes"]
        assert body["skew_ms"] == recorded["skew_ms"]

        # null removes a key; a name left out stays
        resp = c.patch(f"/api/v1/sessions/{sid}", json={"metadata": {"away": None, "x": "1"}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["name"] == "Reds v Blues, 1st half"
        assert resp.json()["metadata"] == {"venue": "North pitch", "home": "Reds", "x": "1"}
        assert datetime.fromisoformat(resp.json()["edited_at"]) >= edited

        shown = c.get(f"/api/v1/sessions/{sid}").json()
        assert shown["name"] == "Reds v Blues, 1st half"
        assert shown["metadata"] == {"venue": "North pitch", "home": "Reds", "x": "1"}
        listed = c.get("/api/v1/sessions").json()["sessions"]
        assert next(s for s in listed if s["session_id"] == sid)["metadata"]["x"] == "1"

        # the name may be cleared
        assert c.patch(f"/api/v1/sessions/{sid}", json={"name": ""}).json()["name"] == ""


def test_an_unknown_session_is_404(fleet: RunningFleet) -> None:
    with fleet.client() as c:
        resp = c.patch("/api/v1/sessions/20990101-000000-abcd", json={"name": "x"})
    assert resp.status_code == 404
    assert "no session '20990101-000000-abcd'" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x" * 201}, "body.name"),
        ({"name": None}, "body.name"),
        ({"name": "tab\there"}, "body.name"),
        ({"colour": "red"}, "body.colour"),
        ({"session_id": "other"}, "body.session_id"),
        ({"metadata": {"": "empty key"}}, "body.metadata"),
        ({"metadata": {"bad/key": "v"}}, "body.metadata"),
        ({"metadata": {"k": "v" * 501}}, "body.metadata.k"),
        ({"metadata": {"k": 3}}, "body.metadata.k"),
        ({"metadata": {f"k{i}": "v" for i in range(21)}}, "body.metadata"),
        ({"metadata": ["not", "a", "map"]}, "body.metadata"),
        ({}, "body"),
    ],
)
def test_a_bad_edit_is_422_naming_the_field_and_changes_nothing(
    fleet: RunningFleet, recorded: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    sid = recorded["session_id"]
    with fleet.client() as c:
        before = c.get(f"/api/v1/sessions/{sid}").json()
        resp = c.patch(f"/api/v1/sessions/{sid}", json=body)
        assert resp.status_code == 422, resp.text
        fields = [e["field"] for e in resp.json()["errors"]]
        assert any(f == field or f.startswith(field + ".") for f in fields), fields
        assert resp.json()["detail"]
        assert c.get(f"/api/v1/sessions/{sid}").json() == before


def test_notes_are_bounded_after_the_merge(fleet: RunningFleet, recorded: dict[str, Any]) -> None:
    sid = recorded["session_id"]
    with fleet.client() as c:
        have = len(c.get(f"/api/v1/sessions/{sid}").json()["metadata"])
        fill = {f"n{i}": "v" for i in range(20 - have)}
        assert c.patch(f"/api/v1/sessions/{sid}", json={"metadata": fill}).status_code == 200
        over = c.patch(f"/api/v1/sessions/{sid}", json={"metadata": {"one-more": "v"}})
        assert over.status_code == 422
        assert over.json()["errors"][0]["field"] == "body.metadata"
        assert "at most 20" in over.json()["detail"]
        assert len(c.get(f"/api/v1/sessions/{sid}").json()["metadata"]) == 20
        # removing one makes room
        swap = {"n0": None, "one-more": "v"}
        assert c.patch(f"/api/v1/sessions/{sid}", json={"metadata": swap}).status_code == 200


def test_an_edit_needs_the_operator_token(fleet: RunningFleet, recorded: dict[str, Any]) -> None:
    sid = recorded["session_id"]
    for headers in ({}, {"Authorization": f"Bearer {fleet.fleet_token}"}):
        resp = httpx.patch(
            f"{fleet.url}/api/v1/sessions/{sid}", json={"name": "x"}, headers=headers
        )
        assert resp.status_code == 401
    with fleet.client() as c:
        assert c.get(f"/api/v1/sessions/{sid}").json()["name"] != "x"


def test_sessions_are_paged_newest_first(fleet: RunningFleet, recorded: dict[str, Any]) -> None:
    with fleet.client() as c:
        extra = c.post("/api/v1/sessions", json={"name": "second", "lead_ms": 200}).json()
        c.post(f"/api/v1/sessions/{extra['session_id']}/stop")
        first = c.get("/api/v1/sessions", params={"limit": 1}).json()
        assert first["total"] >= 2 and first["offset"] == 0
        assert [s["session_id"] for s in first["sessions"]] == [extra["session_id"]]
        second = c.get("/api/v1/sessions", params={"limit": 1, "offset": 1}).json()
        assert second["offset"] == 1
        assert [s["session_id"] for s in second["sessions"]] == [recorded["session_id"]]
        assert c.get("/api/v1/sessions", params={"offset": -1}).status_code == 422
