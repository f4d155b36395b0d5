"""create_app(settings, roles): the ASGI application.

The lifespan opens the runtime (PostgreSQL pool, Redis pool, HTTP client) unless one is handed in
(tests share one runtime across apps), and closes what it opened.

Roles: one codebase, deployed as process groups that each serve a part of the API behind the
gateway (deploy/nginx.conf). ROLES maps a role to the route providers it mounts; its OpenAPI
lists only those routes. Every role verifies JWTs itself (no hop to an auth service per request)
and mounts the operations routes (/healthz, /readyz, /metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from boxoffice import __version__
from boxoffice.config import Settings
from boxoffice.errors import MetricsTokenRequired, NotReady
from boxoffice.http.guard import RequestGuard
from boxoffice.http.hot import HotTable, LeanRoute
from boxoffice.http.openapi import install_docs, install_openapi
from boxoffice.http.problems import install_error_handlers, problem, problems
from boxoffice.http.shedding import ShedMiddleware
from boxoffice.kit import heap
from boxoffice.kit.supervision import supervised
from boxoffice.observability import AccessLog, RequestContextMiddleware, metrics_allowed
from boxoffice.runtime import Runtime, open_runtime


def create_app(
    settings: Settings,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    runtime: Runtime | None = None,
    roles: Sequence[str] = ("all",),
    serve_hot_routes: bool = True,
) -> FastAPI:
    """Build the app. Give it a ready `runtime`, or the URLs for the lifespan to open one.
    serve_hot_routes=False leaves the hot routes to their FastAPI twins (the contract test)."""
    if runtime is None and (database_url is None or redis_url is None):
        raise ValueError("create_app needs a runtime or both backend URLs")
    routes = role_routes(roles, serve_hot_routes=serve_hot_routes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        assert database_url is not None and redis_url is not None
        async with open_runtime(settings, database_url, redis_url, metrics=metrics) as opened:
            await opened.warm_up(settings.db_pool_size)
            app.state.runtime = opened
            heap.settle()
            yield

    app = FastAPI(
        title="Boxoffice",
        version=__version__,
        description="Flash-sale concert ticketing: waiting room, live seat map, holds, payments.",
        lifespan=lifespan,
        docs_url=None,  # served from vendored assets: http/openapi.py install_docs
        redoc_url=None,
        # Our own tracing (kit/trace.py) spans each request, with its own provider. FastAPI's would
        # span them again under a global one, and asks OpenTelemetry for its providers on every
        # request to find out (2.5 us each).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    metrics = runtime.metrics if runtime is not None else None
    if metrics is None:
        from boxoffice.observability import Metrics

        metrics = Metrics()
    app.state.metrics = metrics
    from boxoffice.auth.dependencies import HeaderAuthentication

    app.state.authenticate = HeaderAuthentication()  # the hot routes' token check (http/ imports no domain)
    app.state.metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    from boxoffice.admin.live import DashboardHub

    app.state.dashboards = DashboardHub()  # one per process: shares a show's frames across viewers
    if runtime is not None:
        app.state.runtime = runtime
    failures = runtime.failures if runtime is not None else None
    # Inside the request-context middleware (so failures carry the request id and are counted).
    app.add_middleware(RequestGuard, max_body_bytes=settings.max_body_bytes, failures=failures)
    # Shedding sits inside the request context (shed requests are logged and counted like any).
    app.add_middleware(
        ShedMiddleware,
        metrics=metrics,
        lag_threshold_ms=settings.shed_loop_lag_ms,
        retry_after_seconds=settings.shed_retry_after_seconds,
        served=_served_on_board,
        crowd_per_pass=settings.crowd_per_pass,
    )
    app.add_middleware(
        RequestContextMiddleware, metrics=metrics, access_log=AccessLog(enabled=settings.access_log)
    )
    if configure_tracing(settings):  # outermost: the handler's time covers every middleware
        from boxoffice.http.tracing import TraceMiddleware

        app.add_middleware(TraceMiddleware)
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    _mount_operations(app)
    # The domains' routes go straight onto the app's router rather than through include_router:
    # FastAPI wraps included routers and re-derives their routes' context while matching, which
    # cost ~130 us of every request in the profile. The routes are complete already (the domain
    # routers add no prefix and their tags are merged into each route when it is declared).
    app.router.routes.extend(routes)
    app.router.routes.insert(0, HotTable(routes))  # before everything, /healthz included: one lookup
    if ALL_ROLES in roles or "web" in roles:
        from boxoffice.web.pages import mount_web

        mount_web(app)  # last: its routes (and the catch-all 404 page) come after the API's
    return app


def configure_tracing(settings: Settings) -> bool:
    """Tracing for this process as the settings say (kit/trace.py); False when it stays off."""
    from boxoffice.kit import trace

    export_url = settings.otlp_traces_url
    if export_url is None and not settings.trace_breakdown:
        return trace.ENABLED
    trace.configure(
        export_url=export_url, service_name=settings.otel_service_name, breakdown=settings.trace_breakdown
    )
    return True


def _served_on_board(scope: Scope, show_id: int, number: int) -> bool:
    """For the shedder: is this ticket served on this process's board (no I/O)?"""
    from boxoffice.waiting_room.service import served_on_board

    runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
    return runtime is not None and served_on_board(runtime, show_id, number)


def _mount_operations(app: FastAPI) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz", tags=["operations"], summary="PostgreSQL and Redis answer", responses=problems(NotReady)
    )
    async def readyz(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, str] = {}
        for name, check in (("postgres", runtime.check_database), ("redis", runtime.check_redis)):
            try:
                await check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"error: {type(exc).__name__}"
        for name, state in supervised(runtime.settings.data_dir).children.items():  # under `up`: its children
            if state != "ok" or name not in checks:  # a server alive but not answering stays an error
                checks[name] = state
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ok", "checks": checks})
        return problem(503, NotReady.code, "A backend does not answer", checks=checks)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (loopback clients, or Bearer BOXOFFICE_METRICS_TOKEN)",
        response_class=PlainTextResponse,  # the Prometheus text format
        responses=problems(MetricsTokenRequired),
    )
    async def metrics(request: Request) -> Response:
        if not metrics_allowed(request.scope, request.app.state.metrics_token):
            return problem(
                401,
                MetricsTokenRequired.code,
                "Metrics are for local scrapers or a bearer token (BOXOFFICE_METRICS_TOKEN)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            from boxoffice.catalog.flows import seat_counts_on_sale
            from boxoffice.waiting_room.service import refresh_queue_gauges

            for backend, check in (("postgres", runtime.check_database), ("redis", runtime.check_redis)):
                try:
                    await asyncio.wait_for(check(), 2)
                    runtime.metrics.backend_up.labels(backend).set(1)
                except Exception:
                    runtime.metrics.backend_up.labels(backend).set(0)
            with contextlib.suppress(Exception):  # a scrape must not fail because Redis is down
                await refresh_queue_gauges(runtime)
            with contextlib.suppress(Exception):  # nor because PostgreSQL is
                for (show_id, status), count in (await seat_counts_on_sale(runtime)).items():
                    runtime.metrics.seats.labels(str(show_id), status).set(count)
            runtime.metrics.child_restarts.values = supervised(runtime.settings.data_dir).restarts
            pool = runtime.engine.pool
            checked_out = getattr(pool, "checkedout", None)
            if callable(checked_out):
                runtime.metrics.db_pool_in_use.set(checked_out())
        return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


# (serve_hot_routes) -> routes; False leaves the hot routes to their FastAPI twins.
RouteProvider = Callable[[bool], list[BaseRoute]]


def _is_admin(route: BaseRoute) -> bool:
    return isinstance(route, Route) and route.path.startswith("/api/admin")


def _path(route: BaseRoute) -> str:
    return route.path if isinstance(route, Route) else ""


def _reservations(path: str) -> bool:
    return path.startswith("/api/reservations")


def _domain(module: str, *, admin: bool, keep: Callable[[str], bool] = lambda path: True) -> RouteProvider:
    """A domain's routes: its lean hot routes first (see boxoffice.http.hot; their FastAPI twins
    document them), then its router's; only the /api/admin ones (admin=True) or only the others,
    and of those the paths `keep` accepts."""

    def provide(serve_hot_routes: bool) -> list[BaseRoute]:
        endpoints = importlib.import_module(module)
        hot = [h.served() for h in getattr(endpoints, "hot_routes", [])] if serve_hot_routes else []
        found = [*hot, *endpoints.router.routes]
        return [r for r in found if _is_admin(r) == admin and keep(_path(r))]

    return provide


_DOMAINS = {
    "auth": "boxoffice.auth.endpoints",
    "catalog": "boxoffice.catalog.endpoints",
    "queue": "boxoffice.waiting_room.endpoints",
    "booking": "boxoffice.booking.endpoints",
    "payments": "boxoffice.payments.endpoints",
    "tickets": "boxoffice.tickets.endpoints",  # tickets, QR, PDF; the door's check-ins
}
# role -> what it mounts. A new front door (the web pages, say) adds its provider to a role here.
# The gateway routes by path, so a role owns whole paths: cancelling (DELETE /api/reservations/{id},
# declared by payments because a paid one is refunded) is served by the booking role.
ROLES: dict[str, tuple[RouteProvider, ...]] = {
    **{role: (_domain(module, admin=False),) for role, module in _DOMAINS.items() if role != "payments"},
    "booking": (
        _domain(_DOMAINS["booking"], admin=False),
        _domain(_DOMAINS["payments"], admin=False, keep=_reservations),
    ),
    "payments": (_domain(_DOMAINS["payments"], admin=False, keep=lambda path: not _reservations(path)),),
    "admin": (
        *(_domain(module, admin=True) for module in _DOMAINS.values()),
        _domain("boxoffice.admin.endpoints", admin=True),  # the promoter's dashboard API
    ),
    "web": (),  # the server-rendered pages: web.pages.mount_web (pages, /static, page errors)
}
ALL_ROLES = "all"


def role_routes(roles: Sequence[str], *, serve_hot_routes: bool = True) -> list[BaseRoute]:
    """The routes of these roles, each once ("all" = every role): the hot routes, then the others,
    each in role order."""
    names = list(ROLES) if ALL_ROLES in roles else list(dict.fromkeys(roles))
    unknown = [name for name in names if name not in ROLES]
    if unknown:
        raise ValueError(f"unknown role {unknown[0]!r}; roles: {', '.join([*ROLES, ALL_ROLES])}")
    routes: list[BaseRoute] = []
    for name in names:
        for provide in ROLES[name]:
            routes.extend(route for route in provide(serve_hot_routes) if route not in routes)
    # The hot routes first: the router tries its routes in order, and a hold was matched against
    # ~40 patterns before its own (39 us of every hold, 55 us of a payment, 27 us of a poll). No
    # request matches two of these routes but a hot route and its FastAPI twin, which stays behind
    # it (tests/unit/test_routes.py), so the order decides nothing else.
    hot = [route for route in routes if isinstance(route, LeanRoute)]
    return [*hot, *(route for route in routes if not isinstance(route, LeanRoute))]


def app_from_environment() -> FastAPI:
    """uvicorn factory for `boxoffice serve`: each API process builds its own Settings."""
    from boxoffice.config import with_secrets
    from boxoffice.observability import configure_logging, enable_multiprocess

    settings = with_secrets(Settings())
    configure_logging(settings)
    if settings.metrics_dir is not None:  # `serve --workers N`: one /metrics for all N
        enable_multiprocess(settings.metrics_dir)
    if settings.database_url is None or settings.redis_url is None:
        raise RuntimeError("app_from_environment needs BOXOFFICE_DATABASE_URL and BOXOFFICE_REDIS_URL")
    return create_app(
        settings,
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        roles=settings.role_list,
    )
