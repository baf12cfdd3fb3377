"""``create_app(settings)``: the coordinator's FastAPI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.types import Scope

from app import __version__, db
from app import metrics as fleet_metrics
from app.audio import routes as audio_routes
from app.auth import STATE_KEY, Auth
from app.context import build_fleet
from app.deps import BearerDep, require_operator
from app.discovery import routes as discovery_routes
from app.discovery import service as discovery
from app.errors import CamfleetError
from app.events import routes as event_routes
from app.events.broadcaster import Broadcaster
from app.events.service import LiveFleet
from app.fleet.transport import Transport
from app.liveview import routes as liveview_routes
from app.liveview.service import LiveRelays
from app.logs import routes as log_routes
from app.metrics import FleetExposition
from app.nodeconfig import routes as nodeconfig_routes
from app.nodes import routes as node_routes
from app.nodes import service as node_service
from app.notify.service import FleetAlerts
from app.offload import routes as offload_routes
from app.offload.engine import OffloadEngine
from app.recordings import routes as recording_routes
from app.selftest import routes as selftest_routes
from app.sessions import routes as session_routes
from app.sessions.reconcile import mark_restarted, reconcile
from app.settings import CoordinatorSettings
from app.timelapse import routes as timelapse_routes
from app.updates import routes as update_routes
from app.updates.service import FleetUpdater
from app.web import auth_pages
from app.web import routes as web_routes
from app.web.pages import is_page
from common.http import (
    AUTH_RESPONSES,
    BODY_RESPONSES,
    METRICS_RESPONSES,
    AuthGate,
    Guard,
    Refusal,
    check_bearer,
    install_error_handlers,
)
from common.logmodes import LogControl
from common.logroutes import make_router as logs_router
from common.metrics_access import scrape_tokens
from common.notify import build_notifier

log = logging.getLogger(__name__)


class CoordinatorHealth(BaseModel):
    """Liveness answer of ``GET /health``."""

    status: str = "ok"
    version: str


_JOIN_PATHS = frozenset({"/api/v1/nodes/join", "/api/v1/nodes/challenge"})
# Open to anyone: the coordinator proves itself first (docs/discovery.md).
_HANDSHAKE_PATH = "/api/v1/nodes/handshake"
# The sign-in form and the sign-out form: they check their own credentials (and limits).
_SIGN_IN_POSTS = frozenset({"/login", "/logout"})


def guards(
    settings: CoordinatorSettings,
    auth: Auth,
    fleet_proof: Callable[[Scope, Headers], Refusal | None] | None = None,
) -> Callable[[str, str], Guard]:
    """Which token each request needs, and how large its body may be."""
    public = Guard(tokens=None)
    sign_in = Guard(tokens=None, max_body_bytes=8 * 1024)
    # A join without Authorization must carry the answer to a handshake (fleet_proof).
    join = Guard(
        tokens=lambda: [settings.fleet_token.get_secret_value()],
        cookie_check=fleet_proof,
        max_body_bytes=16 * 1024,
    )
    handshake = Guard(tokens=None, max_body_bytes=1024)
    operator = Guard(
        tokens=lambda: [settings.operator_token.get_secret_value()],
        cookie_check=auth.cookie_check,
        max_body_bytes=64 * 1024,
    )

    scrape = scrape_tokens(settings.metrics, lambda: [settings.operator_token.get_secret_value()])
    metrics = public if scrape is None else Guard(tokens=scrape, cookie_check=auth.cookie_check)

    def guard_for(method: str, path: str) -> Guard:
        if path == "/health" or (method == "GET" and is_page(path)):
            return public
        if path == "/metrics":
            return metrics
        if method == "POST" and path in _SIGN_IN_POSTS:
            return sign_in
        if path in _JOIN_PATHS:
            return join
        if path == _HANDSHAKE_PATH:
            return handshake
        return operator

    return guard_for


def document_configured_bounds(app: FastAPI, settings: CoordinatorSettings) -> None:
    """Put the bounds that come from settings into the OpenAPI schema.

    ``SessionCreate.lead_ms`` is statically bounded loosely (the model cannot see the
    settings); the start refuses with 422 outside ``min_lead_ms..max_lead_ms``, so the
    schema says exactly that range.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = FastAPI.openapi(app)  # built once and cached in app.openapi_schema
        lead = schema["components"]["schemas"]["SessionCreate"]["properties"]["lead_ms"]
        for branch in lead.get("anyOf", [lead]):
            if branch.get("type") == "integer":
                branch["minimum"] = settings.min_lead_ms
                branch["maximum"] = settings.max_lead_ms
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: CoordinatorSettings, transport: Transport | None = None) -> FastAPI:
    """The coordinator for ``settings``; the database is migrated in the lifespan.

    ``transport`` replaces the HTTP transport to the nodes (tests put a hostile one in).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = LogControl("coordinator", settings.data_dir, settings.logging, settings.mode)
    logs.install()
    engine = db.make_engine(settings.db_url)
    fleet = build_fleet(settings, engine, transport)
    offload = OffloadEngine(fleet)
    exposition = FleetExposition(fleet.state, lambda: fleet.sessions_snapshot, lambda: offload.live)
    # One render at a time: two scrapers at once queue instead of doubling the time the
    # render threads take the GIL from the event loop.
    one_render = anyio.CapacityLimiter(1)

    async def after_sweep() -> None:
        await reconcile(fleet)

    fleet.poller.after_sweep = after_sweep
    live = LiveFleet(Broadcaster(), lambda: node_service.list_nodes(fleet))
    fleet.live = live
    fleet.state.on_change = live.poke
    relays = LiveRelays(fleet, settings.liveview_max_viewers)
    alerts = FleetAlerts(build_notifier(settings.notifications, "coordinator"), fleet.state)
    advertiser = discovery.Advertiser(settings)
    fleet.alerts = alerts
    updates = FleetUpdater(fleet)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logs.adopt("uvicorn")  # configured by uvicorn once the app was built
        await asyncio.to_thread(db.upgrade, settings.db_url)
        await fleet.store.run(lambda session: node_service.load_addresses(session, fleet))
        left_open = await asyncio.to_thread(mark_restarted, fleet)
        if left_open:
            log.warning("%d session(s) were left open; reconciling them with the nodes", left_open)
        interrupted = await offload.recover()
        if interrupted:
            log.warning(
                "%d offload job(s) were interrupted; the next offload resumes them", interrupted
            )
        fleet.poller.start()
        if fleet.watch is not None:
            fleet.watch.start()
        live.start()
        alerts.start(settings.notifications.daily_summary, settings.notifications.summary_at)
        if settings.discovery.enabled:
            await advertiser.run()
        log.info("coordinator ready with %d known nodes", len(fleet.state.addresses))
        try:
            yield
        finally:
            await advertiser.stop()
            await live.stop()
            await updates.close()
            await relays.close()
            if fleet.watch is not None:
                await fleet.watch.stop()
            await offload.shutdown()
            await fleet.poller.stop()
            await fleet.client.aclose()
            await alerts.stop()
            engine.dispose()

    app = FastAPI(
        title="camfleet coordinator",
        version=__version__,
        description="Runs a fleet of cameras as one instrument. Every route but /health needs "
        "'Authorization: Bearer <operator token>' (nodes join with the fleet token), or a "
        "browser session signed in at /login (its changes also send X-CSRF-Token).",
        lifespan=lifespan,
        docs_url=None,  # served by app.web with the operator token
        redoc_url=None,
        openapi_url=None,
    )
    app.state.fleet = fleet
    app.state.offload = offload
    app.state.live = live
    app.state.liveview = relays
    app.state.advertiser = advertiser
    app.state.updates = updates

    # Called by the server when it begins to shut down: open event streams would otherwise
    # hold it for its whole graceful-shutdown time.
    def on_server_shutdown() -> None:
        live.broadcaster.close()
        relays.end_all("the coordinator is shutting down")

    app.state.on_server_shutdown = on_server_shutdown
    app.state.logs = logs
    auth = Auth(settings)
    app.state.auth = auth
    document_configured_bounds(app, settings)
    install_error_handlers(app, CamfleetError)
    app.add_middleware(
        AuthGate,
        guard_for=guards(settings, auth, discovery.proof_check(fleet)),
        read_timeout_s=settings.body_read_timeout_s,
    )

    @app.get(
        "/health",
        response_model=CoordinatorHealth,
        summary="Liveness and version",
        responses=BODY_RESPONSES,
    )
    async def health() -> CoordinatorHealth:
        return CoordinatorHealth(version=__version__)

    if settings.metrics.enabled:
        scrape = scrape_tokens(
            settings.metrics, lambda: [settings.operator_token.get_secret_value()]
        )

        def require_scraper(request: Request, _credentials: BearerDep) -> None:
            """The operator token, the scrape token, or a signed-in browser (the gate
            checked it first); nothing when metrics.public."""
            if scrape is None or request.scope.get("state", {}).get(STATE_KEY) is not None:
                return
            check_bearer(request, scrape)

        @app.get(
            "/metrics",
            summary="Prometheus exposition of fleet gauges, sessions and command results",
            dependencies=[Depends(require_scraper)],
            response_class=Response,
            responses={**AUTH_RESPONSES, **METRICS_RESPONSES},
        )
        async def metrics() -> Response:
            await fleet_metrics.refresh_sessions(fleet)  # one query, on a database thread
            # Rendering 1000 nodes takes tens of milliseconds: a worker thread does it,
            # so the event loop keeps serving while Prometheus scrapes.
            body = await anyio.to_thread.run_sync(
                fleet_metrics.render, fleet.registry, exposition, limiter=one_render
            )
            return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.include_router(node_routes.router)
    app.include_router(discovery_routes.router)
    app.include_router(nodeconfig_routes.router)
    app.include_router(session_routes.router)
    app.include_router(recording_routes.router)
    app.include_router(offload_routes.jobs)
    app.include_router(offload_routes.archive)
    app.include_router(offload_routes.nodes)
    app.include_router(selftest_routes.router)
    app.include_router(timelapse_routes.router)
    app.include_router(audio_routes.router)
    app.include_router(event_routes.router)
    app.include_router(liveview_routes.router)
    app.include_router(update_routes.router)
    app.include_router(web_routes.router)
    app.include_router(auth_pages.router)
    app.include_router(log_routes.router)
    app.include_router(log_routes.fleet_router)
    app.include_router(logs_router(logs, [Depends(require_operator)]))
    return app
