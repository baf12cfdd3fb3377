"""The idle-agent bench: a real agent measured for a few seconds, and a section that reads right."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import REPO_ROOT
from bench.idle import HEADING, ROW_PREFIX, cpu_ticks, rollup, run_idle
from bench.only import merge, sections
from bench.report_idle import idle_section, idle_summary_rows


def test_proc_readers_see_this_process() -> None:
    own, _ = cpu_ticks(os.getpid())
    assert own > 0  # pytest itself has used CPU by now
    parts = rollup(os.getpid())
    assert parts["Rss"] >= parts["Pss"] > 0
    assert parts["Private_Clean"] + parts["Private_Dirty"] <= parts["Rss"]


def test_the_agent_does_not_load_pil_at_start() -> None:
    # PIL is for the timelapse render, which runs in a child process of its own.
    code = "import sys, node_agent.main; print('PIL' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_a_short_idle_run_has_every_figure(tmp_path: Path) -> None:
    result = run_idle(tmp_path, seconds=2.0, trace_after_s=1.0)
    assert [w.scrape_s for w in result.windows] == [None, 15.0]
    assert result.windows[0].scrapes == 0 and result.windows[1].scrapes == 1
    assert result.windows[1].scrape_bytes > 1000
    for w in result.windows:
        assert w.cpu_pct >= 0 and w.children_cpu_pct >= 0
        assert len(w.samples) >= 2
        assert all(s.rss >= s.uss > 0 and s.pss > 0 for s in w.samples)
    assert result.start_rss_mb > result.bare_mb > 0
    assert result.file_mb > 0 and result.anon_mb > 0 and result.threads > 1
    # The agent's status file was written (metrics, status file and notifications on).
    assert {"device_id", "status", "recording"} <= set(result.status_fields)
    by_module = {c.module: c for c in result.imports}
    assert by_module["av"].rss_mb is not None and by_module["av"].rss_mb > 0
    assert by_module["node_agent.main"].added_mb is not None
    assert by_module["PIL.Image"].added_mb is None  # not imported by the agent
    assert result.warm_ms > 0 and result.warm_encoder
    assert result.traced_mb > 0 and result.traced[0][1] > 0

    rows = idle_summary_rows(result)
    assert [r.what.startswith(ROW_PREFIX) for r in rows] == [True, True]
    body = idle_section(result)
    text = "\n".join(body)
    assert text.startswith(HEADING) and "| `av` |" in text and "Where it goes" in text

    # ONLY=idle merges the rows into the summary and the section at the end.
    doc = "# Benchmarks\n\n## Summary\n\n| what | this run | target | met? |\n|---|---|---|---|\n"
    doc += "| other | 1 | 2 | - |\n\n## 12. Other\n\nold\n"
    merged = merge(doc, sections()["idle"], rows, body)
    assert merged.index("| other |") < merged.index(f"| {ROW_PREFIX}: CPU")
    assert merged.index("## 12. Other") < merged.index(HEADING)
