"""``create_app(settings)``: the coordinator's FastAPI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlmodel import Session

from app import __version__, db
from app.context import build_fleet
from app.deps import require_operator
from app.errors import CamfleetError
from app.metrics import FleetCollector
from app.nodes import routes as node_routes
from app.nodes import service as node_service
from app.recordings import routes as recording_routes
from app.selftest import routes as selftest_routes
from app.sessions import routes as session_routes
from app.settings import CoordinatorSettings
from app.timelapse import routes as timelapse_routes
from app.web import routes as web_routes
from common.http import AUTH_RESPONSES, install_error_handlers

log = logging.getLogger(__name__)


class CoordinatorHealth(BaseModel):
    """Liveness answer of ``GET /health``."""

    status: str = "ok"
    version: str


def create_app(settings: CoordinatorSettings) -> FastAPI:
    """The coordinator for ``settings``; the database is migrated in the lifespan."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(settings.db_url)
    fleet = build_fleet(settings, engine)
    fleet.registry.register(FleetCollector(fleet.state))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(db.upgrade, settings.db_url)
        with Session(engine) as session:
            node_service.load_addresses(session, fleet)
        fleet.poller.start()
        log.info("coordinator ready with %d known nodes", len(fleet.state.addresses))
        try:
            yield
        finally:
            await fleet.poller.stop()
            await fleet.client.aclose()
            engine.dispose()

    app = FastAPI(
        title="camfleet coordinator",
        version=__version__,
        description="Runs a fleet of cameras as one instrument. Every route but /health needs "
        "'Authorization: Bearer <operator token>' (nodes join with the fleet token).",
        lifespan=lifespan,
        docs_url=None,  # served by app.web with the operator token
        redoc_url=None,
        openapi_url=None,
    )
    app.state.fleet = fleet
    install_error_handlers(app, CamfleetError)

    @app.get("/health", response_model=CoordinatorHealth, summary="Liveness and version")
    async def health() -> CoordinatorHealth:
        return CoordinatorHealth(version=__version__)

    @app.get(
        "/metrics",
        summary="Prometheus exposition of fleet gauges and command latency",
        dependencies=[Depends(require_operator)],
        responses=AUTH_RESPONSES,
    )
    async def metrics() -> Response:
        body = await asyncio.to_thread(generate_latest, fleet.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.include_router(node_routes.router)
    app.include_router(session_routes.router)
    app.include_router(recording_routes.router)
    app.include_router(selftest_routes.router)
    app.include_router(timelapse_routes.router)
    app.include_router(web_routes.router)
    return app
