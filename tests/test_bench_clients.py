"""The client-library benchmark runs at a tiny size and writes its section and summary rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.clients import MAIN_CLIENTS, Size, run_clients
from bench.common import Children, machine
from bench.report import render
from bench.run import QUICK

pytestmark = pytest.mark.slow

MAIN_HEADER = (
    "| N | served by | call | client | rounds | median | p90 | / raw | per node | extra per node |"
)
TUNING_HEADER = "| library | setting | rounds | median | p90 | / raw |"


def test_clients_bench_at_four_nodes_writes_its_section(tmp_path: Path) -> None:
    children = Children()
    try:
        result = run_clients(
            tmp_path,
            children,
            [Size(4, standin=False, tune=True), Size(4, standin=True)],
            status_rounds=2,
            start_rounds=2,
            budget_s=5.0,
            real_max=4,
        )
    finally:
        children.stop()
    text = render(machine(), QUICK, [], [], [], [], [], {}, 0.0, clients=result)

    section = text[text.index("## 6. HTTP client libraries") :]
    assert MAIN_HEADER in section, section
    assert TUNING_HEADER in section, section
    for served in ("real agents", "stand-ins"):
        for call in ("status", "start"):
            for client in MAIN_CLIENTS:
                row = re.compile(
                    rf"^\| 4 \| {served} \| {call} \| {re.escape(client)} \| 2 "
                    r"\| \d+\.\d ms \| \d+\.\d ms \| \d+\.\d\dx \| \d+ µs \| [+-]\d+ µs \|$",
                    re.MULTILINE,
                )
                assert row.search(section), f"no {served} {call} row for {client}:\n{section}"
    assert "Fastest aiohttp setting in this run" in section, section
    assert "Memory of the real agents" in section, section

    summary = text[text.index("## Summary") : text.index("## 1. Start skew")]
    assert "| what | this run | target | met? |" in summary, summary
    assert re.search(r"status fan-out, aiohttp / raw at 4 nodes \(real agents\) \| \d", summary)
    assert re.search(r"start fan-out, aiohttp / raw at 4 nodes \(real agents\) \| \d", summary)
    # the hook another benchmark fills in: present, and says it was not measured
    assert "/health latency p99 under 100 concurrent slow commands" in summary, summary
    assert "not measured in this run" in summary, summary
