"""`make bench` works: a --quick run writes the summary and every section with its figures."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    log = tmp_path / "bench.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            code = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # the bench stops its agents on SIGTERM
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(f"bench --quick took over 300 s:\n{log.read_text(errors='replace')}")
    printed = log.read_text(errors="replace")
    assert code == 0, printed
    text = out.read_text()
    for heading in (
        "## Summary",
        "## 1. Start skew",
        "## 2. Fan-out",
        "## 3. Checksum at stop",
        "## 4. Timelapse schedule",
        "## 5. Recording profiles",
        "## 6. HTTP client libraries",
        "## 7. The coordinator under slow node commands",
        "## 8. The retention planner over 100,000 files",
        "## 9. Offload over loopback",
        "## 10. Dashcam ingest and rsync upload over loopback ssh",
        "## 11. One clock for the fleet",
        "## 12. The coordinator's /metrics at 10, 100 and 1000 nodes",
        "## 13. The agent at idle: CPU and memory",
    ):
        assert heading in text, f"{heading!r} missing from:\n{text}"
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    assert len(sections) == 13 + 1, text  # the summary, then the thirteen benchmarks
    assert text.index("## Summary") < text.index("| machine |"), "the summary opens the file"
    for section in sections:
        # a time in ms, or (the agent at idle) a memory in MB
        assert re.search(r"\d+\.\d+ (ms|MB)", section), f"no figure in ms or MB in:\n{section}"
    assert "nproc" in text and "Python" in text, text
    assert "**met**" in text or "**missed**" in text, text
    # the sha256 is the file's
    assert "DIFFERS" not in printed and "| NO |" not in text, printed + text
    assert not list(tmp_path.glob(".bench.md.tmp-*"))  # the atomic write left no temp file
