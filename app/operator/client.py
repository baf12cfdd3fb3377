"""The coordinator's operator API as the footage commands use it (httpx: a CLI can afford it).

Every failure a person must act on (no token, a refused token, an unreachable coordinator,
an unknown session) becomes an ``OperatorError`` with a sentence saying what to do; the
command prints it and exits 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)
# Archived states in which the coordinator's archive holds a verified copy.
ARCHIVED = frozenset({"archived", "confirmed"})


class OperatorError(Exception):
    """A usage or connection problem: the command stops with exit code 2."""


@dataclass(frozen=True)
class Recording:
    """One recording as ``GET /api/v1/recordings`` lists it (tolerant of newer fields)."""

    id: int | None
    node_id: str
    session_id: str
    file_name: str
    sha256: str
    size_bytes: int
    offloaded: bool
    archive_state: str
    manifest: dict[str, Any]

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> Recording:
        return cls(
            id=body.get("id"),
            node_id=str(body["node_id"]),
            session_id=str(body["session_id"]),
            file_name=str(body["file_name"]),
            sha256=str(body["sha256"]).lower(),
            size_bytes=int(body["size_bytes"]),
            offloaded=bool(body.get("offloaded", False)),
            archive_state=str(body.get("archive_state") or "none"),
            manifest=dict(body.get("manifest") or {}),
        )

    @property
    def archived(self) -> bool:
        """The coordinator's archive holds a verified copy it can serve."""
        return self.id is not None and self.archive_state in ARCHIVED

    @property
    def cam_id(self) -> str:
        return str(self.manifest.get("cam_id") or self.node_id)

    @property
    def lockview_file(self) -> str | None:
        name = self.manifest.get("lockview_file")
        return str(name) if name else None


def error_detail(resp: httpx.Response) -> str:
    """The ``detail`` of an error answer, or the start of its text."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300] or resp.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return str(body)[:300]


class OperatorClient:
    """A bearer-token client for one coordinator; ``close()`` (or ``with``) when done."""

    def __init__(self, url: str, token: str | None) -> None:
        token = token or os.environ.get("CAMFLEET_OPERATOR_TOKEN")
        if not token:
            raise OperatorError(
                "set --token or CAMFLEET_OPERATOR_TOKEN (camfleet demo prints the operator token)"
            )
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
            timeout=TIMEOUT,
        )

    def __enter__(self) -> OperatorClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def unreachable(self, err: httpx.HTTPError) -> OperatorError:
        return OperatorError(
            f"cannot reach the coordinator at {self.url}: {err or type(err).__name__} "
            "(check --url or CAMFLEET_URL, and that the coordinator runs)"
        )

    def check_auth(self, resp: httpx.Response) -> None:
        """Raise the refused-token error a person can act on."""
        if resp.status_code in (401, 403):
            raise OperatorError(
                f"the coordinator at {self.url} refused the operator token "
                f"({resp.status_code}: {error_detail(resp)}); check --token or "
                "CAMFLEET_OPERATOR_TOKEN"
            )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call; a refused token or an unreachable coordinator raises OperatorError."""
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise self.unreachable(err) from err
        self.check_auth(resp)
        return resp

    def expect_json(self, resp: httpx.Response, what: str) -> Any:
        if not resp.is_success:
            raise OperatorError(f"{what} failed ({resp.status_code}): {error_detail(resp)}")
        try:
            return resp.json()
        except ValueError as err:
            raise OperatorError(
                f"{what}: the answer from {self.url} is not JSON; is --url a camfleet coordinator?"
            ) from err

    def check_session(self, session_id: str) -> None:
        """Raise a clear error when the coordinator has no such session."""
        resp = self.request("GET", f"/api/v1/sessions/{session_id}")
        if resp.status_code in (404, 422):
            raise OperatorError(
                f"the coordinator at {self.url} has no session {session_id!r} "
                "(camfleet sessions lists them)"
            )
        self.expect_json(resp, f"looking up session {session_id}")

    def recordings(self, session_id: str | None) -> list[Recording]:
        """Every recording the coordinator knows (of one session, when given)."""
        params = {"session_id": session_id} if session_id else None
        body = self.expect_json(
            self.request("GET", "/api/v1/recordings", params=params), "listing the recordings"
        )
        try:
            return [Recording.from_wire(r) for r in body["recordings"]]
        except (KeyError, TypeError, ValueError) as err:
            raise OperatorError(
                f"the recordings list from {self.url} is not what this camfleet expects: {err!r}"
            ) from err


def archive_file_path(rec: Recording) -> str:
    """The coordinator's archived copy of the video."""
    return f"/api/v1/recordings/{rec.id}/file"


def archive_lockview_path(rec: Recording) -> str:
    return f"/api/v1/recordings/{rec.id}/lockview.jpg"


def node_file_path(node_id: str, name: str) -> str:
    """A file on a node, relayed by the coordinator (Range passed on)."""
    return f"/api/v1/nodes/{node_id}/recordings/{name}"


def confirm_path(node_id: str, name: str) -> str:
    return f"/api/v1/nodes/{node_id}/recordings/{name}/confirm"
