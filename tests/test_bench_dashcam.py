"""Benchmark 10 runs on its own at a tiny size and writes its summary row and section."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_quick_dashcam_bench_writes_its_row_and_section(tmp_path: Path) -> None:
    out = tmp_path / "dashcam.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.report_dashcam", "--quick", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = out.read_text()
    assert text.index("## Summary") < text.index("## 10. Dashcam ingest and rsync upload")
    assert re.search(
        r"\| dashcam ingest \+ rsync upload .* \| \d+\.\d\d \(\d+ vs \d+ MB/s", text
    ), text
    # three paths, each with a time, a throughput and CPU per GB on both ends
    rows = re.findall(
        r"^\| (?:ingest|plain|the same).* \| (\d+\.\d) ms \| (\d+) MB/s \| (\d+\.\d\d) \| (\d+\.\d\d) \|",
        text,
        re.M,
    )
    assert len(rows) == 3, text
    assert re.search(
        r"\| the same with the NAS hashing by openssl .* \| \d+\.\d\d \(\d+ MB/s\)", text
    )
    assert "staging empty after each round: yes" in text, text
    assert re.search(
        r"NAS's `sha256sum` over the same .* alone, in one call, took \d+\.\d ms", text
    ), text
