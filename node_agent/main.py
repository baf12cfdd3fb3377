"""``create_app(settings)``: the node agent's FastAPI application.

The parts are built and wired in ``node_agent.wiring``; this module starts and stops
them in the lifespan and mounts each part's router.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from common.http import AuthGate, Guard, check_bearer, install_error_handlers
from common.logmodes import LogControl
from common.logroutes import make_router as logs_router
from common.metrics_access import scrape_tokens
from node_agent import __version__
from node_agent.audio.metrics import AudioCollector
from node_agent.audio.routes import make_router as audio_router
from node_agent.config.routes import make_router as config_router
from node_agent.config.service import NodeConfig
from node_agent.dashcam.routes import make_router as dashcam_router
from node_agent.errors import AgentError
from node_agent.liveview.metrics import LiveViewCollector
from node_agent.liveview.routes import make_router as liveview_router
from node_agent.metrics import AgentCollector
from node_agent.network.metrics import NetworkCollector
from node_agent.power.preflight import preflight_problems
from node_agent.recorder.recovery import recover
from node_agent.recorder.routes import make_router as recorder_router
from node_agent.recorder.writer import EncoderUnavailable
from node_agent.routes import (
    health_router,
    metrics_router,
    status_router,
    status_stream_router,
)
from node_agent.settings import AgentSettings
from node_agent.status_stream import PokeOnWrite, StatusStream
from node_agent.statusfile.routes import make_router as statusfile_router
from node_agent.storage.routes import make_router as storage_router
from node_agent.timelapse.metrics import TimelapseCollector
from node_agent.timelapse.routes import make_router as timelapse_router
from node_agent.timelapse.wiring import timelapse_down, timelapse_up
from node_agent.updater.routes import make_router as updater_router
from node_agent.updater.wiring import build_updater
from node_agent.wiring import AgentContext, build_context

log = logging.getLogger(__name__)


async def start_parts(ctx: AgentContext) -> bool:
    """Recover, read the clock, warm the encoder, find the camera, join, start the
    timelapse; returns whether the SIGHUP reload was installed."""
    settings = ctx.settings
    # Before anything else: recordings a crash left without a manifest get one.
    recovered = await asyncio.to_thread(recover, settings.recordings_path, ctx.node_id, __version__)
    ctx.recorder.note_recovered(recovered)
    ctx.housekeeper.start()  # its first round scans the folder (and runs retention)
    await power_up(ctx)
    await ctx.clock.read_once()
    ctx.clock.start()
    try:
        encoder = await asyncio.to_thread(ctx.recorder.warm_up)
        log.info("%s encoder ready for %s", encoder, ctx.recorder.profiles.current.name)
    except EncoderUnavailable as err:
        # Not fatal: status shows it, and a start will refuse with the same reason.
        log.error("no encoder for any configured profile: %s", err)
    log.info("camera: %s", await asyncio.to_thread(ctx.recorder.probe_camera))
    if ctx.network_manager:
        ctx.network_manager.start()  # its nmcli calls run in threads
    if ctx.link:
        ctx.link.start()
    if ctx.dashcam:
        await ctx.dashcam.start()
    if ctx.audio:
        ctx.audio.start(ctx.status)
    if ctx.notifications:
        ctx.notifications.start(ctx.status, settings)
    sighup = await timelapse_up(ctx.timelapse, settings)
    if ctx.status_file:
        await asyncio.to_thread(ctx.status_file.start)  # first write, then on each change
    return sighup


async def power_up(ctx: AgentContext) -> None:
    """Power preflight (problems logged and shown in the status, not fatal), then the
    monitor's loop (its first reading at once)."""
    problems = await asyncio.to_thread(preflight_problems, ctx.settings.power, ctx.runner)
    for problem in problems:
        log.error("power preflight: %s", problem)
    ctx.power.problems = problems
    ctx.power.start()


async def stop_parts(ctx: AgentContext, sighup: bool) -> None:
    """Stop the dashcam (unmounted, camera safe), the power monitor and the timelapse,
    finish the recording, leave the coordinator, stop the clock."""
    if ctx.audio:
        await ctx.audio.stop()
    if ctx.dashcam:
        await ctx.dashcam.stop()
    await ctx.power.stop()
    await timelapse_down(ctx.timelapse, sighup)
    manifest = await asyncio.to_thread(ctx.recorder.shutdown)
    if manifest:
        log.info("finished %s on shutdown (sha256 %s)", manifest.file_name, manifest.sha256)
    await ctx.housekeeper.stop()
    if ctx.link:
        await ctx.link.stop()
    if ctx.network_manager:
        await ctx.network_manager.stop()
    await ctx.clock.stop()
    if ctx.status_file:
        await asyncio.to_thread(ctx.status_file.stop)  # the last word: what is left running
    if ctx.notifications:
        await asyncio.to_thread(ctx.notifications.stop)


def create_app(settings: AgentSettings) -> FastAPI:
    """The agent application for ``settings``; parts start in the lifespan."""
    logs = LogControl("agent", settings.data_dir, settings.logging, settings.mode)
    logs.install()  # first, so that what the build logs is kept
    ctx = build_context(settings)
    updater = build_updater(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logs.adopt("uvicorn")  # configured by uvicorn once the app was built
        sighup = await start_parts(ctx)
        if updater:
            updater.start()  # finishes an update a restart interrupted
        log.info("agent %s (%s) ready, pid %d", ctx.node_id, settings.cam_id, os.getpid())
        try:
            yield
        finally:
            stream.close()
            if updater:
                await asyncio.to_thread(updater.stop)
            await stop_parts(ctx, sighup)

    def require_token(request: Request) -> None:
        check_bearer(request, lambda: [ctx.api_token.get_secret_value()])

    app = FastAPI(
        title="camfleet node agent",
        version=__version__,
        description="One camera, its clock and its disk. Every route but /health needs "
        "'Authorization: Bearer <api token>'.",
        lifespan=lifespan,
        docs_url=None,  # the schema is served below, behind the token
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    app.state.logs = logs
    install_error_handlers(app, AgentError)
    public = Guard(tokens=None)
    token_needed = Guard(tokens=lambda: [ctx.api_token.get_secret_value()])
    stream = StatusStream(
        ctx.status,
        heartbeat_s=settings.status_stream_heartbeat_s,
        debounce_s=settings.status_stream_debounce_s,
        check_s=settings.status_stream_check_s,
        max_clients=settings.status_stream_max_clients,
        send_timeout_s=settings.status_stream_send_timeout_s,
    )
    app.state.status_stream = stream
    status_file = ctx.status_file
    assert status_file is not None, "build_context always makes one (a no-op when off)"

    def changed() -> None:
        """Something the status shows changed: the stream sends it and the file is
        rewritten at once."""
        stream.poke()
        status_file.poke()

    ctx.recorder.on_change = changed  # a first frame or an end

    # The server ends the streams first when it shuts down (else they hold it open).
    app.state.on_server_shutdown = stream.close
    app.add_middleware(PokeOnWrite, poke=changed)  # after every state-changing request
    scrape = scrape_tokens(settings.metrics, lambda: [ctx.api_token.get_secret_value()])
    metrics_guard = public if scrape is None else Guard(tokens=scrape)

    def guard_for(_method: str, path: str) -> Guard:
        if path == "/health":
            return public
        return metrics_guard if path == "/metrics" else token_needed

    app.add_middleware(AuthGate, guard_for=guard_for)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(ctx.status, ctx.readings))
    registry.register(TimelapseCollector(ctx.timelapse.status, ctx.node_id, settings.cam_id))
    if ctx.network_manager:
        registry.register(NetworkCollector(ctx.network_status, ctx.node_id, settings.cam_id))
    protected = [Depends(require_token)]
    app.include_router(health_router(ctx.node_id, ctx.started_monotonic))
    app.include_router(status_router(ctx.status), dependencies=protected)
    if settings.metrics.enabled:  # off: /metrics is a 404 (the gate lets it through)
        tokens = scrape

        def require_scraper(request: Request) -> None:
            """The API token or the scrape token; nothing when metrics.public."""
            if tokens is not None:
                check_bearer(request, tokens)

        app.include_router(metrics_router(registry), dependencies=[Depends(require_scraper)])
    if settings.status_stream_enabled:
        app.include_router(status_stream_router(stream), dependencies=protected)
    lockview_done = ctx.audio.lockview_done if ctx.audio else None
    app.include_router(recorder_router(ctx.recorder, lockview_done), dependencies=protected)
    app.include_router(
        storage_router(
            ctx.node_id,
            settings.recordings_path,
            ctx.housekeeper.active_file,
            ctx.housekeeper,
        ),
        dependencies=protected,
    )
    app.include_router(timelapse_router(ctx.timelapse), dependencies=protected)
    node_config = NodeConfig(settings, ctx.recorder, ctx.timelapse)
    app.include_router(config_router(node_config, ctx.power), dependencies=protected)
    app.include_router(logs_router(logs, protected))
    app.include_router(
        statusfile_router(status_file, ctx.timelapse, logs, node_config), dependencies=protected
    )
    if ctx.audio:
        registry.register(AudioCollector(ctx.audio.status, ctx.node_id, settings.cam_id))
        app.include_router(audio_router(ctx.audio), dependencies=protected)
    if ctx.liveview:
        registry.register(LiveViewCollector(ctx.liveview.status, ctx.node_id, settings.cam_id))
        app.include_router(liveview_router(ctx.liveview), dependencies=protected)
        liveview = ctx.liveview

        def on_server_shutdown() -> None:
            stream.close()
            liveview.close()  # open views end first, or the recording waits for them

        app.state.on_server_shutdown = on_server_shutdown
    if ctx.dashcam:
        app.include_router(dashcam_router(ctx.dashcam), dependencies=protected)
    if updater:
        app.include_router(updater_router(updater), dependencies=protected)

    @app.get("/openapi.json", include_in_schema=False, dependencies=protected)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return app
