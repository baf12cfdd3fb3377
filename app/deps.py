"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import STATE_KEY, Auth
from app.context import Fleet
from app.offload.engine import OffloadEngine
from common.http import check_bearer

# Set in the request's scope by the AuthGate when a join proved the fleet token by HMAC.
FLEET_PROOF_KEY = "camfleet_fleet_proof"


def get_fleet(request: Request) -> Fleet:
    """The app's Fleet."""
    fleet: Fleet = request.app.state.fleet
    return fleet


# Declared so that Swagger shows the lock and its "Authorize" button sends the header;
# the check itself is check_bearer's, or the AuthGate's for a browser's session cookie.
bearer_scheme = HTTPBearer(auto_error=False, description="The operator token")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def require_operator(request: Request, _credentials: BearerDep) -> None:
    """Operator token on every route but /health and the node join, or a browser session
    the AuthGate accepted (with its CSRF token when the request changes something)."""
    if request.scope.get("state", {}).get(STATE_KEY) is not None:
        return
    fleet: Fleet = request.app.state.fleet
    check_bearer(request, lambda: [fleet.settings.operator_token.get_secret_value()])


def get_auth(request: Request) -> Auth:
    """The app's sign-in state."""
    auth: Auth = request.app.state.auth
    return auth


AuthDep = Annotated[Auth, Depends(get_auth)]


def require_fleet_token(request: Request) -> None:
    """The fleet token, presented by nodes when they join, or the answer to a handshake
    that the AuthGate verified (app.discovery.service.proof_check)."""
    if request.scope.get("state", {}).get(FLEET_PROOF_KEY):
        return
    fleet: Fleet = request.app.state.fleet
    check_bearer(request, lambda: [fleet.settings.fleet_token.get_secret_value()])


FleetDep = Annotated[Fleet, Depends(get_fleet)]


def get_offload(request: Request) -> OffloadEngine:
    """The app's offload engine."""
    engine: OffloadEngine = request.app.state.offload
    return engine


OffloadDep = Annotated[OffloadEngine, Depends(get_offload)]
