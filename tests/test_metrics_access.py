"""Who may read /metrics: the own token, the scrape token, everyone (public), nobody (off)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError

from app.main import create_app as create_coordinator
from app.settings import CoordinatorSettings
from common.metrics_access import MetricsSettings
from node_agent.main import create_app as create_agent
from node_agent.settings import AgentSettings, CameraSettings, GateSettings

OWN = secrets.token_urlsafe(24)
SCRAPE = secrets.token_urlsafe(24)


def coordinator(data_dir: Path, metrics: MetricsSettings) -> FastAPI:
    return create_coordinator(
        CoordinatorSettings(
            operator_token=SecretStr(OWN),
            fleet_token=SecretStr(secrets.token_urlsafe(24)),
            data_dir=data_dir,
            poll_interval_s=3600,
            metrics=metrics,
        )
    )


def agent(data_dir: Path, metrics: MetricsSettings) -> FastAPI:
    return create_agent(
        AgentSettings(
            node_id="metrics-agent",
            cam_id="CAM_M",
            data_dir=data_dir,
            api_token=SecretStr(OWN),
            chronyc_path="/nonexistent/camfleet-metrics/chronyc",
            clock_poll_interval_s=3600,
            gates=GateSettings(clock_policy="warn"),
            camera=CameraSettings(source="synthetic", width=64, height=48, fps=10),
            metrics=metrics,
        )
    )


PROGRAMS = {"coordinator": coordinator, "agent": agent}
# (path, token) asked in every case; None: no Authorization header.
ASKS: list[tuple[str, str | None]] = [
    ("/metrics", None),
    ("/metrics", "x" * 24),
    ("/metrics", SCRAPE),
    ("/metrics", OWN),
    ("/openapi.json", SCRAPE),
    ("/openapi.json", None),
]


def answers(app: FastAPI) -> dict[tuple[str, str | None], httpx.Response]:
    """Every ask of ASKS against ``app`` with its lifespan running."""

    async def scenario() -> dict[tuple[str, str | None], httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        out = {}
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            for path, token in ASKS:
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                out[(path, token)] = await client.get(path, headers=headers)
        return out

    return asyncio.run(scenario())


@pytest.fixture(params=sorted(PROGRAMS))
def program(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[MetricsSettings], Any]:
    return lambda metrics: answers(PROGRAMS[request.param](tmp_path / "data", metrics))


def codes(got: dict[tuple[str, str | None], httpx.Response]) -> list[int]:
    return [got[ask].status_code for ask in ASKS]


def test_metrics_need_a_token_and_take_the_scrape_token(program: Callable[..., Any]) -> None:
    got = program(MetricsSettings(token=SecretStr(SCRAPE)))
    # no token, a wrong one: 401; the scrape token and the own token: 200; the scrape
    # token opens /metrics only.
    assert codes(got) == [401, 401, 200, 200, 401, 401]
    scraped = got[("/metrics", SCRAPE)]
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "camfleet_build_info" in scraped.text or "camfleet_nodes_online" in scraped.text


def test_without_a_scrape_token_only_the_own_token_reads_metrics(
    program: Callable[..., Any],
) -> None:
    assert codes(program(MetricsSettings())) == [401, 401, 401, 200, 401, 401]


def test_public_metrics_need_no_token(program: Callable[..., Any]) -> None:
    got = program(MetricsSettings(public=True))
    assert codes(got)[:4] == [200, 200, 200, 200]
    assert codes(got)[4:] == [401, 401]  # nothing else opens up


def test_disabled_metrics_are_a_404(program: Callable[..., Any]) -> None:
    got = program(MetricsSettings(enabled=False, token=SecretStr(SCRAPE)))
    assert codes(got) == [404, 404, 404, 404, 401, 401]


def test_a_weak_scrape_token_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"metrics\.token is too weak"):
        MetricsSettings(token=SecretStr("changeme"))
