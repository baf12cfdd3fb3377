"""Browser sessions: an opaque id in the cookie, the server's table says whose it is.

Why a file and not the database: the table is small (capped), written only at a sign-in,
a sign-out, and at most once a minute per session as it is used; a file needs no schema
migration, and it stays on the coordinator's own disk when the database is a shared
PostgreSQL server. It lives under the data folder, 0600, written temp + fsync + rename,
so a coordinator restart keeps every session and a power cut leaves the old table or
the new one. The table holds only an HMAC of each session id under a server secret
(``session_secret``, 0600, made on the first start), so reading the table does not give
anyone a cookie. The same secret derives each session's CSRF token, so the token need
not be stored either.

Sessions end at an idle limit and an absolute limit (settings), and at sign-out, which
removes the entry: a copied cookie is refused afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from common.fsutil import atomic_write_bytes

log = logging.getLogger(__name__)

SECRET_FILE = "session_secret"
TABLE_FILE = "sessions.json"
MAX_SESSIONS = 1000  # the oldest is signed out when a new one would pass this


@dataclass
class Session:
    """One signed-in browser."""

    user: str
    created: float  # wall clock (seconds): the limits must survive a restart
    last_seen: float


def load_or_create_secret(data_dir: Path) -> bytes:
    """The server secret under ``data_dir``; made (32 random bytes, 0600) when absent."""
    path = data_dir / SECRET_FILE
    try:
        raw = path.read_bytes()
        if len(raw) >= 32:
            return raw
        log.warning("%s is shorter than 32 bytes; making a new one (sessions end)", path)
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    atomic_write_bytes(path, secret, mode=0o600)
    return secret


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SessionStore:
    """The sessions table: create at sign-in, look up on each request, revoke at sign-out."""

    def __init__(
        self,
        data_dir: Path,
        idle_s: float,
        max_age_s: float,
        clock: Callable[[], float] = time.time,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self.path = data_dir / TABLE_FILE
        self.secret = load_or_create_secret(data_dir)
        self.idle_s = idle_s
        self.max_age_s = max_age_s
        self.clock = clock
        self.max_sessions = max_sessions
        # last_seen is written back at most this often per session (a restart may see it
        # that much older, never newer)
        self.touch_every_s = min(60.0, idle_s / 4)
        self._lock = threading.Lock()
        self._table: dict[str, Session] = self._load()

    def _key(self, sid: str) -> str:
        return hmac.new(self.secret, b"session\0" + sid.encode(), hashlib.sha256).hexdigest()

    def _load(self) -> dict[str, Session]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            table = {k: Session(**v) for k, v in raw["sessions"].items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError) as err:
            log.warning("%s cannot be read (%s): every browser signs in again", self.path, err)
            return {}
        now = self.clock()
        return {k: s for k, s in table.items() if not self._expired(s, now)}

    def _save(self) -> None:
        body = {"sessions": {k: asdict(s) for k, s in self._table.items()}}
        atomic_write_bytes(self.path, json.dumps(body).encode(), mode=0o600)

    def _expired(self, s: Session, now: float) -> bool:
        return now - s.last_seen > self.idle_s or now - s.created > self.max_age_s

    def create(self, user: str) -> str:
        """A new session for ``user``; the returned id goes into the cookie."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._table = {k: s for k, s in self._table.items() if not self._expired(s, now)}
            while len(self._table) >= self.max_sessions:
                oldest = min(self._table, key=lambda k: self._table[k].last_seen)
                del self._table[oldest]
            self._table[self._key(sid)] = Session(user=user, created=now, last_seen=now)
            self._save()
        return sid

    def lookup(self, sid: str) -> Session | None:
        """The live session of ``sid`` (its idle clock restarted), or None."""
        if not sid or len(sid) > 128:
            return None
        key = self._key(sid)
        now = self.clock()
        with self._lock:
            found = self._table.get(key)
            if found is None:
                return None
            if self._expired(found, now):
                del self._table[key]
                self._save()
                return None
            if now - found.last_seen >= self.touch_every_s:
                found.last_seen = now
                self._save()
            return found

    def revoke(self, sid: str) -> bool:
        """Sign ``sid`` out; True when it was signed in."""
        with self._lock:
            gone = self._table.pop(self._key(sid), None)
            if gone is not None:
                self._save()
            return gone is not None

    def csrf_token(self, sid: str) -> str:
        """The CSRF token of the session ``sid``: what its page sends back on every change."""
        return _b64(hmac.new(self.secret, b"csrf\0" + sid.encode(), hashlib.sha256).digest())

    def csrf_ok(self, sid: str, presented: str | None) -> bool:
        if not presented:
            return False
        expected = self.csrf_token(sid).encode()
        return hmac.compare_digest(expected, presented.encode("utf-8", "surrogateescape"))

    def __len__(self) -> int:
        return len(self._table)
