"""Builds the updater from the agent's parts (None when ``updater.enabled`` is false)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from node_agent.commands import CommandRunner
from node_agent.updater.service import Updater

if TYPE_CHECKING:
    from node_agent.wiring import AgentContext


def build_updater(ctx: AgentContext) -> Updater | None:
    """The node's updater, talking to its own API on loopback for the health check."""
    settings = ctx.settings
    if not settings.updater.enabled:
        return None
    url = settings.updater.health_url or f"http://127.0.0.1:{settings.port}"
    token = ctx.api_token
    return Updater(
        settings.updater,
        settings.data_dir,
        url,
        token.get_secret_value,
        lambda: ctx.recorder.state,
        CommandRunner(
            dry_run=ctx.runner.dry_run,
            default_timeout_s=settings.updater.install_timeout_s,
            env={"PIP_CONFIG_FILE": "/dev/null", "PIP_NO_INDEX": "1"},
        ),
    )
