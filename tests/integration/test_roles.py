"""Roles: each mounts only its routes, and its OpenAPI lists only them."""

from __future__ import annotations

import httpx
import pytest

from boxoffice.app import ROLES, create_app
from boxoffice.config import Settings
from boxoffice.runtime import Runtime

OPERATIONS = {"/healthz", "/readyz", "/metrics"}


def _paths(settings: Settings, runtime: Runtime, *roles: str) -> set[str]:
    return set(create_app(settings, runtime=runtime, roles=roles).openapi()["paths"])


def test_each_role_documents_only_its_routes(settings: Settings, runtime: Runtime) -> None:
    everything = _paths(settings, runtime, "all")
    per_role = {role: _paths(settings, runtime, role) - OPERATIONS for role in ROLES}
    assert per_role["queue"] >= {
        "/api/queue",
        "/api/queue/status",
        "/api/reservations/token",
        "/api/shows/{show_id}/queue/challenge",  # the gateway: ^/api/shows/N/queue/ -> queue
        "/api/shows/{show_id}/waitlist",  # the gateway: ^/api/shows/N/waitlist$ -> queue
    }
    assert per_role["booking"] >= {
        "/api/reservations",
        "/api/reservations/{reservation_id}",  # GET (booking) and DELETE (payments' refund rule)
        "/api/shows/{show_id}/seats/stream",
    }
    assert per_role["payments"] == {"/api/payments", "/api/payments/{payment_id}"}
    assert per_role["auth"] >= {"/api/auth/login", "/api/auth/signup", "/api/users/me"}
    assert per_role["catalog"] >= {"/api/concerts", "/api/shows/{show_id}/seats"}
    assert per_role["admin"] and all(p.startswith("/api/admin") for p in per_role["admin"])
    assert not any(p.startswith("/api/admin") for r, ps in per_role.items() if r != "admin" for p in ps)
    for role, paths in per_role.items():  # no route served by two roles; together they are "all"
        others = set().union(*(ps for r, ps in per_role.items() if r != role))
        assert not paths & others, (role, paths & others)
    assert set().union(*per_role.values()) | OPERATIONS == everything


async def test_a_role_does_not_serve_another_roles_routes(settings: Settings, runtime: Runtime) -> None:
    app = create_app(settings, runtime=runtime, roles=["queue"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.post("/api/auth/login", json={})).status_code == 404
        assert (await client.get("/api/concerts")).status_code == 404
        answer = await client.get("/api/queue/status", params={"concert_id": 1, "show_id": 1})
        assert answer.status_code == 401  # the queue's own route, which wants a login


def test_an_unknown_role_is_refused_with_the_list(settings: Settings, runtime: Runtime) -> None:
    with pytest.raises(ValueError, match=r"unknown role 'merch'.*queue"):
        create_app(settings, runtime=runtime, roles=["merch"])
