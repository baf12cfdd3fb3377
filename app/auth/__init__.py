"""Who may use the coordinator: the operator token (scripts, and a sign-in secret on the
page), user names with Argon2 password hashes, browser sessions, CSRF, failed-login limits.

A request is authenticated in one of two ways, both checked by the AuthGate before the
body is read:

- ``Authorization: Bearer <operator token>``: scripts, the CLI, curl. No ambient
  credential, so no CSRF token is asked.
- the ``camfleet_session`` cookie (HttpOnly, SameSite=Strict) of a signed-in browser. A
  state-changing request (POST, PUT, PATCH, DELETE) must also carry the session's CSRF
  token in ``X-CSRF-Token`` (the page's fetches) or, for the sign-out form, a
  ``csrf_token`` field.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import Scope

from app.auth.limiter import FailureLimiter
from app.auth.sessions import Session, SessionStore
from app.settings import CoordinatorSettings
from common.http import Refusal

SESSION_COOKIE = "camfleet_session"
CSRF_HEADER = "x-csrf-token"
# What a session made by the operator token is called (no user name can look like it).
TOKEN_USER = "(operator token)"
STATE_KEY = "camfleet_session"  # scope["state"][STATE_KEY]: the request's SignedIn
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

NO_CREDENTIALS = (
    "missing Authorization header: send 'Authorization: Bearer <token>', "
    "or sign in at /login in a browser"
)
SESSION_ENDED = "your session has ended (signed out or expired): sign in again at /login"
CSRF_REFUSED = (
    "refused: this change carries no valid CSRF token (the X-CSRF-Token header, or the "
    "csrf_token form field). Reload the page and try again; scripts use "
    "'Authorization: Bearer <token>' instead of the cookie."
)


@dataclass(frozen=True)
class SignedIn:
    """A request's browser session."""

    sid: str
    session: Session


class Auth:
    """The coordinator's sign-in state: sessions, password checks, failure limits."""

    def __init__(self, settings: CoordinatorSettings) -> None:
        self.settings = settings
        self.sessions = SessionStore(
            settings.data_dir, settings.session_idle_timeout_s, settings.session_max_age_s
        )
        self.by_address = FailureLimiter(settings.login_max_failures, settings.login_window_s)
        self.by_user = FailureLimiter(settings.login_max_failures_per_user, settings.login_window_s)
        self.hasher = PasswordHasher()
        self._dummy_hash: str | None = None

    # -- credentials -------------------------------------------------------------------

    def token_ok(self, token: str) -> bool:
        expected = self.settings.operator_token.get_secret_value().encode()
        return hmac.compare_digest(token.encode("utf-8", "surrogateescape"), expected)

    def _password_ok(self, user: str, password: str) -> bool:
        hashed = self.settings.users.get(user)
        if hashed is None:
            # as slow as a real check, so the answer's time does not tell which names exist
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash("not a password of anyone")
            target, known = self._dummy_hash, False
        else:
            target, known = hashed.get_secret_value(), True
        try:
            return self.hasher.verify(target, password) and known
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def password_ok(self, user: str, password: str) -> bool:
        """Argon2 takes a good fraction of a second: off the event loop."""
        return await asyncio.to_thread(self._password_ok, user, password)

    def retry_after(self, address: str, user: str | None) -> int | None:
        """Seconds this address (or user name) must wait before another sign-in, or None."""
        waits = [self.by_address.retry_after(address)]
        if user is not None:
            waits.append(self.by_user.retry_after(user))
        found = [w for w in waits if w is not None]
        return max(found) if found else None

    def failed(self, address: str, user: str | None) -> None:
        self.by_address.fail(address)
        if user is not None:
            self.by_user.fail(user)

    def succeeded(self, address: str, user: str | None) -> None:
        self.by_address.reset(address)
        if user is not None:
            self.by_user.reset(user)

    # -- sessions ----------------------------------------------------------------------

    def signed_in(self, scope: Scope) -> SignedIn | None:
        """The live session of the request's cookie, or None."""
        raw = Headers(scope=scope).get("cookie")
        sid = cookie_parser(raw).get(SESSION_COOKIE, "") if raw else ""
        if not sid:
            return None
        session = self.sessions.lookup(sid)
        return None if session is None else SignedIn(sid, session)

    def cookie_check(self, scope: Scope, headers: Headers) -> Refusal | None:
        """For the AuthGate, when a request has no Authorization header: its session and,
        when it changes something, its CSRF token. Accepted: the session goes into
        ``scope["state"]``."""
        has_cookie = SESSION_COOKIE in cookie_parser(headers.get("cookie", ""))
        found = self.signed_in(scope)
        if found is None:
            detail = SESSION_ENDED if has_cookie else NO_CREDENTIALS
            return Refusal(401, detail, "unauthorized", {"WWW-Authenticate": "Bearer"})
        if scope["method"] not in SAFE_METHODS and not self.sessions.csrf_ok(
            found.sid, headers.get(CSRF_HEADER)
        ):
            return Refusal(403, CSRF_REFUSED, "csrf_failed")
        scope.setdefault("state", {})[STATE_KEY] = found
        return None
