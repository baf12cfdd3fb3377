"""The dashboard and Swagger pages: the operator token once as ?token=, then a cookie."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.deps import TOKEN_COOKIE, FleetDep, require_operator
from app.web import pages

router = APIRouter(tags=["dashboard"])

_LOGIN = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>camfleet: sign in</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
input,button{font-size:1.1rem;padding:.5rem;width:100%;box-sizing:border-box;margin:.3rem 0}</style>
</head><body><h1>camfleet</h1><p>{message}</p>
<form method="get" action="{action}"><label>Operator token
<input name="token" type="password" autocomplete="current-password" autofocus></label>
<button type="submit">Sign in</button></form>
<p><small><code>camfleet demo</code> prints the token; otherwise it is the coordinator's
<code>CAMFLEET_OPERATOR_TOKEN</code>.</small></p></body></html>"""

TokenQuery = Annotated[str | None, Query(description="The operator token, once; then a cookie")]


def _signed_in(request: Request, path: str, token: str | None, expected: str) -> Response | None:
    """None when the browser may see ``path``; otherwise the redirect or sign-in page."""
    if token is not None:
        if not secrets.compare_digest(token.encode(), expected.encode()):
            page = _LOGIN.replace("{message}", "That token is not valid.")
            return HTMLResponse(page.replace("{action}", path), 401)
        resp = RedirectResponse(path, status_code=303)
        resp.set_cookie(
            TOKEN_COOKIE, token, httponly=True, samesite="strict", max_age=30 * 24 * 3600
        )
        return resp
    cookie = request.cookies.get(TOKEN_COOKIE, "")
    if cookie and secrets.compare_digest(cookie.encode(), expected.encode()):
        return None
    page = _LOGIN.replace("{message}", "Sign in with the operator token.")
    return HTMLResponse(page.replace("{action}", path), 401)


def page(
    request: Request, fleet: FleetDep, token: str | None, name: str, page_data: Any = None
) -> Response:
    """``static/name`` for a signed-in browser; the sign-in form otherwise."""
    expected = fleet.settings.operator_token.get_secret_value()
    refused = _signed_in(request, request.url.path, token, expected)
    if refused is not None:
        return refused
    return pages.render(name, csrf_token="", page_data=page_data)


_SIGN_IN: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or wrong token: a sign-in form"}
}


@router.get("/", summary="The dashboard", response_class=HTMLResponse, responses=_SIGN_IN)
async def dashboard(request: Request, fleet: FleetDep, token: TokenQuery = None) -> Response:
    return page(request, fleet, token, "index.html")


@router.get("/sessions", summary="The sessions page", include_in_schema=False)
async def sessions_page(request: Request, fleet: FleetDep, token: TokenQuery = None) -> Response:
    return page(request, fleet, token, "sessions.html")


@router.get(
    "/sessions/{session_id}",
    summary="One session's page",
    include_in_schema=False,
)
async def session_page(
    session_id: Annotated[str, Path(max_length=64)],
    request: Request,
    fleet: FleetDep,
    token: TokenQuery = None,
) -> Response:
    return page(request, fleet, token, "session.html", {"session_id": session_id})


@router.get("/recordings", summary="The recordings page", include_in_schema=False)
async def recordings_page(request: Request, fleet: FleetDep, token: TokenQuery = None) -> Response:
    return page(request, fleet, token, "recordings.html")


@router.get(
    "/nodes/{node_id}/settings",
    summary="One node's settings page",
    include_in_schema=False,
)
async def settings_page(
    node_id: Annotated[str, Path(max_length=64)],
    request: Request,
    fleet: FleetDep,
    token: TokenQuery = None,
) -> Response:
    return page(request, fleet, token, "settings.html", {"node_id": node_id})


@router.get(
    "/nodes/{node_id}/live",
    summary="One node's live view page",
    include_in_schema=False,
)
async def live_page(
    node_id: Annotated[str, Path(max_length=64)],
    request: Request,
    fleet: FleetDep,
    token: TokenQuery = None,
) -> Response:
    return page(request, fleet, token, "live.html", {"node_id": node_id})


@router.get(
    "/static/{name}",
    summary="A vendored script, style sheet or image of the pages",
    include_in_schema=False,
    dependencies=[Depends(require_operator)],
)
async def static_asset(name: Annotated[str, Path(max_length=64)]) -> Response:
    found = pages.asset(name)
    if found is None:
        raise HTTPException(404, f"no asset {name!r}")
    return found


@router.get(
    "/docs",
    response_class=HTMLResponse,
    summary="Swagger UI",
    include_in_schema=False,
    responses={401: {"description": "No or wrong token: a sign-in form"}},
)
async def swagger(request: Request, fleet: FleetDep, token: TokenQuery = None) -> Response:
    expected = fleet.settings.operator_token.get_secret_value()
    refused = _signed_in(request, "/docs", token, expected)
    if refused is not None:
        return refused
    return get_swagger_ui_html(openapi_url="/openapi.json", title="camfleet API")


@router.get(
    "/openapi.json",
    summary="The OpenAPI schema",
    include_in_schema=False,
    dependencies=[Depends(require_operator)],
)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
