"""HTTP plumbing shared by both programs: bearer auth and error rendering."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


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


def check_bearer(
    request: Request, expected: Callable[[], list[str]], cookie: str | None = None
) -> None:
    """Accept the request when its bearer token (or ``cookie``) equals one of ``expected()``."""
    header = request.headers.get("authorization", "")
    if not header and cookie and request.cookies.get(cookie):
        header = f"Bearer {request.cookies[cookie]}"
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthorized("missing Authorization header: send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    if not any(secrets.compare_digest(token.encode(), e.encode()) for e in expected()):
        raise Unauthorized("the token is not valid for this server")


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
        codes = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
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


# Error responses documented on every protected route.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
    422: {"model": ErrorBody, "description": "The request body or parameters are invalid"},
}
