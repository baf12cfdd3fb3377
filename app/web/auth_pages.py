"""``GET/POST /login`` and ``POST /logout``: the browser's way in and out.

The sign-in page is one self-contained document (its style inline: the vendored assets
need a session). It takes a user name and password (``users`` in the settings) or the
operator token. A success sets the session cookie and answers 303 to ``next`` (a path on
this server only; anything else goes to ``/``). Failed sign-ins are counted per client
address (the TCP peer) and per user name; past the limit the answer is 429 with
Retry-After, and even a right password waits.
"""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from app.auth import CSRF_HEADER, SESSION_COOKIE, STATE_KEY, TOKEN_USER, Auth, SignedIn
from app.deps import AuthDep, require_operator
from common.http import AUTH_RESPONSES

router = APIRouter(tags=["sign-in"])

OLD_TOKEN_COOKIE = "camfleet_token"  # the raw-token cookie of earlier versions: removed

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>camfleet: sign in</title>
<style>
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;color:#1a1a1a;background:#fff;max-width:26rem;
margin:0 auto;padding:1.5rem 1rem;line-height:1.4}
h1{font-size:1.5rem;margin:0 0 1rem}
h2{font-size:1.05rem;margin:0 0 .5rem}
form{border:1px solid #8a8a8a;border-radius:.5rem;padding:1rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin:.4rem 0 .2rem}
input{display:block;width:100%;font-size:1.1rem;padding:.55rem;border:1px solid #555;
border-radius:.35rem}
button{width:100%;font-size:1.1rem;padding:.65rem;margin-top:.8rem;border:0;
border-radius:.35rem;background:#0b57d0;color:#fff;cursor:pointer}
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}
.msg{border:1px solid #b3261e;background:#fff;color:#b3261e;border-radius:.35rem;
padding:.6rem .75rem;margin:0 0 1rem;font-weight:600}
.or{text-align:center;color:#4a4a4a;margin:.2rem 0 1rem}
small{color:#4a4a4a}
</style></head>
<body><main>
<h1>camfleet</h1>
{message}
<form method="post" action="/login" aria-labelledby="h-user">
<h2 id="h-user">Sign in with your user name</h2>
<input type="hidden" name="next" value="{next}">
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" autocapitalize="none" spellcheck="false"
 value="{user}" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
<p class="or">or</p>
<form method="post" action="/login" aria-labelledby="h-token">
<h2 id="h-token">Sign in with the operator token</h2>
<input type="hidden" name="next" value="{next}">
<label for="token">Operator token</label>
<input id="token" name="token" type="password" autocomplete="off" required>
<button type="submit">Sign in with the token</button>
</form>
<p><small><code>camfleet demo</code> prints the token; otherwise it is the coordinator's
<code>CAMFLEET_OPERATOR_TOKEN</code>. <code>camfleet user add NAME</code> makes a user.</small></p>
</main></body></html>"""


_REFUSED_SIGN_OUT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>camfleet</title>
</head><body style="font-family:system-ui,sans-serif;max-width:26rem;margin:1.5rem auto;
padding:0 1rem"><p role="alert">Sign-out refused: the form carried no valid CSRF token,
so you are still signed in. <a href="/">Back to the dashboard</a>, then press Sign out
again.</p></body></html>"""


def login_page(
    status: int = 200,
    message: str = "",
    next_path: str = "/",
    user: str = "",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in page, with ``message`` (escaped) above the forms."""
    shown = f'<p class="msg" role="alert">{html.escape(message)}</p>' if message else ""
    body = _PAGE.replace("{message}", shown)
    body = body.replace("{next}", html.escape(next_path, quote=True))
    body = body.replace("{user}", html.escape(user, quote=True))
    return HTMLResponse(body, status, headers={"Cache-Control": "no-store", **(headers or {})})


def safe_next(value: str | None) -> str:
    """``value`` when it is a path on this server, else ``/`` (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return "/"  # browsers read "/\\host" as "//host"; no spaces or controls
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(("/login", "/logout")):
        return "/"
    return value


def login_url(path: str) -> str:
    return "/login?next=" + quote(path, safe="/")


def peer(request: Request) -> str:
    """The client's address: the TCP peer, never a header a client can write."""
    return request.client.host if request.client is not None else "unknown"


def cross_site(request: Request) -> bool:
    """A form posted from another site (login CSRF): its Origin is not this server."""
    origin = request.headers.get("origin")
    if origin is None:
        return request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none")
    host = request.headers.get("host", "")
    return origin != f"{request.url.scheme}://{host}"


def signed_in_redirect(request: Request, auth: Auth, user: str, next_path: str) -> Response:
    """A new session for ``user``: its cookie, and 303 to ``next_path``."""
    sid = auth.sessions.create(user)
    resp = RedirectResponse(next_path, status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        sid,
        max_age=int(auth.settings.session_max_age_s),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    resp.delete_cookie(OLD_TOKEN_COOKIE, path="/")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def too_many(retry_after: int, next_path: str, user: str = "") -> HTMLResponse:
    minutes = f"{retry_after} s" if retry_after < 120 else f"{(retry_after + 59) // 60} min"
    return login_page(
        429,
        f"Too many failed sign-ins. Wait {minutes} before trying again "
        "(a right password is refused until then too).",
        next_path,
        user,
        headers={"Retry-After": str(retry_after)},
    )


def token_sign_in(request: Request, auth: Auth, token: str, path: str) -> Response:
    """``?token=`` on a page: signs in and redirects to the page without the token."""
    address = peer(request)
    wait = auth.retry_after(address, None)
    if wait is not None:
        return too_many(wait, path)
    if not auth.token_ok(token):
        auth.failed(address, None)
        return login_page(401, "That token is not valid.", path)
    auth.succeeded(address, None)
    return signed_in_redirect(request, auth, TOKEN_USER, path)


async def form_fields(request: Request) -> dict[str, str] | None:
    """The urlencoded form of the request, or None when it is not one."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    try:
        text = (await request.body()).decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=16))
    except (UnicodeDecodeError, ValueError):
        return None


NextQuery = Annotated[str | None, Query(max_length=2048, description="Where to go afterwards")]


# The forms are for browsers, not part of the API (scripts use the bearer header).
@router.get(
    "/login", summary="The sign-in page", response_class=HTMLResponse, include_in_schema=False
)
async def login_form(request: Request, auth: AuthDep, next: NextQuery = None) -> Response:
    next_path = safe_next(next)
    if auth.signed_in(request.scope) is not None:
        return RedirectResponse(next_path, status_code=303)
    return login_page(next_path=next_path)


@router.post(
    "/login",
    summary="Sign in (form: user and password, or token; next)",
    response_class=HTMLResponse,
    include_in_schema=False,
    responses={
        303: {"description": "Signed in: the session cookie, and on to next"},
        400: {"description": "Not a sign-in form"},
        401: {"description": "Wrong user name, password or token: the form again"},
        403: {"description": "Posted from another site"},
        429: {"description": "Too many failed sign-ins: wait Retry-After seconds"},
    },
)
async def login(request: Request, auth: AuthDep) -> Response:
    if cross_site(request):
        return login_page(403, "This sign-in came from another site and was refused.")
    fields = await form_fields(request)
    if fields is None:
        return login_page(400, "Send the sign-in form (application/x-www-form-urlencoded).")
    next_path = safe_next(fields.get("next"))
    token = fields.get("token", "")
    if token:
        return token_sign_in(request, auth, token, next_path)
    user, password = fields.get("user", "").strip(), fields.get("password", "")
    if not user or not password:
        return login_page(
            400, "Enter a user name and password, or the operator token.", next_path, user
        )
    address = peer(request)
    user_key = user[:64].lower()
    wait = auth.retry_after(address, user_key)
    if wait is not None:
        return too_many(wait, next_path, user)
    if not await auth.password_ok(user, password):
        auth.failed(address, user_key)
        return login_page(401, "Wrong user name or password.", next_path, user)
    auth.succeeded(address, user_key)
    return signed_in_redirect(request, auth, user, next_path)


@router.post(
    "/logout",
    summary="Sign out (form: csrf_token)",
    response_class=HTMLResponse,
    include_in_schema=False,
    responses={
        303: {"description": "Signed out (or was not signed in): on to /login"},
        403: {"description": "No valid CSRF token: still signed in"},
    },
)
async def logout(request: Request, auth: AuthDep) -> Response:
    found = auth.signed_in(request.scope)
    if found is not None:
        fields = await form_fields(request) or {}
        presented = request.headers.get(CSRF_HEADER) or fields.get("csrf_token")
        if not auth.sessions.csrf_ok(found.sid, presented):
            return HTMLResponse(_REFUSED_SIGN_OUT, 403, headers={"Cache-Control": "no-store"})
        auth.sessions.revoke(found.sid)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    resp.headers["Cache-Control"] = "no-store"
    return resp


class WhoAmI(BaseModel):
    """Who the request is signed in as."""

    user: str = Field(description="The user name, or '(operator token)'")
    via: str = Field(description="'session' (the browser's cookie) or 'bearer'")
    csrf_token: str | None = Field(
        description="What a session's state-changing requests send as X-CSRF-Token "
        "(the pages have it in <meta name=csrf-token>); null for the bearer header"
    )
    expires_at: float | None = Field(
        description="Unix time the session ends at the latest (its idle limit may end it "
        "sooner); null for the bearer header"
    )


@router.get(
    "/api/v1/auth/session",
    summary="Who this request is signed in as, and its session's CSRF token",
    response_model=WhoAmI,
    responses=AUTH_RESPONSES,
    dependencies=[Depends(require_operator)],
)
async def whoami(request: Request, auth: AuthDep) -> WhoAmI:
    found: SignedIn | None = request.scope.get("state", {}).get(STATE_KEY)
    if found is None:
        return WhoAmI(user=TOKEN_USER, via="bearer", csrf_token=None, expires_at=None)
    s = found.session
    expires = min(s.created + auth.sessions.max_age_s, s.last_seen + auth.sessions.idle_s)
    return WhoAmI(
        user=s.user,
        via="session",
        csrf_token=auth.sessions.csrf_token(found.sid),
        expires_at=expires,
    )
