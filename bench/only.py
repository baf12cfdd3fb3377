"""``make bench ONLY=<section>`` (``python -m bench.run --only <section>``): run one section
and put its figures into the existing report, leaving every other section as it is.

The section (from its heading to the next ``## `` heading) and its summary rows (those
whose first cell starts with one of the section's prefixes) are replaced; a section or
rows not yet in the report are added (the section at the end, the rows at the end of the
summary table). Without a report, the summary table and the section alone are written.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import BenchError, atomic_write_text
from bench.plan import Plan
from bench.sshd import SshdError
from bench.summary import SummaryRow, summary_table

Measured = tuple[list[SummaryRow], list[str], bool]  # rows, section lines, verified


@dataclass(frozen=True)
class Section:
    heading: str
    row_prefixes: tuple[str, ...]
    measure: Callable[[Plan, Path], Measured]


def _sync(plan: Plan, root: Path) -> Measured:
    from bench import report_sync as r

    result = r.measure(plan, root)
    return r.sync_summary_rows(result), r.sync_section(result), result.clean


def _offload(plan: Plan, root: Path) -> Measured:
    from bench import report_offload as r

    result = r._measure(plan, root)
    return r.offload_summary_rows(result), r.offload_section(result), result.verified


def _dashcam(plan: Plan, root: Path) -> Measured:
    from bench import report_dashcam as r
    from bench.dashcam import run_dashcam

    result = run_dashcam(root, plan.dashcam_files, plan.dashcam_file_mb, plan.dashcam_rounds)
    return r.dashcam_summary_rows(result), r.dashcam_section(result), result.verified


def _metrics(plan: Plan, root: Path) -> Measured:
    from bench import metrics_render as r

    return r.measure(plan, root)


def _idle(plan: Plan, root: Path) -> Measured:
    from bench import report_idle as r

    return r.measure(plan, root)


def sections() -> dict[str, Section]:
    from bench.idle import HEADING as IDLE
    from bench.idle import ROW_PREFIX as IDLE_ROWS
    from bench.metrics_render import HEADING as METRICS
    from bench.report_dashcam import HEADING as DASHCAM
    from bench.report_offload import HEADING as OFFLOAD
    from bench.report_sync import HEADING as SYNC
    from bench.report_sync import ROW_PREFIX

    return {
        "offload": Section(OFFLOAD, ("offload throughput",), _offload),
        "dashcam": Section(
            DASHCAM, ("dashcam ingest", "the same with the NAS hashing by openssl"), _dashcam
        ),
        "sync": Section(SYNC, (ROW_PREFIX,), _sync),
        "metrics": Section(
            METRICS, ("coordinator /metrics", "event loop lag while /metrics"), _metrics
        ),
        "idle": Section(IDLE, (IDLE_ROWS,), _idle),
    }


def _row_what(line: str) -> str:
    return line.strip().strip("|").split("|", 1)[0].strip()


def merge(doc: str, section: Section, rows: list[SummaryRow], body: list[str]) -> str:
    """``doc`` with ``section``'s summary rows and body replaced (or added)."""
    if not doc.strip():
        return "\n".join([*summary_table(rows), *body]).rstrip() + "\n"
    lines = doc.rstrip("\n").split("\n")
    new_rows = summary_table(rows)[6:-1]  # the table's data rows only
    # The summary table: the first table after "## Summary".
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Summary"), None)
    if start is None:
        raise BenchError("the report has no '## Summary' table to put the rows in")
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|---")) + 1
    end = first
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    table = lines[first:end]
    mine = [i for i, line in enumerate(table) if _row_what(line).startswith(section.row_prefixes)]
    at = mine[0] if mine else len(table)
    kept = [line for i, line in enumerate(table) if i not in mine]
    table = kept[:at] + new_rows + kept[at:]
    lines = lines[:first] + table + lines[end:]
    # The section: from its heading to the next "## " heading.
    number = section.heading.split(" ", 2)[1]  # "11."
    head = next((i for i, line in enumerate(lines) if line.startswith(f"## {number} ")), None)
    if head is None:
        lines += ["", *body]
    else:
        tail = next(
            (i for i in range(head + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        lines = lines[:head] + body + lines[tail:]
    return "\n".join(lines).rstrip() + "\n"


def run_only(name: str, plan: Plan, out: Path, *, strict: bool = True) -> int:
    """Measure one section and merge it into ``out``; 0 when verified (``strict``; else
    0 whenever it was measured: a full run reports a missed target, it does not fail)."""
    known = sections()
    if name not in known:
        print(f"unknown section {name!r}; known: {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    section = known[name]
    root = Path(tempfile.mkdtemp(prefix=f"camfleet-bench-{name}-"))
    try:
        rows, body, verified = section.measure(plan, root)
    except (BenchError, SshdError) as err:
        print(f"{name} bench failed: {err}", file=sys.stderr)
        print(f"data and logs kept in {root}", file=sys.stderr)
        return 1
    doc = out.read_text() if out.exists() else ""
    atomic_write_text(out, merge(doc, section, rows, body))
    print("\n".join(body), flush=True)
    print(f"section {name} written into {out}", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    return 0 if verified or not strict else 1
