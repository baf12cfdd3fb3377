"""The retention planner's bench section runs at a tiny size and writes its figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.retention import retention_section, run_retention, synthetic_files
from bench.summary import retention_summary_rows

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_the_section_alone_runs_and_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.retention", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "## 8. The retention planner over 100,000 files" in out
    assert "1,000 synthetic recording descriptions" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "**" in line]
    assert len(rows) == 3, out
    for row in rows:
        assert re.search(r"\| \d+\.\d+ ms \| \d+\.\d+ ms \|", row), row
        assert "**met**" in row or "**missed**" in row


def test_the_figures_are_plans_of_deletable_files_only() -> None:
    result = run_retention(2_000, 3)
    assert result.files == 2_000 and result.offloaded == 1_000
    planned = {c.name: c.planned for c in result.cases}
    assert planned["delete every offloaded recording"] == 1_000
    assert 0 < planned["under the target: oldest offloaded until 15 % free"] < 1_000
    assert planned["room enough: nothing to delete"] == 0
    assert all(len(c.times_s) == 3 for c in result.cases)
    (row,) = retention_summary_rows(result)
    assert row.met is (result.worst_p95_ms < 100) and "2,000 files" in row.what
    text = "\n".join(retention_section(result))
    assert text.count("| ") >= 4 and re.search(r"\d+\.\d+ ms", text)
    files = synthetic_files(100)
    assert len({f.started_ns for f in files}) == 100 and sum(f.active for f in files) == 1
