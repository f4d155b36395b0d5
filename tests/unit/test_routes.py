"""The API's routes: the hot routes are tried first, and that order decides nothing else."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Match, NoMatchFound, Route

from boxoffice.app import ALL_ROLES, ROLES, role_routes
from boxoffice.http.hot import HotTable, LeanRoute


def _sample_path(route: Route) -> str:
    """A request path the route matches: every path parameter "1"."""
    return re.sub(r"\{[^}]+\}", "1", route.path)


def _scope(method: str, path: str) -> dict[str, object]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }


def _full_matches(routes: list[Route], method: str, path: str) -> list[Route]:
    scope = _scope(method, path)
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


def test_the_hot_table_finds_the_hot_routes_without_a_path_id_and_nothing_else() -> None:
    routes = role_routes([ALL_ROLES])
    table = HotTable(routes)
    lean = [r for r in routes if isinstance(r, LeanRoute)]
    static = [r for r in lean if "{" not in r.path]
    assert {r.path for r in static} >= {"/api/reservations", "/api/payments", "/api/queue"}
    for route in static:
        for method in route.methods or ():
            match, child = table.matches(_scope(method, route.path))
            assert match is Match.FULL and child["route"] is route, (method, route.path)
    # Another method on the same path, a path with an id, a path nobody serves: the router's scan.
    for method, path in [("GET", "/api/reservations"), ("PUT", "/api/reservations"),
                         ("GET", "/api/shows/1/seats/status"), ("POST", "/api/reservations/")]:  # fmt: skip
        assert table.matches(_scope(method, path))[0] is Match.NONE, (method, path)
    # An index, not a route: it names nothing, so the router's url_path_for asks the routes behind.
    with pytest.raises(NoMatchFound):
        table.url_path_for("static", path="css/app.css")
