"""Benchmark 11 (one clock for the fleet) at a tiny size: the harness builds its namespaces,
shifts the clocks, runs both kinds of start, and leaves nothing behind; ``--only`` puts
one section into an existing report without touching the others."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import netns
from bench.only import merge, sections
from bench.report_sync import HEADING, ROW_PREFIX, sync_section, sync_summary_rows
from bench.summary import SummaryRow, summary_table
from bench.sync import run_sync, unavailable

OLD_DOC = "\n".join(
    [
        *summary_table(
            [
                SummaryRow("start skew, scheduled", "0.5 ms", "≤ 1 ms", True),
                SummaryRow(f"{ROW_PREFIX} old figure", "99 ms", "≤ 1 ms", False),
                SummaryRow("dashcam ingest + rsync upload", "0.3", "≥ 0.8", False),
            ]
        ),
        "## 10. Dashcam ingest and rsync upload over loopback ssh",
        "",
        "dashcam text stays",
        "",
        f"{HEADING}",
        "",
        "old sync text",
        "",
        "## 12. A later section",
        "",
        "later text stays",
    ]
)


def test_merge_replaces_only_the_section_and_its_rows() -> None:
    rows = [SummaryRow(f"{ROW_PREFIX} new figure", "0.4 ms", "≤ 1 ms", True)]
    body = [HEADING, "", "new sync text", ""]
    out = merge(OLD_DOC, sections()["sync"], rows, body)
    assert "old sync text" not in out and "new sync text" in out
    assert "old figure" not in out and f"| {ROW_PREFIX} new figure | 0.4 ms |" in out
    # the other rows and sections are kept, in their places
    assert (
        out.index("start skew, scheduled") < out.index("new figure") < out.index("dashcam ingest")
    )
    assert "dashcam text stays" in out and "later text stays" in out
    assert out.index("new sync text") < out.index("## 12. A later section")
    # a report without the section gets it at the end, and its rows at the table's end
    bare = OLD_DOC.replace(HEADING, "## 13. Something else")
    out = merge(bare.replace(f"{ROW_PREFIX} old figure", "x"), sections()["sync"], rows, body)
    assert out.rstrip().endswith("new sync text")
    assert out.index("dashcam ingest") < out.index("new figure") < out.index("## 10.")


@pytest.mark.slow
def test_tiny_sync_bench_is_well_formed(tmp_path: Path) -> None:
    why = unavailable()
    if why:
        pytest.skip(f"the sync bench cannot run here: {why}")
    result = run_sync(tmp_path, n=2, trials=2, lead_ms=800, settle_s=3)
    assert len(result.shifts_ns) == 2 and len(set(result.shifts_ns)) == 2
    # both shifts took: Python saw them exactly, chronyd over the clean path within 1 ms
    for want, seen, clean in zip(
        result.shifts_ns, result.probe_shifts_ns, result.clean_offsets_ns, strict=True
    ):
        assert abs(seen - want) < 200_000
        assert abs(clean - want) < 1_000_000
    assert [t.mode for t in result.trials].count("now") == 2
    assert [t.mode for t in result.trials].count("scheduled") == 2
    for trial in result.trials:
        assert len(trial.nodes) == 2
        for node in trial.nodes:
            assert node.offset_ns is not None and node.synchronized
            assert node.read_residual_ns is not None and node.bound_ns is not None
    covered, judged = result.coverage("bound")
    assert judged == 8 and 0 <= covered <= judged
    assert result.coverage("residual")[1] == 8
    assert result.corrected() is not None
    # every namespace of this run is gone
    assert result.leftover_namespaces == []
    assert not [x for x in netns.existing() if x.startswith(f"{netns.PREFIX}{os.getpid()}n")]
    text = "\n".join([*summary_table(sync_summary_rows(result)), *sync_section(result)])
    assert f"| {ROW_PREFIX} scheduled start spread p99, offset-corrected at N = 2" in text
    assert "| scheduled | 2 |" in text and "| now | 2 |" in text
    assert "covered the clock's true distance from fleet time" in text
