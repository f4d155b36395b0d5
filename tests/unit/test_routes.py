"""The API's routes: the hot routes are tried first, and that order decides nothing else."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match, Route

from boxoffice.app import ALL_ROLES, ROLES, role_routes
from boxoffice.http.hot import LeanRoute


def _sample_path(route: Route) -> str:
    """A request path the route matches: every path parameter "1"."""
    return re.sub(r"\{[^}]+\}", "1", route.path)


def _full_matches(routes: list[Route], method: str, path: str) -> list[Route]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    return [r for r in routes if r.matches(scope)[0] is Match.FULL]


@pytest.mark.parametrize("roles", [[ALL_ROLES], *[[role] for role in ROLES]])
def test_the_hot_routes_come_first_and_no_request_matches_two_routes(roles: list[str]) -> None:
    routes = [r for r in role_routes(roles) if isinstance(r, Route)]
    kinds = [isinstance(r, LeanRoute) for r in routes]
    assert kinds == sorted(kinds, reverse=True), "a hot route behind another route"
    checked = 0
    for route in routes:
        for method in sorted(route.methods or ()):
            matched = _full_matches(routes, method, _sample_path(route))
            # Only the route itself, or a hot route and its FastAPI twin (same path), the hot one first.
            assert {r.path for r in matched} == {route.path}, (method, route.path, [r.path for r in matched])
            assert len(matched) == 1 or (len(matched) == 2 and isinstance(matched[0], LeanRoute))
            checked += 1
    assert checked >= len(routes)


def test_a_hold_is_matched_among_the_first_routes() -> None:
    routes = [r for r in role_routes([ALL_ROLES]) if isinstance(r, Route)]
    position = next(i for i, r in enumerate(routes) if _full_matches([r], "POST", "/api/reservations"))
    assert isinstance(routes[position], LeanRoute) and position < 10, position
