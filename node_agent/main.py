"""``create_app(settings)``: the node agent's FastAPI application."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from common.http import AuthGate, Guard, check_bearer, install_error_handlers
from common.identity import load_or_create_key, public_key_text
from node_agent import __version__
from node_agent.errors import AgentError
from node_agent.link import CoordinatorLink, hostname
from node_agent.recorder.backends import describe_cameras
from node_agent.recorder.lock import CameraLock
from node_agent.recorder.recorder import Identity, Recorder
from node_agent.recorder.recovery import recover
from node_agent.recorder.writer import EncoderUnavailable
from node_agent.schemas import JoinRequest, NodeStatus
from node_agent.settings import AgentSettings, resolve_identity
from node_agent.telemetry.clock import ClockMonitor
from node_agent.telemetry.disk import read_disk
from node_agent.timelapse.routes import make_router as timelapse_router
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.wiring import build_timelapse, timelapse_down, timelapse_up

log = logging.getLogger(__name__)


@dataclass
class AgentContext:
    """Everything a request handler may need, built once per app."""

    settings: AgentSettings
    node_id: str
    api_token: SecretStr
    recorder: Recorder
    clock: ClockMonitor
    link: CoordinatorLink | None
    started_monotonic: float
    key: Ed25519PrivateKey
    timelapse: Timelapse | None = None

    def status(self) -> NodeStatus:
        """This node's full status, from caches (no call blocks on hardware)."""
        rec = self.recorder.status()
        return NodeStatus(
            node_id=self.node_id,
            cam_id=self.settings.cam_id,
            position=self.settings.position,
            hostname=hostname(),
            version=__version__,
            time_ns=time.time_ns(),
            uptime_s=round(time.monotonic() - self.started_monotonic, 3),
            recorder=rec,
            clock=self.clock.latest,
            disk=read_disk(self.settings.recordings_path, rec.bitrate_bps),
            coordinator=self.link.state if self.link else "none",
            timelapse=self.timelapse.status() if self.timelapse else None,
        )

    def join_request(self) -> JoinRequest:
        """What this node tells the coordinator on every heartbeat."""
        rec = self.recorder.status()
        return JoinRequest(
            node_id=self.node_id,
            cam_id=self.settings.cam_id,
            position=self.settings.position,
            port=self.settings.port,
            api_token=self.api_token.get_secret_value(),
            public_key=public_key_text(self.key),
            version=__version__,
            hostname=hostname(),
            recorder_state=rec.state,
            session_id=rec.session_id,
        )


def build_context(settings: AgentSettings) -> AgentContext:
    """Create folders, resolve identity and build the parts (nothing started yet)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.recordings_path.mkdir(parents=True, exist_ok=True)
    node_id, api_token = resolve_identity(settings)
    clock = ClockMonitor(
        settings.chronyc_path, settings.clock_poll_interval_s, tuple(settings.chronyc_args)
    )
    recorder = Recorder(
        settings.recordings_path,
        settings.camera,
        Identity(node_id, settings.cam_id, settings.position, __version__),
        clock,
        CameraLock(settings.data_dir / "camera.lock"),
        settings.storage,
        settings.gates,
        settings.max_schedule_ahead_s,
    )
    key = load_or_create_key(settings.data_dir / "node_key.pem")
    ctx = AgentContext(settings, node_id, api_token, recorder, clock, None, time.monotonic(), key)
    ctx.timelapse = timelapse = build_timelapse(settings, recorder.lock)

    def timelapse_still() -> bytes | None:
        # While the timelapse holds the camera, a preview shows its last still.
        path = timelapse.latest_still() if timelapse.running else None
        try:
            return path.read_bytes() if path is not None else None
        except OSError:
            return None

    recorder.preview_fallback = timelapse_still
    if settings.coordinator_url and settings.fleet_token:
        ctx.link = CoordinatorLink(
            settings.coordinator_url,
            settings.fleet_token.get_secret_value(),
            ctx.join_request,
            settings.heartbeat_interval_s,
            settings.join_backoff_max_s,
            key,
        )
    return ctx


def create_app(settings: AgentSettings) -> FastAPI:
    """The agent application for ``settings``; parts start in the lifespan."""
    ctx = build_context(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before anything else: recordings a crash left without a manifest get one.
        recovered = await asyncio.to_thread(
            recover, settings.recordings_path, ctx.node_id, __version__
        )
        if recovered:
            ctx.recorder.last_error = (
                f"recovered {len(recovered)} interrupted recording(s): "
                + ", ".join(m.file_name for m in recovered)
            )
        await ctx.clock.read_once()
        ctx.clock.start()
        try:
            encoder = await asyncio.to_thread(ctx.recorder.warm_up)
            log.info("%s encoder ready for %s", encoder, ctx.recorder.profiles.current.name)
        except EncoderUnavailable as err:
            # Not fatal: status shows it, and a start will refuse with the same reason.
            ctx.recorder.last_error = str(err)
            log.error("no encoder for any configured profile: %s", err)
        cam = settings.camera
        ctx.recorder.camera_description = await asyncio.to_thread(
            describe_cameras, cam.source, cam.device
        )
        log.info("camera: %s", ctx.recorder.camera_description)
        if ctx.link:
            ctx.link.start()
        sighup = await timelapse_up(ctx.timelapse, settings)
        log.info("agent %s (%s) ready, pid %d", ctx.node_id, settings.cam_id, os.getpid())
        try:
            yield
        finally:
            await timelapse_down(ctx.timelapse, sighup)
            manifest = await asyncio.to_thread(ctx.recorder.shutdown)
            if manifest:
                log.info("finished %s on shutdown (sha256 %s)", manifest.file_name, manifest.sha256)
            if ctx.link:
                await ctx.link.stop()
            await ctx.clock.stop()

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
    install_error_handlers(app, AgentError)
    public = Guard(tokens=None)
    protected = Guard(tokens=lambda: [ctx.api_token.get_secret_value()])
    app.add_middleware(
        AuthGate, guard_for=lambda _method, path: public if path == "/health" else protected
    )

    from node_agent.api import health_router, make_router

    app.include_router(health_router(ctx))
    app.include_router(make_router(ctx), dependencies=[Depends(require_token)])
    assert ctx.timelapse is not None
    app.include_router(timelapse_router(ctx.timelapse), dependencies=[Depends(require_token)])

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    return app
