"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.context import Fleet
from app.offload.engine import OffloadEngine
from common.http import check_bearer

# The dashboard's browser session carries the operator token in this cookie
# (HttpOnly, SameSite=Strict, so other sites cannot make the browser use it).
TOKEN_COOKIE = "camfleet_token"


def get_fleet(request: Request) -> Fleet:
    """The app's Fleet."""
    fleet: Fleet = request.app.state.fleet
    return fleet


# Declared so that Swagger shows the lock and its "Authorize" button sends the header;
# the check itself is check_bearer's (it also accepts the dashboard's cookie).
bearer_scheme = HTTPBearer(auto_error=False, description="The operator token")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def require_operator(request: Request, _credentials: BearerDep) -> None:
    """Operator token on every route but /health and the node join."""
    fleet: Fleet = request.app.state.fleet
    check_bearer(
        request, lambda: [fleet.settings.operator_token.get_secret_value()], cookie=TOKEN_COOKIE
    )


def require_fleet_token(request: Request) -> None:
    """The fleet token, presented by nodes when they join."""
    fleet: Fleet = request.app.state.fleet
    check_bearer(request, lambda: [fleet.settings.fleet_token.get_secret_value()])


FleetDep = Annotated[Fleet, Depends(get_fleet)]


def get_offload(request: Request) -> OffloadEngine:
    """The app's offload engine."""
    engine: OffloadEngine = request.app.state.offload
    return engine


OffloadDep = Annotated[OffloadEngine, Depends(get_offload)]
