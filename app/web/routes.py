"""The operator's pages and Swagger: a signed-in browser (its session cookie) sees them,
with its CSRF token filled in; any other goes to /login. ``?token=<operator token>`` on a
page signs in at once (``camfleet demo`` prints such a link) and redirects without it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from app.auth import Auth
from app.deps import AuthDep, require_operator
from app.web import pages
from app.web.auth_pages import login_url, token_sign_in

router = APIRouter(tags=["dashboard"])

TokenQuery = Annotated[
    str | None, Query(description="The operator token, once: signs in, then a session cookie")
]


def _signed_in(request: Request, auth: Auth, token: str | None) -> Response | str:
    """The page's CSRF token when the browser may see it; otherwise the answer to give:
    ``?token=`` signs in (303 to the page without it), no session goes to /login."""
    path = request.url.path
    if token is not None:
        return token_sign_in(request, auth, token, path)
    found = auth.signed_in(request.scope)
    if found is not None:
        return auth.sessions.csrf_token(found.sid)
    return RedirectResponse(login_url(path), status_code=303, headers={"Cache-Control": "no-store"})


def page(
    request: Request, auth: Auth, token: str | None, name: str, page_data: Any = None
) -> Response:
    """``static/name`` for a signed-in browser, with its CSRF token; /login otherwise."""
    signed_in = _signed_in(request, auth, token)
    if isinstance(signed_in, Response):
        return signed_in
    return pages.render(name, csrf_token=signed_in, page_data=page_data)


_SIGN_IN: dict[int | str, dict[str, Any]] = {
    303: {"description": "No session: to /login?next=<this page>; ?token= signed in: here"},
    401: {"description": "A wrong ?token=: the sign-in page"},
    429: {"description": "Too many failed sign-ins from this address"},
}


@router.get("/", summary="The dashboard", response_class=HTMLResponse, responses=_SIGN_IN)
async def dashboard(request: Request, auth: AuthDep, token: TokenQuery = None) -> Response:
    return page(request, auth, token, "index.html")


@router.get("/sessions", summary="The sessions page", include_in_schema=False)
async def sessions_page(request: Request, auth: AuthDep, token: TokenQuery = None) -> Response:
    return page(request, auth, token, "sessions.html")


@router.get(
    "/sessions/{session_id}",
    summary="One session's page",
    include_in_schema=False,
)
async def session_page(
    session_id: Annotated[str, Path(max_length=64)],
    request: Request,
    auth: AuthDep,
    token: TokenQuery = None,
) -> Response:
    return page(request, auth, token, "session.html", {"session_id": session_id})


@router.get("/recordings", summary="The recordings page", include_in_schema=False)
async def recordings_page(request: Request, auth: AuthDep, token: TokenQuery = None) -> Response:
    return page(request, auth, token, "recordings.html")


@router.get(
    "/nodes/{node_id}/settings",
    summary="One node's settings page",
    include_in_schema=False,
)
async def settings_page(
    node_id: Annotated[str, Path(max_length=64)],
    request: Request,
    auth: AuthDep,
    token: TokenQuery = None,
) -> Response:
    return page(request, auth, token, "settings.html", {"node_id": node_id})


@router.get(
    "/nodes/{node_id}/live",
    summary="One node's live view page",
    include_in_schema=False,
)
async def live_page(
    node_id: Annotated[str, Path(max_length=64)],
    request: Request,
    auth: AuthDep,
    token: TokenQuery = None,
) -> Response:
    return page(request, auth, token, "live.html", {"node_id": node_id})


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
    responses=_SIGN_IN,
)
async def swagger(request: Request, auth: AuthDep, token: TokenQuery = None) -> Response:
    signed_in = _signed_in(request, auth, token)
    if isinstance(signed_in, Response):
        return signed_in
    return get_swagger_ui_html(openapi_url="/openapi.json", title="camfleet API")


@router.get(
    "/openapi.json",
    summary="The OpenAPI schema",
    include_in_schema=False,
    dependencies=[Depends(require_operator)],
)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
