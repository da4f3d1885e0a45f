"""The FastAPI application: collection routes, errors as JSON, the event writer's lifetime.

Every :class:`~surmesure.errors.SurmesureError` becomes its HTTP status with
``{"error": {"code", "message", "field", "hint"}}``; anything unexpected becomes a 500 with
the same shape and no stack trace (:mod:`surmesure.api.guard`: the server's log gets the
exception's types and places, never a message that could quote a person's data).

``surmesure serve`` runs :func:`serve_app`, whose start-up ends by leaving the objects it built
out of garbage collection (:func:`freeze_heap`).
The lifespan also runs the scheduled jobs (``SURMESURE_SCHEDULE``,
:mod:`surmesure.ops.scheduler`).

Outside development mode (``SURMESURE_DEV_MODE``, ``surmesure serve --dev``) the app refuses
to start while a secret or key is still at its published development value.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from surmesure import __version__, console
from surmesure.api import (
    campaigns,
    collect,
    consents,
    decide,
    experiments,
    feedback,
    journeys,
    local,
    pages,
    preferences,
    segments,
    sms,
    tracking,
    unsubscribe,
    video,
    web,
)
from surmesure.api.auth import SECURITY_SCHEMES, RateLimits, marked, routes
from surmesure.api.clients import ClientLimits, TooManyPages, busy_page
from surmesure.api.direct import Direct
from surmesure.api.guard import Guard, without_paths
from surmesure.api.shared_counts import SharedCounts, prefix_for
from surmesure.collect.writer import EventWriter
from surmesure.config import Settings, get_settings
from surmesure.decide.serving import Serving
from surmesure.deliver.channels import configured
from surmesure.deliver.launcher import Launcher
from surmesure.dispatch.background import Background
from surmesure.errors import ConfigError, SurmesureError, TooManyRequests
from surmesure.journeys.worker import JourneyWorker
from surmesure.ops.scheduler import run_schedule
from surmesure.protect.atrest import check_key
from surmesure.protect.keys import KeyRing
from surmesure.store import Store, open_store

log = logging.getLogger("surmesure.api")


def create_app(
    settings: Settings | None = None, store: Store | None = None, *, freeze: bool = False
) -> FastAPI:
    """The API on ``store`` (default: the configured one, migrated at start-up), its services
    following ``settings`` (default: the configured ones), also on a given ``store`` while the
    app runs. With ``freeze``, start-up ends with :func:`freeze_heap` (a server process's own
    app)."""
    settings = settings or get_settings()
    refuse_development_defaults(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        app.state.store = store or open_store(settings.database_url, settings=settings)
        followed = app.state.store.follow(settings)  # the app's settings govern its services
        await run_in_threadpool(check_key, app.state.store)
        app.state.keys = KeyRing(
            app.state.store, settings.write_keys, refresh_seconds=settings.key_refresh_seconds
        )
        await run_in_threadpool(app.state.keys.reload)
        keeper = asyncio.create_task(_keep_keys(app.state.keys))
        app.state.dispatcher = Background(app.state.store, settings)
        app.state.dispatcher.start()
        app.state.journeys = None
        if settings.journey_period_seconds > 0:
            app.state.journeys = JourneyWorker(
                app.state.store,
                period=settings.journey_period_seconds,
                channels=configured(settings),
                settings=settings,
            )
            app.state.journeys.start()
        app.state.launcher = Launcher(app.state.store, settings)  # the console's launches
        app.state.launcher.start()
        app.state.writer = EventWriter(
            app.state.store,
            interval_ms=settings.commit_interval_ms,
            every_ms=settings.commit_every_ms,
            max_events=settings.commit_max_events,
            settings=settings,
            on_commit=app.state.dispatcher.kick,
            on_idle=app.state.dispatcher.hurry,
        )
        await app.state.writer.start()
        app.state.serving = Serving(
            app.state.store,
            refresh_seconds=settings.serving_refresh_seconds,
            cache_people=settings.serving_cache_people,
            packed_people=settings.serving_packed_people,
            shared_url=settings.serving_cache_url,
            shared_ttl=settings.serving_cache_ttl_seconds,
            flush_ms=settings.decision_flush_ms,
        )
        scheduler = asyncio.create_task(run_schedule(app.state.store, settings))
        if freeze:  # a server process of its own: decisions and the console's home figures
            # get ready now, so the first visitor of a shop's page does not wait for the cache
            app.state.console_figures.warm(app.state.store)
            await run_in_threadpool(_ready_to_decide, app)
            freeze_heap()
        try:
            yield
        finally:
            for task in (scheduler, keeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await run_in_threadpool(app.state.keys.reload)  # writes the last-used times
            await app.state.writer.stop()
            await run_in_threadpool(app.state.dispatcher.stop)
            if app.state.journeys is not None:
                await run_in_threadpool(app.state.journeys.stop)
            await run_in_threadpool(app.state.launcher.stop)
            await run_in_threadpool(app.state.serving.stop)
            await run_in_threadpool(app.state.console_figures.settle)
            await run_in_threadpool(app.state.console_warming.join, 30)
            if own:
                app.state.store.dispose()
            else:
                app.state.store.follow(followed)

    app = FastAPI(
        title="surmesure",
        version=__version__,
        description="Collection (Segment-compatible) and profiles for relationship marketing.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    offline_docs(app)
    app.state.settings = settings
    app.state.rate_limits = RateLimits(settings.rate_limits)
    app.state.client_limits = ClientLimits(
        settings.client_rate_limits,
        settings.trusted_proxies,
        settings.client_limit_memory,
        shared=None
        if settings.serving_cache_url is None
        else SharedCounts(settings.serving_cache_url, prefix_for(settings.database_url)),
    )
    app.state.web_visitors = ClientLimits(
        {"visitor": settings.web_visitor_rate_limit, "new": settings.web_new_visitor_rate_limit},
        memory=settings.client_limit_memory,
    )
    app.add_middleware(Direct, on_error=error_response, routers=[decide.router, collect.router])
    app.add_middleware(Guard)  # the outermost: it sees the direct collection calls too
    app.include_router(decide.router)  # the busiest routes first: they are matched in order
    app.include_router(collect.router)
    app.include_router(experiments.router)
    app.include_router(segments.router)
    app.include_router(pages.router)
    app.include_router(video.router)
    app.include_router(consents.router)
    app.include_router(preferences.router)
    app.include_router(unsubscribe.router)
    app.include_router(sms.router)
    app.include_router(campaigns.router)
    app.include_router(journeys.router)
    app.include_router(feedback.router)
    app.include_router(tracking.router)
    app.include_router(local.router)
    app.include_router(web.router)
    mount_shop(app, settings)
    console.include(app)

    @app.get("/health", tags=["ops"])
    async def health(request: Request) -> dict[str, str]:
        """Up, its store's kind, and whether decisions are served from memory yet: ``warming``
        while the serving cache reads everyone at start (decisions meanwhile read the people
        they need from the store), then ``ready``."""
        return {
            "status": "ok",
            "database": request.app.state.store.dialect,
            "decisions": "warming" if _warming(request.app) else "ready",
        }

    @app.exception_handler(SurmesureError)
    async def known_error(request: Request, exc: SurmesureError) -> Response:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        body = {"code": "invalid_input", "message": f"{field}: {message}", "field": field}
        return JSONResponse({"success": False, "error": body}, 400)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    _build_routes(app.router.routes)
    return app


def _build_routes(routes: Sequence[Any]) -> None:
    """Each included router's routes made ready now, in the thread that makes the app.
    FastAPI otherwise makes them on the first request each router meets, under a warnings
    filter it sets for the whole process: a first request while another thread sets or puts
    back filters of its own (a serving thread at work, a second first request) then met the
    warning the filter was to hide, which fails the request where warnings are errors."""
    for route in routes:
        for made in ("effective_candidates", "effective_low_priority_routes"):
            make = getattr(route, made, None)
            if callable(make):
                _build_routes(make())


def error_response(request: Request, exc: SurmesureError) -> Response:
    """The answer to a known error: its status and ``{"success": false, "error": ...}``."""
    if isinstance(exc, TooManyPages):  # a person's browser: a page, not JSON
        return busy_page(request, exc.retry_after)
    if request.url.path.startswith("/console"):  # a marketer's browser: a console page
        from surmesure.console.web import error_page

        return error_page(request, exc)
    error = {
        key: without_paths(value) if isinstance(value, str) else value
        for key, value in exc.to_dict().items()
    }
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    return JSONResponse({"success": False, "error": error}, exc.http_status, headers)


def serve_app() -> FastAPI:
    """The app ``surmesure serve`` runs in each worker (a uvicorn factory)."""
    return create_app(freeze=True)


YOUNG_COLLECTION = 10_000
"""Allocations between two collections of the youngest generation (Python's default: 700)."""


def _warming(app: FastAPI) -> bool:
    serving = getattr(app.state, "serving", None)  # none before the server starts
    return serving is not None and bool(serving.warming)


def _ready_to_decide(app: FastAPI) -> None:
    """Load the templates and start the serving cache, as the first decision would; a template
    library that does not load is left for that decision to report (with the template named)."""
    from surmesure.decide.library import library_for

    try:
        app.state.templates = library_for(app.state.settings)
        app.state.serving.ensure_started(app.state.templates.metrics())
    except Exception:  # reported by the first decision, which loads them again
        log.warning("decisions not made ready at start", exc_info=True)
        app.state.templates = None


def freeze_heap() -> None:
    """Leave what exists now (modules, models, compiled queries, the app: some 300,000
    objects once started) out of garbage collection for the life of the process, and collect
    the youngest generation every :data:`YOUNG_COLLECTION` allocations. A full collection
    otherwise walks all of those objects, holding the GIL, each time enough request objects
    have outlived their first collections (every second or so under collection load), and a
    request's messages waiting for their commit are walked again at every young collection:
    those pauses took half of the server's time."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, *gc.get_threshold()[1:])


DEMO_SHOP = Path("demo/shop")


def mount_shop(app: FastAPI, settings: Settings) -> None:
    """``/shop/``: the demo shop's pages (:mod:`surmesure.web.shop`) from
    ``SURMESURE_SHOP_DIR``, or in development mode from ``demo/shop`` when it exists."""
    folder = settings.shop_dir
    if folder is None and settings.dev_mode and DEMO_SHOP.is_dir():
        folder = DEMO_SHOP.resolve()
    if folder is None:
        return
    if not Path(folder).is_dir():
        raise ConfigError(
            f"SURMESURE_SHOP_DIR is {str(folder)!r}, which is not a folder.",
            hint="run `surmesure demo` (it writes demo/shop) or name the folder of the shop's "
            "pages; unset it to serve no /shop/",
            field="SURMESURE_SHOP_DIR",
        )
    app.mount("/shop", StaticFiles(directory=folder, html=True), name="shop")


DOCS_ASSETS = "/docs/assets"


def offline_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI served from the package's own copy, so it works with no network."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


def refuse_development_defaults(settings: Settings) -> None:
    """:class:`ConfigError` naming each secret or key left at its development value, unless
    the settings say development mode."""
    left = settings.development_defaults()
    if left and not settings.dev_mode:
        raise ConfigError(
            f"{', '.join(left)} {'still holds its' if len(left) == 1 else 'still hold their'} "
            "published development value: anyone could sign page links, call the API or "
            "undo erasures with it.",
            hint=f"set {' and '.join(left)} to your own values (e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or start with "
            "--dev (SURMESURE_DEV_MODE=1) on a development machine",
            field=left[0],
        )


async def _keep_keys(keys: KeyRing) -> None:
    """Reload the stored keys every few seconds: a revocation reaches the server."""
    while True:
        await asyncio.sleep(keys.refresh_seconds)
        try:
            await run_in_threadpool(keys.reload)
        except Exception:  # the store may be busy or away a moment: keep the keys we have
            log.warning("could not reload the API keys; keeping the loaded ones")


ERROR_BODY = {"$ref": "#/components/schemas/Error"}
CLIENT_LIMIT = "Over the client address's limit (see Retry-After; SURMESURE_CLIENT_RATE_LIMITS)"
ERRORS = {
    "401": "No key, or an unknown or revoked key",
    "403": "The key lacks the route's scope",
    "429": "Over the key's rate limit (see Retry-After)",
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document with the security each route needs and its error answers."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = doc.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    components.setdefault("schemas", {})["Error"] = {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {k: {"type": "string"} for k in ("code", "message", "field", "hint")},
            },
        },
    }
    for context in iter_route_contexts(app.routes):
        group = marked(context, "client_group")
        for method in sorted(context.methods or ()) if group else ():
            operation = doc["paths"].get(context.path, {}).get(method.lower())
            if operation is not None:
                content = (
                    {"text/html": {"schema": {"type": "string"}}}
                    if group == "pages"
                    else _json_error()
                )
                operation.setdefault("responses", {}).setdefault(
                    "429", {"description": CLIENT_LIMIT, "content": content}
                )
    for method, path, scope in routes(app):
        operation = doc["paths"].get(path, {}).get(method.lower())
        if scope is not None and operation is not None:
            operation["security"] = [{"apiKey": []}, {"writeKey": []}]
            operation["description"] = (
                operation.get("description", "") + f"\n\nNeeds a key with the `{scope}` scope."
            ).strip()
            responses = operation.setdefault("responses", {})
            responses.setdefault(
                "400", {"description": "Bad input, naming the field", "content": _json_error()}
            )
            for status, text in ERRORS.items():
                responses.setdefault(status, {"description": text, "content": _json_error()})
    app.openapi_schema = doc
    return doc


def _json_error() -> dict[str, Any]:
    return {"application/json": {"schema": ERROR_BODY}}
