"""HTTP plumbing shared by both programs: bearer auth and error rendering."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ErrorBody(BaseModel):
    """Every 4xx/5xx either program answers carries this body."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(description="What went wrong and what to do about it.")
    code: str = Field(description="A stable machine-readable error code.")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="For 422: one entry per invalid field."
    )


class Unauthorized(HTTPException):
    """Missing or wrong bearer token."""

    def __init__(self, detail: str) -> None:
        super().__init__(401, detail, headers={"WWW-Authenticate": "Bearer"})


def bearer_problem(header: str | None, expected: list[str]) -> str | None:
    """Why a request's credentials are refused, or None when its token is one of ``expected``."""
    if not header:
        return "missing Authorization header: send 'Authorization: Bearer <token>'"
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return "the Authorization header must be 'Bearer <token>'"
    presented = token.encode("utf-8", "surrogateescape")
    if not any(secrets.compare_digest(presented, e.encode()) for e in expected):
        return "the token is not valid for this server"
    return None


def check_bearer(request: Request, expected: Callable[[], list[str]]) -> None:
    """Accept the request when its bearer token equals one of ``expected()``."""
    problem = bearer_problem(request.headers.get("authorization"), expected())
    if problem is not None:
        raise Unauthorized(problem)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def install_error_handlers(app: FastAPI, domain_error: type[Exception]) -> None:
    """Render domain errors, HTTP errors and validation errors as ``ErrorBody``."""

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 500)
        code = getattr(exc, "code", "error")
        body = ErrorBody(
            detail=getattr(exc, "message", str(exc)),
            code=code,
            errors=getattr(exc, "details", None),
        )
        return JSONResponse(body.model_dump(exclude_none=True), status_code=status)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {
            400: "bad_request",
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
        }
        body = ErrorBody(detail=str(exc.detail), code=codes.get(exc.status_code, "http_error"))
        return JSONResponse(
            body.model_dump(exclude_none=True),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = []
        for e in exc.errors():
            errors.append({"field": _field_path(e.get("loc", ())), "message": e.get("msg", "")})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        body = ErrorBody(
            detail=f"invalid request: {summary}", code="invalid_request", errors=errors
        )
        return JSONResponse(body.model_dump(exclude_none=True), status_code=422)

    app.add_exception_handler(domain_error, on_domain)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


# Answered by AuthGate before routing, to a request on any route that carries a body
# (even a GET), and by FastAPI for a body it cannot decode (400).
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "The body cannot be decoded, or its Content-Length is not a number",
    },
    408: {"model": ErrorBody, "description": "The body did not arrive in time"},
    413: {"model": ErrorBody, "description": "The body is larger than the route takes"},
}
# Error responses documented on every protected route: the token (401), the body's
# transport (BODY_RESPONSES) and the body's or parameters' content (422).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
    422: {"model": ErrorBody, "description": "The request body or parameters are invalid"},
    **BODY_RESPONSES,
}

# ``GET /metrics`` on both programs: Prometheus' text exposition, not JSON.
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format (text/plain; version=0.0.4)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
}


@dataclass(frozen=True)
class Refusal:
    """An answer the AuthGate gives instead of calling the app."""

    status: int
    detail: str
    code: str
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Guard:
    """What a route asks of a request before its body is read."""

    tokens: Callable[[], list[str]] | None  # None: public, no token asked
    # Asked instead of the token when the request has no Authorization header (a browser's
    # session cookie): None accepts the request, a Refusal is the answer.
    cookie_check: Callable[[Scope, Headers], Refusal | None] | None = None
    max_body_bytes: int = 64 * 1024


class AuthGate:
    """ASGI middleware: the token is checked before a byte of the body is read, and the body
    is read whole within a size cap (413) and a time limit (408) before the app sees it.

    Because it runs before routing, an unknown path, a wrong method or a trailing-slash
    redirect reveals nothing to a caller without a token: all of them are 401.
    """

    def __init__(
        self, app: ASGIApp, guard_for: Callable[[str, str], Guard], read_timeout_s: float = 10.0
    ) -> None:
        self.app = app
        self.guard_for = guard_for
        self.read_timeout_s = read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guard = self.guard_for(scope["method"], scope["path"])
        headers = Headers(scope=scope)
        if guard.tokens is not None:
            authorization = headers.get("authorization")
            if authorization is None and guard.cookie_check is not None:
                refusal = guard.cookie_check(scope, headers)
                if refusal is not None:
                    await _answer(
                        send, refusal.status, refusal.detail, refusal.code, refusal.headers
                    )
                    return
            else:
                problem = bearer_problem(authorization, guard.tokens())
                if problem is not None:
                    await _answer(
                        send, 401, problem, "unauthorized", {"WWW-Authenticate": "Bearer"}
                    )
                    return
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, "Content-Length is not a number", "bad_request")
                return
            if int(length) > guard.max_body_bytes:
                await _answer(send, 413, _too_large(guard), "body_too_large")
                return
        elif "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        body = bytearray()
        try:
            async with asyncio.timeout(self.read_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > guard.max_body_bytes:
                        await _answer(send, 413, _too_large(guard), "body_too_large")
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await _answer(
                send,
                408,
                f"the request body did not arrive within {self.read_timeout_s:g} s",
                "request_timeout",
            )
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def _too_large(guard: Guard) -> str:
    return f"the request body is larger than this route takes ({guard.max_body_bytes} bytes)"


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then whatever comes next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(
    send: Send, status: int, detail: str, code: str, headers: dict[str, str] | None = None
) -> None:
    payload = ErrorBody(detail=detail, code=code).model_dump_json(exclude_none=True).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
