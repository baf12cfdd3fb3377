"""A local HTTP receiver standing in for Telegram's Bot API, a Discord webhook and a
generic webhook: a real server on 127.0.0.1 that keeps every POST it gets.

``mode`` is what it does with the next requests: ``"ok"`` answers 200 with
``{"ok": true}`` (Telegram's shape), ``"hang"`` accepts the request and never answers
(until the receiver is closed), an integer answers that status.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One POST: its path and JSON body, and when it arrived (monotonic)."""

    path: str
    body: dict[str, Any]
    at: float


class Receiver:
    """The server and what it received (see the module docstring)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.mode: str | int = "ok"
        self._lock = threading.Condition()
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                mode = outer.mode
                if mode == "hang":
                    outer._release.wait(60)
                    return
                with outer._lock:
                    outer.received.append(Received(self.path, body, time.monotonic()))
                    outer._lock.notify_all()
                status = mode if isinstance(mode, int) else 200
                data = json.dumps({"ok": status == 200}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Received]:
        """Wait until ``count`` POSTs arrived; all of them."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.received)} of {count} notifications arrived: {self.received}"
                    )
                self._lock.wait(left)
            return list(self.received)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        """The bodies POSTed to ``path``."""
        with self._lock:
            return [r.body for r in self.received if r.path == path]

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
