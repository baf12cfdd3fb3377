"""Shared bench helpers: child processes, ports, statistics, a raw HTTP/1.1 client, the host."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import fcntl
import json
import math
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.demo import Child, clean_env, stop_all
from app.fleet.client import AgentClient, NodeAddress, NodeCall
from common.fsutil import atomic_write_bytes
from node_agent.schemas import StartRequest, StartResult, StopRequest, StopResult

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
# A path that is never an executable: agents then report "no clock" instead of polling chrony.
NO_CHRONYC = "/nonexistent/camfleet-bench/chronyc"

_PR_SET_PDEATHSIG = 1


class BenchError(Exception):
    """A benchmark could not be run (a process died, a node refused a command)."""


# -- child processes --------------------------------------------------------------------------


class Children:
    """Every child the bench started; ``stop`` ends them all (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.items: list[Child] = []

    def add(self, child: Child) -> Child:
        self.items.append(child)
        return child

    def stop(self, children: Sequence[Child] | None = None, timeout_s: float = 20.0) -> None:
        """Stop ``children`` (default: all still listed) and forget them."""
        targets = list(self.items if children is None else children)
        try:
            stop_all(targets, timeout_s=timeout_s)
        finally:
            for child in targets:
                if child.proc.poll() is None:  # stop_all raised half-way: be blunt
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.proc.wait(5)
                if child in self.items:
                    self.items.remove(child)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the bench process dies (Linux only)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn_process(name: str, argv: list[str], env: dict[str, str], log: Path, port: int) -> Child:
    """Start ``python <argv>`` in its own session, logging to ``log``, like app.demo.spawn.

    Unlike ``app.demo.spawn`` the child also gets SIGTERM if the bench itself is killed,
    so a crashed or interrupted bench leaves no agents behind.
    """
    return spawn_command(name, [sys.executable, *argv], env, log, port)


def spawn_command(name: str, argv: list[str], env: dict[str, str], log: Path, port: int) -> Child:
    """Start the program ``argv`` as ``spawn_process`` starts Python (own session, log,
    SIGTERM when the bench dies)."""
    full = clean_env() | env
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            env=full,
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # no threads run at this point
        )
    return Child(name, proc, port)


def spawn_agent(name: str, port: int, env: dict[str, str], log: Path) -> Child:
    """``python -m app.cli agent`` on 127.0.0.1:``port`` (what app.demo.spawn runs)."""
    full = env | {"CAMFLEET_HOST": LOOPBACK, "CAMFLEET_PORT": str(port)}
    return spawn_process(
        name, ["-m", "app.cli", "agent", "--log-level", "warning"], full, log, port
    )


def log_tail(path: Path, chars: int = 2000) -> str:
    """The end of a child's log, for error messages."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# -- ports ------------------------------------------------------------------------------------


@contextlib.contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold a lock shared by every process on this machine (``flock`` on a file in the
    temp folder): for what two runs side by side must not do at once, such as choosing
    an address range for network namespaces, or attaching and mounting loop devices."""
    path = Path(tempfile.gettempdir()) / f"camfleet-{name}.lock"
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Ports are drawn below Linux's ephemeral range (32768-60999 by default), so no outgoing
# connection takes one between the check here and the child's bind. Single ports come
# from 20000-31999, consecutive ranges from 10000-19999; under pytest-xdist each worker
# (PYTEST_XDIST_WORKER gw0, gw1, ..., inherited by the processes a test starts) draws from
# its own slice, so two workers never hand out the same port. A full run with two
# workers and ports from the kernel (bind to port 0) lost two tests to a port taken in
# between; none is lost this way.
SINGLE_PORTS = (20000, 32000)
RANGE_PORTS = (10000, 20000)
_handed: set[int] = set()


def _slice(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's part of ``[low, high)`` (all of it outside xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        index = int(worker.removeprefix("gw"))
    except ValueError:
        return low, high
    if count <= 1 or not 0 <= index < count:
        return low, high
    width = (high - low) // count
    return low + index * width, low + (index + 1) * width


def free_port() -> int:
    """A TCP port nobody listens on right now (see above where it comes from)."""
    low, high = _slice(*SINGLE_PORTS)
    for _ in range(500):
        port = random.randrange(low, high)
        if port in _handed:
            continue
        with socket.socket() as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
        _handed.add(port)
        return port
    raise BenchError(f"no free port found in {low}-{high - 1}")


def free_port_range(count: int, avoid: set[int] | None = None) -> int:
    """The first of ``count`` consecutive free ports, below the ephemeral range."""
    avoid = avoid or set()
    low, high = _slice(*RANGE_PORTS)
    for _ in range(200):
        base = random.randint(low, high - count)
        if any(p in avoid for p in range(base, base + count)):
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind((LOOPBACK, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise BenchError(f"no range of {count} free ports found")


# -- identifiers ------------------------------------------------------------------------------


def session_id(prefix: str) -> str:
    """A fresh session id: letters, digits and dashes only (no underscores)."""
    return f"{prefix}-{secrets.token_hex(4)}"


def command_id(session: str, verb: str, node_id: str) -> str:
    """A command id unique to one session, verb and node."""
    return f"{session}:{verb}:{node_id}"


# -- statistics -------------------------------------------------------------------------------


async def start_all(
    client: AgentClient, nodes: Sequence[NodeAddress], session: str, start_at_ns: int | None
) -> list[NodeCall[StartResult]]:
    """One start of ``session`` to every node at once, each with its own command id."""
    return await client.fan_out(
        nodes,
        lambda n: client.start(
            n,
            StartRequest(
                session_id=session,
                command_id=command_id(session, "start", n.node_id),
                start_at_ns=start_at_ns,
            ),
        ),
    )


async def stop_all_nodes(
    client: AgentClient, nodes: Sequence[NodeAddress], session: str, timeout_s: float
) -> list[NodeCall[StopResult]]:
    """One stop of ``session`` to every node at once."""
    return await client.fan_out(
        nodes,
        lambda n: client.stop(
            n,
            StopRequest(session_id=session, command_id=command_id(session, "stop", n.node_id)),
            timeout_s=timeout_s,
        ),
    )


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p % of the values <= it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    """The median (mean of the middle two for an even count)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


# -- machine and output -----------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """What the figures were measured on."""

    nproc: int
    cpu_model: str
    python: str
    platform: str
    date_utc: str


def cpu_model() -> str:
    """The CPU's 'model name' from /proc/cpuinfo (or what the platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> Machine:
    """Facts about this machine and interpreter, and the date."""
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count() or 1
    return Machine(
        nproc=nproc,
        cpu_model=cpu_model(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        date_utc=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file, fsync, rename), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))


def ms(value_ns_or_s: float, *, unit: str = "s", digits: int = 1) -> str:
    """Format a duration as '12.3 ms' from seconds (unit='s') or nanoseconds (unit='ns')."""
    if math.isnan(value_ns_or_s):
        return "n/a"
    value = value_ns_or_s * 1e3 if unit == "s" else value_ns_or_s / 1e6
    return f"{value:.{digits}f} ms"


def yes_no(met: bool) -> str:
    """How a target check reads in the tables."""
    return "**met**" if met else "**missed**"


# -- a minimal HTTP/1.1 client on raw asyncio streams -----------------------------------------


class RawConnection:
    """One persistent keep-alive connection to one node; one request at a time."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(
        self, method: str, path: str, body: object | None = None
    ) -> tuple[int, bytes]:
        """Send one request and read the whole response (status line, headers, body)."""
        if self.reader is not None and self.reader.at_eof():
            await self.aclose()  # the peer closed the idle connection: open a new one
        if self.reader is None or self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\n"
            "Accept: application/json\r\n"
        )
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self.writer.write(head.encode("latin-1") + b"\r\n" + payload)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "transfer-encoding":
                raise BenchError("the raw client reads Content-Length bodies only")
        return status, await self.reader.readexactly(length)

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def wait_listening(
    ports: Sequence[int], children: Sequence[Child], logs: Sequence[Path], timeout_s: float
) -> None:
    """Wait until ``GET /health`` answers 200 on every port; fail fast if a child exits."""
    deadline = time.monotonic() + timeout_s
    pending = set(ports)

    async def healthy(port: int) -> bool:
        conn = RawConnection(LOOPBACK, port, "")
        try:
            async with asyncio.timeout(2):
                status, _ = await conn.request("GET", "/health")
            return status == 200
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            return False
        finally:
            await conn.aclose()

    while pending:
        for child, log in zip(children, logs, strict=True):
            if child.proc.poll() is not None:
                raise BenchError(
                    f"{child.name} exited with code {child.proc.returncode}:\n{log_tail(log)}"
                )
        polled = sorted(pending)
        ready = await asyncio.gather(*(healthy(p) for p in polled))
        pending -= {p for p, ok in zip(polled, ready, strict=True) if ok}
        if pending and time.monotonic() > deadline:
            raise BenchError(f"{len(pending)} agents not healthy after {timeout_s:g} s")
        if pending:
            await asyncio.sleep(0.2)
