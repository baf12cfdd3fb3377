"""The /metrics bench: both renderers see the same nodes, and the section reads right."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import FleetExposition, render
from bench.metrics_render import NaiveCollector, _fleet, metrics_section, run_metrics
from node_agent.settings import load_agent_settings
from node_agent.wiring import build_context

pytestmark = pytest.mark.slow


def node_values(text: str) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels["node"]): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name in ("camfleet_node_disk_free_bytes", "camfleet_node_clock_offset_seconds")
    }


def test_the_naive_and_the_real_render_carry_the_same_values(tmp_path: Path) -> None:
    status = build_context(load_agent_settings(data_dir=tmp_path / "agent")).status()
    fleet = _fleet(tmp_path, 30, status)
    naive = CollectorRegistry(auto_describe=False)
    naive.register(NaiveCollector(fleet))
    real = node_values(render(fleet.registry, FleetExposition(fleet.state)).decode())
    assert len(real) == 60
    assert real == node_values(generate_latest(naive).decode())


def test_the_section_has_every_size(tmp_path: Path) -> None:
    result = run_metrics(tmp_path, rounds=1)
    assert [f.nodes for f in result.figures] == [10, 100, 1000]
    assert all(f.real_ms > 0 and f.naive_ms > 0 for f in result.figures)
    assert result.figures[-1].body_bytes > 10 * result.figures[0].body_bytes
    assert result.lag_samples > 0
    text = "\n".join(metrics_section(result))
    assert text.startswith("## 12. ") and "| 1000 |" in text
