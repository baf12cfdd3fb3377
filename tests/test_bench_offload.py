"""Benchmark 9 runs on its own at a tiny size and writes its summary row and section."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_quick_offload_bench_writes_its_row_and_section(tmp_path: Path) -> None:
    out = tmp_path / "offload.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.report_offload", "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = out.read_text()
    assert text.index("## Summary") < text.index("## 9. Offload over loopback")
    assert re.search(r"\| offload throughput, .* \| \d+\.\d\d \(", text), text
    # four copiers, each with a time, a throughput and CPU per GB
    rows = re.findall(
        r"^\| (?:offload|plain|camfleet).* \| (\d+\.\d) ms \| (\d+) MB/s \|", text, re.M
    )
    assert len(rows) == 4, text
    assert "every recording confirmed to its node: yes" in text, text
