"""The roles as separate process groups behind nginx with the shipped deploy/nginx.conf.

A whole purchase through the gateway (login-protected queue -> admission by the worker role ->
seat map -> hold -> live seat stream -> payment), a 1,000-attempt hold burst through it, the
per-address limit on logins, and the queue role killed (kill -9 of its process group) while
holds and payments keep going. Needs the system's nginx (`apt-get install -y nginx`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from boxoffice.config import Settings, secret
from boxoffice.ops.backends.datadir import Backends
from boxoffice.ops.gateway import RolesStack, nginx_binary
from boxoffice.runtime import Runtime
from tests.concurrency.test_hold_burst import (
    ATTEMPTS,
    SEATS,
    _assert_one_winner_per_seat,
    _fire,
    _plan,
    _users,
)
from tests.factories import make_user
from tests.helpers.net import free_port
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway(
    settings: Settings, backends: Backends, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    nginx_binary()  # one line naming the install command when nginx is missing
    env = {
        "BOXOFFICE_DATABASE_URL": backends.database_url,
        "BOXOFFICE_REDIS_URL": backends.redis_url,
        "BOXOFFICE_DATA_DIR": str(tmp_path_factory.mktemp("roles-data")),
        "BOXOFFICE_JWT_SECRET": secret(settings.jwt_secret),
        "BOXOFFICE_QUEUE_TOKEN_SECRET": secret(settings.queue_token_secret),
        "BOXOFFICE_ENVIRONMENT": "test",
        "BOXOFFICE_ACCESS_LOG": "false",
        # Seven role processes plus the suite's own pool share the server's max_connections
        # (100 on a stock PostgreSQL): each role warms only a few and grows on demand.
        "BOXOFFICE_DB_POOL_SIZE": "3",
        "BOXOFFICE_DB_POOL_OVERFLOW": "20",
        "BOXOFFICE_GRPC_PORT": str(free_port()),
    }
    stack = RolesStack(Path(tmp_path_factory.mktemp("roles")), env, listen_port=free_port())
    stack.start()
    try:
        yield stack  # type: ignore[misc]
    finally:
        stack.stop()


def _url(stack: Any) -> str:
    return str(stack.url)


async def _admitted(client: httpx.AsyncClient, user: dict[str, Any], show: dict[str, Any]) -> str:
    """Join through the gateway and poll until the worker role admits; the admission token."""
    body = {"concert_id": show["concert_id"], "show_id": show["show_id"]}
    joined = await client.post("/api/queue", json=body, headers=user["headers"])
    assert joined.status_code in (200, 201), joined.text
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        status = (await client.get("/api/queue/status", params=body, headers=user["headers"])).json()
        if status["status"] == "READY":
            return str(status["token"])
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.2)


async def test_a_whole_purchase_through_the_gateway(gateway: Any, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=6)
    fan = await make_user(runtime, balance=100_000)
    async with httpx.AsyncClient(base_url=_url(gateway), timeout=30) as client:
        shows = await client.get(f"/api/concerts/{show['concert_id']}/shows")  # catalog role
        assert shows.status_code == 200 and shows.headers["x-request-id"]
        token = await _admitted(client, fan, show)  # queue role + worker
        headers = {**fan["headers"], "X-Queue-Token": token}
        seats = await client.get(f"/api/shows/{show['show_id']}/seats", headers=headers)  # catalog
        assert seats.status_code == 200
        picked = [s["id"] for s in seats.json()["seats"][:2]]

        events: list[str] = []

        async def watch() -> None:  # booking role's SSE, unbuffered through nginx
            url = f"/api/shows/{show['show_id']}/seats/stream"
            async with client.stream("GET", url, headers=headers) as stream:
                async for line in stream.aiter_lines():
                    events.append(line)
                    if str(picked[0]) in line:
                        return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)  # the stream is open before the hold
        hold = await client.post(
            "/api/reservations",
            json={"show_id": show["show_id"], "seat_ids": picked},
            headers={**headers, "Idempotency-Key": "gw-hold"},
        )
        assert hold.status_code == 201, hold.text
        await asyncio.wait_for(watcher, 20)  # the change arrived while the stream stayed open
        paid = await client.post(
            "/api/payments",
            json={"reservation_id": hold.json()["reservation_id"], "method": "BALANCE"},
            headers={**headers, "Idempotency-Key": "gw-pay"},
        )
        assert paid.status_code in (200, 201), paid.text
        mine = await client.get(f"/api/reservations/{hold.json()['reservation_id']}", headers=fan["headers"])
        assert mine.json()["status"] == "RESERVED"
        # A second hold, cancelled: DELETE /api/reservations/{id} reaches the role that serves it.
        other = await client.post(
            "/api/reservations",
            json={"show_id": show["show_id"], "seat_ids": [s["id"] for s in seats.json()["seats"][2:3]]},
            headers={**headers, "Idempotency-Key": "gw-hold-2"},
        )
        assert other.status_code == 201, other.text
        cancelled = await client.delete(
            f"/api/reservations/{other.json()['reservation_id']}", headers=headers
        )
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED", cancelled.text
    await assert_invariants(runtime)


async def test_a_burst_of_1000_holds_through_the_gateway(gateway: Any, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=SEATS)
    users = await _users(runtime, show["show_id"])
    plan = _plan(show["seat_ids"], users, ATTEMPTS, seed=5)
    responses = await _fire(_url(gateway), show["show_id"], plan)
    await _assert_one_winner_per_seat(runtime, show["show_id"], responses)
    assert any(r.status_code == 201 for r in responses)


async def test_the_serving_number_is_microcached_by_the_gateway(gateway: Any, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=4)
    url = f"/api/shows/{show['show_id']}/queue/serving"
    async with httpx.AsyncClient(base_url=_url(gateway), timeout=30) as client:
        answers = [await client.get(url) for _ in range(10)]  # well within one second on any box
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    statuses = [a.headers.get("x-cache-status") for a in answers]
    assert statuses[0] in ("MISS", "EXPIRED") and "HIT" in statuses[1:], statuses
    assert answers[-1].json() == answers[0].json() or statuses[-1] != "HIT"


async def test_logins_are_limited_per_address_by_the_gateway(gateway: Any) -> None:
    body = {"email": "nobody@example.test", "password": "wrong-password"}
    async with httpx.AsyncClient(base_url=_url(gateway), timeout=30) as client:
        answers = await asyncio.gather(*(client.post("/api/auth/login", json=body) for _ in range(40)))
    limited = [a for a in answers if a.status_code == 429 and a.json()["code"] == "RATE_LIMITED"]
    assert limited, [a.status_code for a in answers]  # nginx's own answer, problem+json
    assert all(a.headers["content-type"] == "application/problem+json" for a in limited)


async def test_killing_the_queue_role_does_not_stop_holds_and_payments(
    gateway: Any, runtime: Runtime
) -> None:
    show = await make_show(runtime, seats=4)
    fan = await make_user(runtime, balance=100_000)
    gateway.kill_group("queue")
    async with httpx.AsyncClient(base_url=_url(gateway), timeout=30) as client:
        gone = await client.get(
            "/api/queue/status",
            params={"concert_id": show["concert_id"], "show_id": show["show_id"]},
            headers=fan["headers"],
        )
        assert gone.status_code == 503 and gone.json()["code"] == "SERVICE_UNAVAILABLE"
        # A fan admitted before the loss holds and pays: neither needs the queue tier.
        admitted = gated(runtime, fan, show["show_id"])
        hold = await client.post(
            "/api/reservations",
            json={"show_id": show["show_id"], "seat_ids": show["seat_ids"][:2]},
            headers={**admitted, "Idempotency-Key": "after-kill"},
        )
        assert hold.status_code == 201, hold.text
        paid = await client.post(
            "/api/payments",
            json={"reservation_id": hold.json()["reservation_id"], "method": "BALANCE"},
            headers={**admitted, "Idempotency-Key": "after-kill-pay"},
        )
        assert paid.status_code in (200, 201), paid.text
        assert (await client.get("/api/concerts")).status_code == 200
    await assert_invariants(runtime)
