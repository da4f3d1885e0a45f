"""The FastAPI application: collection routes, errors as JSON, the event writer's lifetime.

Every :class:`~surmesure.errors.SurmesureError` becomes its HTTP status with
``{"error": {"code", "message", "field", "hint"}}``; anything unexpected becomes a 500 with
the same shape and no stack trace (the trace goes to the server's log).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from surmesure import __version__
from surmesure.api import (
    collect,
    consents,
    decide,
    experiments,
    pages,
    preferences,
    segments,
)
from surmesure.collect.writer import EventWriter
from surmesure.config import Settings, get_settings
from surmesure.decide.serving import Serving
from surmesure.errors import SurmesureError
from surmesure.store import Store, open_store

log = logging.getLogger("surmesure.api")


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """The API on ``store`` (default: the configured one, migrated at start-up)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        app.state.store = store or open_store(settings.database_url)
        app.state.writer = EventWriter(
            app.state.store,
            interval_ms=settings.commit_interval_ms,
            max_events=settings.commit_max_events,
        )
        await app.state.writer.start()
        app.state.serving = Serving(
            app.state.store,
            refresh_seconds=settings.serving_refresh_seconds,
            flush_ms=settings.decision_flush_ms,
        )
        try:
            yield
        finally:
            await app.state.writer.stop()
            await run_in_threadpool(app.state.serving.stop)
            if own:
                app.state.store.dispose()

    app = FastAPI(
        title="surmesure",
        version=__version__,
        description="Collection (Segment-compatible) and profiles for relationship marketing.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(decide.router)  # the busiest routes first: they are matched in order
    app.include_router(collect.router)
    app.include_router(experiments.router)
    app.include_router(segments.router)
    app.include_router(pages.router)
    app.include_router(consents.router)
    app.include_router(preferences.router)

    @app.get("/health", tags=["ops"])
    async def health(request: Request) -> dict[str, str]:
        return {"status": "ok", "database": request.app.state.store.dialect}

    @app.exception_handler(SurmesureError)
    async def known_error(request: Request, exc: SurmesureError) -> JSONResponse:
        return JSONResponse({"success": False, "error": exc.to_dict()}, exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        body = {"code": "invalid_input", "message": f"{field}: {error['msg']}", "field": field}
        return JSONResponse({"success": False, "error": body}, 400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        body = {
            "code": "internal",
            "message": "The server could not store the request; nothing was acknowledged.",
            "hint": "send it again later; the server log has the details",
        }
        return JSONResponse({"success": False, "error": body}, 500)

    return app
