"""An agent keeps an idle connection open longer than the coordinator's client does, so a
command sent on a reused connection is never lost to the server closing it meanwhile."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from app.cli import SERVER_KEEP_ALIVE_S
from app.fleet.transport import CLIENT_KEEP_ALIVE_S
from tests.solo_agent import solo_agent

# uvicorn's own default closes an idle connection after 5 s; the coordinator's heartbeat
# and status polls come every 5 s, so a reused connection raced the close.
IDLE_S = 6.5


def _get_health(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: agent\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        piece = sock.recv(4096)
        if not piece:
            break
        answer += piece
    return answer


def test_an_idle_connection_outlives_the_clients_keep_alive(tmp_path: Path) -> None:
    assert CLIENT_KEEP_ALIVE_S < SERVER_KEEP_ALIVE_S
    with solo_agent(tmp_path) as agent:
        host, port = agent.client.base_url.host, agent.client.base_url.port
        assert port is not None
        with socket.create_connection((host, port), timeout=10) as sock:
            assert _get_health(sock).startswith(b"HTTP/1.1 200")
            time.sleep(IDLE_S)  # the idle time is what is tested: no condition to wait on
            second = _get_health(sock)
            assert second.startswith(b"HTTP/1.1 200"), second
