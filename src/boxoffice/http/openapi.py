"""The OpenAPI document: FastAPI's, completed so that every operation documents every error it
can answer (and nothing else), each as problem+json narrowed to the stable codes of its status.

FastAPI documents what a route declares (`responses=problems(...)`: the errors of its flow) and
its parameters. What it cannot see is added here, one rule each:
- what the route's dependencies answer (`http_errors.raises`: the login, the admin role, the
  queue token, the Idempotency-Key), and the headers they need, marked required;
- a parameter or a body can be refused: 422 VALIDATION_ERROR, as problem+json (in place of
  FastAPI's HTTPValidationError, which we never serve); a body can be too large: 413 (http_guard);
- every /api operation reads PostgreSQL or Redis: 503 BACKEND_UNAVAILABLE (http_guard);
- the waiting room's own traffic is shed under overload: 429 QUEUE_BUSY (overload.SHEDDABLE).
A 500 is a bug and a 405 is no operation's answer, so neither is documented.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from boxoffice import errors as e
from boxoffice.http.problems import PROBLEM_SCHEMA, Documented, documented_codes, problems
from boxoffice.http.shedding import SHEDDABLE

DOCS_ASSETS = Path(__file__).resolve().parent / "docs_assets"
SWAGGER = "/docs-assets/swagger-ui-5.35.0"
REDOC = "/docs-assets/redoc-2.5.4"


def _csp(html: bytes, *, workers: bool = False) -> str:
    """The docs page's Content-Security-Policy: scripts, styles, images and fetches from this
    server only; the one inline script (Swagger's set-up) by its hash."""
    scripts = re.findall(rb"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts)
    policy = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    )
    return policy + ("; worker-src blob:" if workers else "")


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc from the vendored assets under /docs-assets (docs_assets/
    README.md): no request leaves the server, as in the web app."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.staticfiles import StaticFiles

    title = f"{app.title} API"
    swagger = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=title,
        swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
    )
    redoc = get_redoc_html(
        openapi_url="/openapi.json",
        title=title,
        redoc_js_url=f"{REDOC}/redoc.standalone.js",
        redoc_favicon_url=f"{SWAGGER}/favicon-32x32.png",
        with_google_fonts=False,
    )
    pages = {
        "/docs": (bytes(swagger.body), _csp(bytes(swagger.body))),
        "/redoc": (bytes(redoc.body), _csp(bytes(redoc.body), workers=True)),
    }

    def page(path: str) -> Any:
        body, policy = pages[path]

        async def serve(request: Request) -> HTMLResponse:
            return HTMLResponse(
                body, headers={"content-security-policy": policy, "cache-control": "no-cache"}
            )

        return serve

    for path in pages:
        app.add_route(path, page(path), methods=["GET"], include_in_schema=False)
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")


def install_openapi(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(build(), app.routes)  # FastAPI keeps what it built in app.openapi_schema
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any], routes: list[BaseRoute]) -> None:
    paths = schema.get("paths", {})
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        errors, headers = _from_dependencies(route.dependant)
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _complete(operation, route.path_format, method, errors, headers)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def _from_dependencies(dependant: Dependant) -> tuple[list[Documented], set[str]]:
    errors: list[Documented] = []
    headers: set[str] = set()
    for dependency in dependant.dependencies:
        errors.extend(getattr(dependency.call, "openapi_errors", ()))
        headers.update(h.lower() for h in getattr(dependency.call, "openapi_required_headers", ()))
        more, more_headers = _from_dependencies(dependency)
        errors.extend(more)
        headers |= more_headers
    return errors, headers


def _complete(
    operation: dict[str, Any], path: str, method: str, errors: list[Documented], headers: set[str]
) -> None:
    found: list[Documented] = list(errors)
    if operation.get("parameters") or "requestBody" in operation:
        found.append(e.Unprocessable)
    if "requestBody" in operation:
        found.append(e.BodyTooLarge)
    if path.startswith("/api/"):
        found.append(e.BackendUnavailable)
    if (method, path) in SHEDDABLE:
        found.append(e.QueueBusy)
    responses: dict[str, Any] = operation["responses"]
    for status in list(responses):
        codes = documented_codes(responses[status])
        if codes or status == "422":  # ours, or FastAPI's HTTPValidationError: merged below
            found.extend((int(status), e.error_class(code)) for code in codes)
            del responses[status]
    responses.update({str(status): answer for status, answer in problems(*found).items()})
    operation["responses"] = dict(sorted(responses.items()))
    for parameter in operation.get("parameters", ()):
        if parameter["in"] == "header" and parameter["name"].lower() in headers:
            parameter["required"] = True
