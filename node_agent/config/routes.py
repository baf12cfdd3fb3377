"""``GET/PUT /api/v1/config`` and ``POST /api/v1/shutdown``: thin, one call each.

Included by ``node_agent.main`` behind the agent token, like every route but /health.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from node_agent.config.schemas import ConfigDocument, ConfigResult, ConfigUpdate, ShutdownAnswer
from node_agent.config.service import NodeConfig
from node_agent.power.monitor import PowerMonitor
from node_agent.responses import error_responses


def make_router(config: NodeConfig, power: PowerMonitor) -> APIRouter:
    """The configuration and shutdown routes over ``config`` and the power monitor."""
    router = APIRouter()
    running: set[asyncio.Task[bool]] = set()  # the shutdown task, kept from the collector

    @router.get(
        "/api/v1/config",
        response_model=ConfigDocument,
        summary="The node's settings file, secrets masked",
        responses=error_responses(422, t422="The settings file on disk does not validate"),
    )
    async def get_config() -> ConfigDocument:
        return await asyncio.to_thread(config.get)

    @router.put(
        "/api/v1/config",
        response_model=ConfigResult,
        summary="Merge a change into the settings file; apply what is safe now",
        responses=error_responses(
            409,
            422,
            t409="if_version does not match, or the change would alter the running recording",
            t422="A value is not valid (each dotted key named); nothing was written",
        ),
    )
    async def put_config(body: ConfigUpdate) -> ConfigResult:
        return await asyncio.to_thread(config.put, body)

    @router.post(
        "/api/v1/shutdown",
        response_model=ShutdownAnswer,
        status_code=202,
        summary="Finish the recording and timelapse, sync, unmount, power off",
        responses=error_responses(),
    )
    async def shutdown() -> ShutdownAnswer:
        steps = power.planned_steps()
        if power.shutting_down:
            return ShutdownAnswer(
                accepted=False,
                dry_run=power.runner.dry_run,
                steps=steps,
                already_shutting_down=True,
            )
        task = asyncio.create_task(power.shut_down_now("asked through the API"))
        running.add(task)
        task.add_done_callback(running.discard)
        return ShutdownAnswer(accepted=True, dry_run=power.runner.dry_run, steps=steps)

    return router
