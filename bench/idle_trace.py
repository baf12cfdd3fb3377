"""``python -m bench.idle_trace --after S --out PATH``: an agent with tracemalloc on.

Runs ``camfleet agent`` in this process (settings from the ``CAMFLEET_*`` environment,
as ``bench.idle`` sets them) with tracemalloc tracing from the first import, waits
until ``/health`` answers and ``S`` seconds more, writes the traced Python heap grouped
by the file that allocated it as JSON to ``PATH``, and stops the agent (SIGTERM).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path

CODE = "module code (the import system)"
# Modules whose presence at idle the report states (loaded at start or not).
WATCHED = ("av", "numpy", "PIL", "node_agent.camera.synthetic", "picamera2", "rich", "sqlmodel")


def group_of(filename: str) -> str:
    """A package, our own top folder, a stdlib module, or the import system."""
    if filename.startswith("<frozen importlib"):
        return CODE
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for ours in ("node_agent", "common", "app"):
        if f"/{ours}/" in filename:
            return ours + "/" + filename.split(f"/{ours}/", 1)[1].split("/", 1)[0]
    if "/python3" in filename:
        rest = filename.split("/python3", 1)[1].split("/", 1)[-1]
        return "stdlib " + rest.split("/", 1)[0].removesuffix(".py")
    return filename


def snapshot_groups() -> tuple[int, list[tuple[str, int]]]:
    """(total bytes, [(group, bytes)] largest first) of the traced heap now."""
    by: collections.Counter[str] = collections.Counter()
    for stat in tracemalloc.take_snapshot().statistics("filename"):
        by[group_of(stat.traceback[0].filename)] += stat.size
    return sum(by.values()), by.most_common()


def watch(port: int, after_s: float, out: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    time.sleep(after_s)
    total, groups = snapshot_groups()
    loaded = {name: name in sys.modules for name in WATCHED}
    out.write_text(json.dumps({"total": total, "groups": groups, "loaded": loaded}))
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_trace", description=__doc__)
    parser.add_argument("--after", type=float, default=8.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    tracemalloc.start(1)
    port = int(os.environ["CAMFLEET_PORT"])
    threading.Thread(target=watch, args=(port, args.after, args.out), daemon=True).start()
    from app.cli import main as camfleet

    return camfleet(["agent", "--log-level", "warning"])


if __name__ == "__main__":
    raise SystemExit(main())
