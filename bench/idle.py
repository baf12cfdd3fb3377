"""``make bench ONLY=idle``: one real agent's CPU and memory while its camera is idle
(measured here; ``bench.report_idle`` writes the section).

The agent (``python -m app.cli agent``, as systemd starts ``camfleet agent``) runs with
metrics (a scrape token), the status file (under the bench's folder) and notifications
(a webhook and the daily summary, pointed at a local receiver) on, the synthetic camera
at 1280x720 (the demo's size) and the settings' defaults otherwise. Once it answers
``/health`` the bench samples ``/proc/<pid>`` once a second for a window without any
request, then for a window with a ``GET /metrics`` every 15 s, as Prometheus would.
CPU is the agent's utime + stime over the window as a share of one core; memory is
``VmRSS`` and, from ``smaps_rollup``, PSS and USS (private pages).

Where the memory goes is measured beside it: the RSS each heavy library adds to a bare
interpreter (each in its own fresh interpreter), the encoder warm-up's cost, the split
of the agent's pages into file-backed (shared libraries) and anonymous (the Python
heap), and tracemalloc's view of the Python heap of an agent at idle (``bench.idle_trace``).
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    LOOPBACK,
    NO_CHRONYC,
    REPO_ROOT,
    BenchError,
    Children,
    free_port,
    log_tail,
    spawn_agent,
)

HEADING = "## 13. The agent at idle: CPU and memory"
ROW_PREFIX = "agent at idle"
CPU_TARGET_PCT = 1.0
RSS_TARGET_MB = 60.0
SCRAPE_INTERVAL_S = 15.0
WIDTH, HEIGHT, FPS = 1280, 720, 30.0
MB = 1024 * 1024

# Libraries measured one by one in a fresh interpreter: (module, what the agent uses it for).
# Libraries measured in a fresh interpreter each, and (those the agent imports, in this
# order) one after another in one interpreter: (module, what the agent uses it for, whether
# the agent imports it at start).
LIBRARIES: tuple[tuple[str, str, bool], ...] = (
    ("asyncio", "the event loop (stdlib; it imports ssl)", True),
    ("ssl", "https: Telegram, an https coordinator (stdlib and libssl)", True),
    ("pydantic", "settings and schemas", True),
    ("pydantic_settings", "settings", True),
    ("fastapi", "the HTTP API", True),
    ("uvicorn", "the HTTP server", True),
    ("httpx", "coordinator link, notifications (imports its CLI: rich, click, pygments)", True),
    ("prometheus_client", "/metrics", True),
    ("yaml", "the settings file", True),
    ("astral", "sunrise and sunset", True),
    ("cryptography.hazmat.primitives.asymmetric.ed25519", "the node's identity key", True),
    ("numpy", "synthetic and picamera2 frames, tones, audio track", True),
    ("av", "encoder, camera frames (and the warm-up at start)", True),
    ("node_agent.main", "the agent's own modules (about 400), on top of the above", True),
    ("app.cli", "the camfleet command's parser (the operator commands' modules)", True),
    ("PIL.Image", "timelapse render, in its child process only", False),
    ("sqlmodel", "the coordinator only", False),
    ("zeroconf", "not used", False),
)

_CHAIN_PROBE = """
import importlib, json, sys
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
out = [rss()]
for name in sys.argv[1:]:
    importlib.import_module(name)
    out.append(rss())
print(json.dumps(out))
"""

_IMPORT_PROBE = """
import importlib, json, sys, time
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
before, n = rss(), len(sys.modules)
t0 = time.perf_counter()
try:
    importlib.import_module(sys.argv[1])
except ImportError as err:
    print(json.dumps({"error": str(err)}))
    raise SystemExit(0)
ms = (time.perf_counter() - t0) * 1000
print(json.dumps({"bare": before, "rss": rss() - before, "ms": ms,
                  "modules": len(sys.modules) - n}))
"""

_WARM_PROBE = """
import json, sys, threading, time
def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
import node_agent.main
from node_agent.recorder.writer import warm_up_encoder
from node_agent.settings import Profile
profile = Profile(width=int(sys.argv[1]), height=int(sys.argv[2]), fps=float(sys.argv[3]))
before = rss()
out = {}
def warm():
    t0 = time.perf_counter()
    out["encoder"] = warm_up_encoder(profile, profile.bitrate_bps)
    out["ms"] = (time.perf_counter() - t0) * 1000
# In a worker thread, as the agent's lifespan runs it (asyncio.to_thread).
t = threading.Thread(target=warm)
t.start()
t.join()
out["rss"] = rss() - before
print(json.dumps(out))
"""


@dataclass
class Sample:
    at_s: float
    rss: int
    pss: int
    uss: int


@dataclass
class Window:
    """One measuring window: with scrapes every ``scrape_s`` or none."""

    scrape_s: float | None
    seconds: float
    cpu_pct: float
    children_cpu_pct: float
    samples: list[Sample]
    scrapes: int
    scrape_bytes: int = 0

    def rss_mb(self, what: str = "rss", how: str = "median") -> float:
        values: list[int] = [getattr(s, what) for s in self.samples]
        value = statistics.median(values) if how == "median" else max(values)
        return float(value) / MB


@dataclass
class ImportCost:
    module: str
    use: str
    rss_mb: float | None  # alone in a fresh interpreter; None: not installed
    ms: float
    modules: int
    added_mb: float | None = None  # after the rows above, in the agent's order


@dataclass
class IdleResult:
    seconds: float
    start_rss_mb: float
    start_pss_mb: float
    windows: list[Window]
    file_mb: float  # RSS of file-backed pages (shared libraries, mapped files)
    anon_mb: float  # RSS of anonymous pages (the Python heap, native buffers)
    threads: int
    bare_mb: float  # a bare interpreter's RSS
    imports: list[ImportCost]
    warm_mb: float
    warm_ms: float
    warm_encoder: str
    traced_mb: float
    traced: list[tuple[str, float]]  # (group, MB) of the Python heap, largest first
    alerts: int  # requests the notification receiver got
    loaded: dict[str, bool]  # which of bench.idle_trace.WATCHED the idle agent has imported
    status_fields: list[str] = field(default_factory=list)

    @property
    def quiet(self) -> Window:
        return self.windows[0]

    @property
    def scraped(self) -> Window:
        return self.windows[-1]


# -- /proc --------------------------------------------------------------------------------------


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime + stime, cutime + cstime) of ``pid`` in clock ticks."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)"
    # fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def rollup(pid: int) -> dict[str, int]:
    """``/proc/<pid>/smaps_rollup`` in bytes (Rss, Pss, Private_Clean, ...)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            out[key.strip()] = int(parts[0]) * 1024
    return out


def sample(pid: int, at_s: float) -> Sample:
    r = rollup(pid)
    return Sample(at_s, r["Rss"], r["Pss"], r["Private_Clean"] + r["Private_Dirty"])


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


# -- the notification receiver --------------------------------------------------------------------


class Receiver:
    """A local webhook that answers 200 and counts what it got."""

    def __init__(self) -> None:
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the agent -------------------------------------------------------------------------------


def agent_env(root: Path, token: str, scrape_token: str, hook: str) -> dict[str, str]:
    """An agent with metrics, status file and notifications on, the synthetic camera."""
    return {
        "CAMFLEET_NODE_ID": "idle-agent",
        "CAMFLEET_CAM_ID": "CAM_IDLE",
        "CAMFLEET_DATA_DIR": str(root / "data"),
        "CAMFLEET_API_TOKEN": token,
        "CAMFLEET_CHRONYC_PATH": NO_CHRONYC,  # no chronyd here: the clock reads "none"
        "CAMFLEET_GATES__CLOCK_POLICY": "warn",
        "CAMFLEET_CAMERA__SOURCE": "synthetic",
        "CAMFLEET_CAMERA__WIDTH": str(WIDTH),
        "CAMFLEET_CAMERA__HEIGHT": str(HEIGHT),
        "CAMFLEET_CAMERA__FPS": str(FPS),
        "CAMFLEET_STATUS_FILE": str(root / "run" / "status.json"),
        "CAMFLEET_METRICS__ENABLED": "true",
        "CAMFLEET_METRICS__TOKEN": scrape_token,
        "CAMFLEET_NOTIFICATIONS__WEBHOOK_URL": hook,
        "CAMFLEET_NOTIFICATIONS__DAILY_SUMMARY": "true",
    }


def wait_health(port: int, child_alive: Any, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child_alive():
            raise BenchError(f"the idle agent exited:\n{log_tail(log)}")
        try:
            if httpx.get(f"http://{LOOPBACK}:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise BenchError(f"the idle agent did not answer /health in {timeout_s:g} s")


def measure_window(
    pid: int, seconds: float, scrape_s: float | None, client: httpx.Client | None
) -> Window:
    """Sample ``pid`` once a second for ``seconds``; scrape /metrics every ``scrape_s``."""
    tick = os.sysconf("SC_CLK_TCK")
    samples: list[Sample] = []
    scrapes = body = 0
    t0 = time.monotonic()
    own0, kids0 = cpu_ticks(pid)
    next_scrape = t0 if scrape_s else None
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        if next_scrape is not None and client is not None and now >= next_scrape:
            answer = client.get("/metrics")
            if answer.status_code != 200:
                raise BenchError(f"/metrics answered {answer.status_code}: {answer.text[:200]}")
            scrapes += 1
            body = len(answer.content)
            assert scrape_s is not None
            next_scrape += scrape_s
        samples.append(sample(pid, now - t0))
        time.sleep(max(0.0, min(1.0, seconds - (time.monotonic() - t0))))
    elapsed = time.monotonic() - t0
    own1, kids1 = cpu_ticks(pid)
    samples.append(sample(pid, elapsed))
    return Window(
        scrape_s,
        elapsed,
        (own1 - own0) / tick / elapsed * 100,
        (kids1 - kids0) / tick / elapsed * 100,
        samples,
        scrapes,
        body,
    )


# -- where the memory goes ---------------------------------------------------------------------


def _probe(code: str, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_costs() -> tuple[float, list[ImportCost]]:
    """Each library's RSS over a bare interpreter (each in a fresh one), and what each of
    the agent's adds after the ones before it; the bare interpreter's RSS."""
    costs = []
    bare: list[int] = []
    for module, use, _ in LIBRARIES:
        got = _probe(_IMPORT_PROBE, module)
        if "error" in got:
            costs.append(ImportCost(module, use, None, 0.0, 0))
            continue
        bare.append(got["bare"])
        costs.append(ImportCost(module, use, got["rss"] / MB, got["ms"], got["modules"]))
    chain = [m for m, _, ours in LIBRARIES if ours]
    steps = _probe(_CHAIN_PROBE, *chain)
    added = {m: (steps[i + 1] - steps[i]) / MB for i, m in enumerate(chain)}
    for cost in costs:
        cost.added_mb = added.get(cost.module)
    return (statistics.median(bare) / MB if bare else 0.0), costs


def warm_cost() -> tuple[float, float, str]:
    """(MB, ms, encoder) of the encoder warm-up after the agent's imports."""
    got = _probe(_WARM_PROBE, str(WIDTH), str(HEIGHT), str(FPS))
    return got["rss"] / MB, got["ms"], got["encoder"]


def traced_heap(
    root: Path, env: dict[str, str], after_s: float
) -> tuple[float, list[Any], dict[str, bool]]:
    """tracemalloc's view of an idle agent's Python heap (``bench.idle_trace``)."""
    port = free_port()
    out = root / "trace.json"
    full = env | {
        "CAMFLEET_HOST": LOOPBACK,
        "CAMFLEET_PORT": str(port),
        "CAMFLEET_DATA_DIR": str(root / "trace-data"),
        "CAMFLEET_STATUS_FILE": str(root / "run" / "trace-status.json"),
    }
    log = root / "trace.log"
    with open(log, "ab") as sink:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.idle_trace", "--after", str(after_s), "--out", str(out)],
            env={k: v for k, v in os.environ.items() if not k.startswith("CAMFLEET_")} | full,
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            timeout=after_s + 120,
        )
    # uvicorn re-raises the SIGTERM it handled once the agent has stopped: exit -15.
    if proc.returncode not in (0, -15) or not out.exists():
        raise BenchError(f"the traced agent failed ({proc.returncode}):\n{log_tail(log)}")
    got = json.loads(out.read_text())
    return got["total"] / MB, [(g, b / MB) for g, b in got["groups"]], got["loaded"]


def run_idle(root: Path, seconds: float, trace_after_s: float = 8.0) -> IdleResult:
    """Start the agent, measure both windows, then where its memory goes."""
    root.mkdir(parents=True, exist_ok=True)
    token, scrape_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    receiver = Receiver()
    children = Children()
    port = free_port()
    log = root / "agent.log"
    env = agent_env(root, token, scrape_token, receiver.url)
    try:
        child = children.add(spawn_agent("idle-agent", port, env, log))
        pid = child.proc.pid
        wait_health(port, lambda: child.proc.poll() is None, log)
        start = rollup(pid)
        time.sleep(2.0)  # the start-up's last steps (status file, first housekeeping round)
        with httpx.Client(
            base_url=f"http://{LOOPBACK}:{port}",
            headers={"Authorization": f"Bearer {scrape_token}"},
            timeout=30,
        ) as client:
            quiet = measure_window(pid, seconds, None, None)
            scraped = measure_window(pid, seconds, SCRAPE_INTERVAL_S, client)
        parts = rollup(pid)
        threads = threads_of(pid)
        status_path = root / "run" / "status.json"
        fields = sorted(json.loads(status_path.read_text())) if status_path.exists() else []
    finally:
        children.stop()
        receiver.close()
    bare, imports = import_costs()
    warm_mb, warm_ms, encoder = warm_cost()
    traced_mb, traced, loaded = traced_heap(root, env, trace_after_s)
    return IdleResult(
        seconds=seconds,
        start_rss_mb=start["Rss"] / MB,
        start_pss_mb=start["Pss"] / MB,
        windows=[quiet, scraped],
        file_mb=parts.get("Pss_File", 0) / MB,
        anon_mb=parts.get("Pss_Anon", 0) / MB,
        threads=threads,
        bare_mb=bare,
        imports=imports,
        warm_mb=warm_mb,
        warm_ms=warm_ms,
        warm_encoder=encoder,
        traced_mb=traced_mb,
        traced=traced,
        alerts=receiver.count,
        loaded=loaded,
        status_fields=fields,
    )


# -- the report -------------------------------------------------------------------------------
