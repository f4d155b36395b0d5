"""Hot routes: declared once, served without FastAPI's per-request dependency solving.

FastAPI re-resolves every dependency and parameter of a route on each request; on the endpoints a
flash sale hammers (status polls, joins, seat holds) that was a third of their CPU. A `HotRoute`
is one declaration from which both the served Starlette route and its FastAPI twin (the OpenAPI
entry) are generated; the twin calls the very same handler, so the two can never disagree. The
handler authenticates first (401), then checks the content type (415) and validates the body,
query ids and headers with the route's own pydantic model and bounds (422, FastAPI's error shape).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from fastapi import Depends
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette._utils import get_route_path
from starlette.background import BackgroundTask
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from boxoffice import errors as e
from boxoffice.db.uow import Effect, effects_after_answer, run_effects
from boxoffice.http.problems import Documented, problems
from boxoffice.kit.ids import ID_MAX
from boxoffice.kit.inputs import decimal_digits
from boxoffice.runtime import Runtime

M = TypeVar("M", bound=BaseModel)


class Caller(Protocol):
    """Who the request's bearer token names (the auth domain's claims)."""

    @property
    def user_id(self) -> int: ...


class Authenticate(Protocol):
    """The token check in two halves, handed to the hot routes by the app
    (`app.state.authenticate`; http/ imports no domain): `verify`, the signature and expiry (401,
    no I/O), and `check`, the deny-list (its command written at once, 401 when awaited).
    `recent_ok`: a deny-list answer from the last second will do."""

    def verify(self, runtime: Runtime, authorization: str | None) -> Caller: ...

    def check(self, runtime: Runtime, caller: Caller, recent_ok: bool) -> Awaitable[None]: ...


# Documents the bearer scheme on the twin; never refuses (the handler authenticates).
_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/auth/login")


@dataclass(frozen=True)
class HotInput:
    """What the declaration asked the handler to parse, already validated."""

    request: Request
    runtime: Runtime
    claims: Caller
    body: Any = None
    ids: list[int] = field(default_factory=list)
    headers: dict[str, str | None] = field(default_factory=dict)
    first: Any = None  # what the route's first_round issued


@dataclass(frozen=True)
class Header:
    """A header the handler reads. `required` is what the OpenAPI says: the handler still passes
    a missing one on as None, for the flow to refuse with its own stable code."""

    name: str
    max_length: int
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class HotRoute:
    path: str
    method: str
    call: Callable[[HotInput], Awaitable[Response]]
    response_model: type[BaseModel]
    summary: str
    tags: list[str]
    status_code: int = 200
    description: str | None = None
    body: type[BaseModel] | None = None
    query_ids: tuple[str, ...] = ()
    path_id: str | None = None  # a `{name}` of the path: an id, first in HotInput.ids
    headers: tuple[Header, ...] = ()
    errors: tuple[Documented, ...] = ()  # what the call can answer besides handle's own (problems())
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)  # other answers (a 202)
    parameters: tuple[dict[str, Any], ...] = ()  # other parameters the handler reads (OpenAPI objects)
    # When the request carries this header, a deny-list answer from the last second will do (see
    # authenticate_token's recent_ok): the waiting room's ticket polls.
    recent_auth_with: str | None = None
    # The route's first Redis commands, issued (MuxRedis.issue, never awaited here) together with
    # the deny-list check in one write, so that both answers cost the buyer one round trip; the
    # handler finds what this returned in HotInput.first. Only what a revoked token may do: reads,
    # and counts against the caller's own rate limit. It runs before the deny-list answer is in,
    # the handler after it.
    first_round: Callable[[HotInput], Any] | None = None

    async def handle(self, request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        recent_ok = self.recent_auth_with is not None and self.recent_auth_with in request.headers
        authenticate: Authenticate = request.app.state.authenticate
        claims = authenticate.verify(runtime, request.headers.get("authorization"))
        request.state.user_id = claims.user_id
        try:
            headers = {h.name: header(request, h.name, h.max_length) for h in self.headers}
            ids = path_ids(request, self.path_id) if self.path_id else []
            if self.query_ids:
                ids += query_ids(request, *self.query_ids)
            body = await json_body(request, self.body) if self.body is not None else None
        except Exception:
            await authenticate.check(runtime, claims, recent_ok)  # a revoked token's 401 comes first
            raise
        given = HotInput(request, runtime, claims, body, ids, headers)
        with runtime.hot_redis.one_write():
            access = authenticate.check(runtime, claims, recent_ok)
            if self.first_round is not None:
                given = HotInput(request, runtime, claims, body, ids, headers, self.first_round(given))
        await access
        with effects_after_answer() as later:
            try:
                response = await self.call(given)
            except Exception:
                await run_effects(later)  # what committed before the refusal still follows
                raise
        if later:
            response.background = _Then(response.background, later)
        return response

    def served(self) -> Route:
        """The route the app mounts ahead of the FastAPI ones (the first match serves)."""
        return LeanRoute(self.path, self.handle, methods=[self.method])

    def documented(self) -> APIRoute:
        """The FastAPI twin: the OpenAPI entry, calling the same handler. Besides the route's own
        problems it documents what `handle` itself answers: 401 (it authenticates first), 415 for
        a body that is not JSON (and the 422s and 503s every API operation documents)."""

        async def endpoint(request: Request) -> Response:
            return await self.handle(request)

        endpoint.__name__ = f"{self.method.lower()}_{self.path.strip('/').replace('/', '_')}"
        return APIRoute(
            self.path,
            endpoint,
            methods=[self.method],
            response_model=self.response_model,
            status_code=self.status_code,
            summary=self.summary,
            description=self.description,
            tags=list(self.tags),
            responses={**self.responses, **problems(*self._handle_errors(), *self.errors)},
            dependencies=[Depends(_bearer)],
            openapi_extra=self._openapi(),
        )

    def _handle_errors(self) -> tuple[type[e.DomainError], ...]:
        return (e.AuthRequired, e.InvalidAccessToken, *((e.UnsupportedMediaType,) if self.body else ()))

    def _openapi(self) -> dict[str, Any]:
        params: list[dict[str, Any]] = [
            {
                "name": name,
                "in": where,
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": ID_MAX, "title": name},
            }
            for where, names in (("path", (self.path_id,) if self.path_id else ()), ("query", self.query_ids))
            for name in names
        ]
        params += [
            {
                "name": h.name,
                "in": "header",
                "required": h.required,
                "description": h.description,
                "schema": {"type": "string", "maxLength": h.max_length},
            }
            for h in self.headers
        ]
        params += list(self.parameters)
        extra: dict[str, Any] = {"parameters": params} if params else {}
        if self.body is not None:
            extra["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self.body.model_json_schema()}},
            }
        return extra


@dataclass(frozen=True)
class PublicRoute:
    """A hot route without login (a public, cacheable resource) and one path id; its FastAPI twin
    is declared beside it and calls the same handler."""

    path: str
    method: str
    call: Callable[[Request, int], Awaitable[Response]]
    path_id: str

    async def handle(self, request: Request) -> Response:
        (value,) = path_ids(request, self.path_id)
        return await self.call(request, value)

    def served(self) -> Route:
        return LeanRoute(self.path, self.handle, methods=[self.method])


AnyHotRoute = HotRoute | PublicRoute


class LeanRoute(Route):
    """A Starlette route that names itself in the scope like FastAPI's routes do, so the access
    log and the latency metrics carry its path template (plain Starlette routes were "unmatched")."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


class HotTable(BaseRoute):
    """The hot routes without path parameters (a hold, a payment, a join, a poll), found by one
    dict lookup on (path, method) in front of the router's scan: Starlette tries its routes in
    order with a regex each, 9 us for a hold against 3 for /healthz. It only answers for a path
    and method one of its routes serves; anything else (another method: the 405 and its Allow
    header) goes on to the scan, where the same routes stand too."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.table: dict[tuple[str, str], LeanRoute] = {}
        for route in routes:
            if isinstance(route, LeanRoute) and not route.param_convertors:
                for method in route.methods or ():
                    self.table.setdefault((route.path, method), route)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            route = self.table.get((get_route_path(scope), scope["method"]))
            if route is not None:
                return Match.FULL, {"endpoint": route.endpoint, "path_params": {}, "route": route}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["route"].app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # an index: the routes it finds name themselves


class _Then(BackgroundTask):
    """The response's background work: the after-commit effects, after any it already had.
    Starlette only awaits `background()`: this skips BackgroundTask's constructor, whose
    `is_async_callable` inspection was ~2 % of a winning hold's samples."""

    def __init__(self, before: BackgroundTask | None, effects: list[Effect]) -> None:  # no super()
        self.before = before
        self.effects = effects

    async def __call__(self) -> None:
        if self.before is not None:
            await self.before()
        await run_effects(self.effects)


def query_ids(request: Request, *names: str) -> list[int]:
    """Positive int64 query parameters, with FastAPI's 422 error shape when one is not."""
    params = query_params(request.scope["query_string"])
    return _ids("query", request.query_params if params is None else params, names)


def query_params(raw: bytes) -> dict[str, str] | None:
    """The query string as Starlette's QueryParams reads it (latin-1, blank values kept, the last
    of a repeated name wins) when nothing in it is escaped, as in a poll's `concert_id=1&show_id=2`,
    without parse_qsl and the multi-dict (~8 % of a poll's time in the app); None when something
    is escaped (`%`, `+`: Starlette's parsing, then)."""
    if b"%" in raw or b"+" in raw:
        return None
    params: dict[str, str] = {}
    for pair in raw.decode("latin-1").split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params[name] = value
    return params


def path_ids(request: Request, *names: str) -> list[int]:
    """Positive int64 path parameters (the route declares them as plain `{name}` strings)."""
    return _ids("path", request.path_params, names)


def _ids(where: str, params: Any, names: tuple[str, ...]) -> list[int]:
    values, errors = [], []
    for name in names:
        raw = params.get(name)
        loc = (where, name)
        if raw is None:
            errors.append({"loc": loc, "msg": "Field required", "type": "missing", "input": None})
            continue
        if not decimal_digits(raw):  # int() would also take " 1", "+1", "1_0" and other scripts' digits
            errors.append({"loc": loc, "msg": "Input should be a valid integer", "type": "int_parsing"})
            continue
        value = int(raw)
        if not 1 <= value <= ID_MAX:
            errors.append({"loc": loc, "msg": f"Input should be between 1 and {ID_MAX}", "type": "int_range"})
            continue
        values.append(value)
    if errors:
        raise RequestValidationError(errors)
    return values


def _is_json(content_type: str | None) -> bool:
    if not content_type:  # like FastAPI: no content type is read as JSON
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def json_body(request: Request, model: type[M]) -> M:
    """The body validated by the route's own pydantic model; errors located under "body"."""
    if not _is_json(request.headers.get("content-type")):
        raise e.UnsupportedMediaType("Send the body as application/json")
    raw = await request.body()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [
            {"loc": ("body", *err["loc"]), "msg": err["msg"], "type": err["type"]} for err in exc.errors()
        ]
        raise RequestValidationError(errors) from None


def header(request: Request, name: str, max_length: int) -> str | None:
    value = request.headers.get(name)
    if value is not None and len(value) > max_length:
        raise RequestValidationError(
            [
                {
                    "loc": ("header", name.lower()),
                    "msg": f"String should have at most {max_length} characters",
                    "type": "string_too_long",
                }
            ]
        )
    return value


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match against our strong ETag (weak comparison, as RFC 9110 asks for GET)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))
