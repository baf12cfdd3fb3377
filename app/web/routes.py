"""The operator's pages and Swagger: a signed-in browser (its session cookie) sees them,
with its CSRF token filled in; any other goes to /login. ``?token=<operator token>`` on a
page signs in at once (``camfleet demo`` prints such a link) and redirects without it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


# The pages besides the dashboard, out of the API schema like /docs: path -> file. Their
# path parameters are the page's data ({"session_id": ...} or {"node_id": ...}).
PAGES = {
    "/sessions": "sessions.html",
    "/sessions/{session_id}": "session.html",
    "/recordings": "recordings.html",
    "/nodes/{node_id}/settings": "settings.html",
    "/nodes/{node_id}/live": "live.html",
}
MAX_PATH_PARAM = 64


def _page_route(name: str) -> Callable[..., Awaitable[Response]]:
    async def serve(request: Request, auth: AuthDep, token: TokenQuery = None) -> Response:
        data = dict(request.path_params)
        too_long = [k for k, v in data.items() if len(v) > MAX_PATH_PARAM]
        if too_long:
            raise HTTPException(422, f"{too_long[0]} is longer than {MAX_PATH_PARAM} characters")
        return page(request, auth, token, name, data or None)

    return serve


for _path, _name in PAGES.items():
    router.add_api_route(_path, _page_route(_name), methods=["GET"], include_in_schema=False)


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
