"""The operator's pages: HTML files under ``static/`` served to a signed-in browser.

Every page is a small static document plus ``common.js``/``common.css`` (vendored: the
dashboard must work at a field with no internet). The server fills three placeholders:
``{{head}}`` (what every page's <head> starts with: the meta tags and the shared assets),
``{{csrf_token}}`` (the token every state-changing fetch or form sends back) and
``{{page_data}}`` (a JSON value the page's script reads, HTML-escaped).
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

from fastapi.responses import HTMLResponse, Response

STATIC = files("app.web") / "static"
# What the browser may fetch from /static/: nothing else is served from the folder.
ASSET_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


@cache
def template(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


# What every page's <head> starts with: ``{{head}}`` in the file.
HEAD = """<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="csrf-token" content="{{csrf_token}}">
<meta name="page-data" content="{{page_data}}">
<link rel="stylesheet" href="/static/common.css">
<script src="/static/common.js"></script>"""


def render(name: str, csrf_token: str, page_data: Any = None) -> HTMLResponse:
    """The page ``name`` with its placeholders filled; never cached by the browser."""
    body = template(name).replace("{{head}}", HEAD, 1)
    body = body.replace("{{csrf_token}}", html.escape(csrf_token, quote=True))
    body = body.replace("{{page_data}}", html.escape(json.dumps(page_data), quote=True))
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def asset(name: str) -> Response | None:
    """A vendored asset by its bare file name, or None when there is no such asset."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in ASSET_TYPES:
        return None
    path = STATIC / name
    if not path.is_file():
        return None
    return Response(
        path.read_bytes(),
        media_type=ASSET_TYPES[suffix],
        headers={"Cache-Control": "private, max-age=300"},
    )


# GET paths that are pages: they send a browser with no session to /login (which needs
# none), so the token middleware lets them through and the route itself decides.
_PAGE_PATH = re.compile(
    r"^/(|login|docs|sessions|recordings|sessions/[^/]{1,64}|nodes/[^/]{1,64}/(settings|live))$"
)


def is_page(path: str) -> bool:
    return _PAGE_PATH.match(path) is not None
