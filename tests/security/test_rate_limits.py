"""Floods from one user or one address are refused with 429 + Retry-After and a problem code;
failed logins slow the attacker without locking the owner out; argon2 work is bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import select

from boxoffice.app import create_app
from boxoffice.auth.passwords import hasher
from boxoffice.db import tables
from boxoffice.errors import TooManyRequests
from boxoffice.kit.limits import PasswordWork
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import gated

PASSWORD = "Rate-Limit-Passw0rd"


@asynccontextmanager
async def limited(runtime: Runtime, **limits: Any) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """An app over the shared backends whose settings carry `limits`; clients from any address."""
    settings = runtime.settings.model_copy(update=limits)
    work = PasswordWork(
        settings.argon2_concurrency,
        settings.argon2_max_waiting,
        hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism),
    )
    rt = dataclasses.replace(runtime, settings=settings, password_work=work)
    app = create_app(settings, runtime=rt)
    clients: list[httpx.AsyncClient] = []

    def client_from(address: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://t"
        )
        clients.append(c)
        return c

    try:
        yield client_from
    finally:
        for c in clients:
            await c.aclose()


def _problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["code"] == code, body
    if status == 429:
        assert int(resp.headers["retry-after"]) >= 1
    return body


async def test_failed_logins_slow_the_attacker_but_never_lock_the_owner_out(runtime: Runtime) -> None:
    async with limited(runtime, limit_failed_logins_per_address=100) as client_from:
        attacker, owner = client_from("203.0.113.66"), client_from("198.51.100.10")
        email = "owner@example.com"
        signup = {"email": email, "password": PASSWORD, "name": "Owner"}
        assert (await owner.post("/api/auth/signup", json=signup)).status_code == 201
        for _ in range(5):
            wrong = await attacker.post("/api/auth/login", json={"email": email, "password": "guess-guess"})
            _problem(wrong, 401, "INVALID_CREDENTIALS")
        # the attacker's address is throttled for this account, even with the right password...
        _problem(
            await attacker.post("/api/auth/login", json={"email": email, "password": PASSWORD}),
            429,
            "TOO_MANY_ATTEMPTS",
        )
        # ...while the owner, from their own address, signs in at once (no lockout to trigger)
        assert (
            await owner.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        ).status_code == 200
        # through the trusted gateway (loopback + X-Forwarded-For) the address is the forwarded one
        gateway = client_from("127.0.0.1")
        via_attacker = {"X-Forwarded-For": "10.0.0.1, 203.0.113.66"}
        resp = await gateway.post(
            "/api/auth/login", json={"email": email, "password": PASSWORD}, headers=via_attacker
        )
        _problem(resp, 429, "TOO_MANY_ATTEMPTS")
        resp = await gateway.post(
            "/api/auth/login",
            json={"email": email, "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.44"},
        )
        assert resp.status_code == 200


async def test_password_spraying_from_one_address_is_refused(runtime: Runtime) -> None:
    async with limited(runtime, limit_failed_logins_per_address=8) as client_from:
        sprayer, bystander = client_from("203.0.113.77"), client_from("198.51.100.20")
        codes = []
        for n in range(12):
            resp = await sprayer.post(
                "/api/auth/login", json={"email": f"victim{n}@example.com", "password": "Summer2026!"}
            )
            codes.append(resp.status_code)
        assert codes[:8] == [401] * 8 and codes[8:] == [429] * 4, codes
        _problem(resp, 429, "TOO_MANY_ATTEMPTS")
        assert (
            await bystander.post("/api/auth/login", json={"email": "x@example.com", "password": "whatever-1"})
        ).status_code == 401


async def test_argon2_work_is_bounded() -> None:
    work = PasswordWork(concurrency=1, max_waiting=2)
    active, peak, refused = 0, 0, 0

    async def one() -> None:
        nonlocal active, peak, refused
        try:
            async with work.slot():
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.05)
                active -= 1
        except TooManyRequests as exc:
            assert exc.code == "LOGIN_BUSY" and exc.headers["Retry-After"] == "1"
            refused += 1

    await asyncio.gather(*(one() for _ in range(10)))
    assert peak == 1 and refused == 7  # one hashing, two queued, the rest refused at once


async def test_a_login_flood_gets_login_busy_not_a_starved_process(runtime: Runtime) -> None:
    async with limited(
        runtime, argon2_concurrency=1, argon2_max_waiting=2, limit_failed_logins_per_address=0
    ) as client_from:
        clients = [client_from(f"192.0.2.{n}") for n in range(1, 21)]
        responses = await asyncio.gather(
            *(
                c.post("/api/auth/login", json={"email": f"flood{n}@example.com", "password": "x" * 12})
                for n, c in enumerate(clients)
            )
        )
        codes = sorted(r.status_code for r in responses)
        assert set(codes) <= {401, 429} and codes.count(429) >= 10, codes
        _problem(next(r for r in responses if r.status_code == 429), 429, "LOGIN_BUSY")


async def test_per_user_limits_on_joins_holds_payments_and_topups(runtime: Runtime) -> None:
    show = await make_show(runtime, seats=20)
    fan, other = await make_user(runtime, balance=10**6), await make_user(runtime, balance=10**6)
    body = {"concert_id": show["concert_id"], "show_id": show["show_id"]}
    limits = {
        "limit_joins_per_minute": 3,
        "limit_holds_per_minute": 2,
        "limit_payments_per_minute": 2,
        "limit_topups_per_minute": 2,
    }
    async with limited(runtime, **limits) as client_from:
        c = client_from("198.51.100.30")
        joins = [
            (await c.post("/api/queue", json=body, headers=fan["headers"])).status_code for _ in range(5)
        ]
        assert joins[:3] == [200] * 3 or all(code in (200, 201) for code in joins[:3]), joins
        last = await c.post("/api/queue", json=body, headers=fan["headers"])
        _problem(last, 429, "RATE_LIMITED")
        assert (await c.post("/api/queue", json=body, headers=other["headers"])).status_code in (200, 201)

        seats = show["seat_ids"]
        holds = []
        for n in range(3):
            resp = await c.post(
                "/api/reservations",
                json={"show_id": show["show_id"], "seat_ids": [seats[n]]},
                headers=gated(runtime, fan, show["show_id"], f"hold-{n}"),
            )
            holds.append(resp)
        assert holds[0].status_code == 201, holds[0].text
        _problem(holds[2], 429, "RATE_LIMITED")

        pays = []
        for n in range(3):
            pays.append(
                await c.post(
                    "/api/payments",
                    json={"reservation_id": 999_999, "method": "BALANCE"},
                    headers={**gated(runtime, fan, show["show_id"]), "Idempotency-Key": f"pay-{n}"},
                )
            )
        assert [p.status_code for p in pays[:2]] == [404, 404]
        _problem(pays[2], 429, "RATE_LIMITED")

        tops = [
            await c.post(
                "/api/users/me/balance",
                json={"amount": 10},
                headers={**fan["headers"], "Idempotency-Key": uuid.uuid4().hex},
            )
            for _ in range(3)
        ]
        assert [t.status_code for t in tops[:2]] == [200, 200]
        _problem(tops[2], 429, "RATE_LIMITED")
        ok = await c.post(
            "/api/users/me/balance",
            json={"amount": 10},
            headers={**other["headers"], "Idempotency-Key": "o-1"},
        )
        assert ok.status_code == 200
    async with runtime.sessions() as s:
        balance = (
            await s.execute(select(tables.users.c.balance).where(tables.users.c.id == fan["id"]))
        ).scalar_one()
    assert balance == 10**6 + 20  # the refused top-up changed nothing


async def test_top_ups_cannot_take_a_balance_past_the_cap(runtime: Runtime) -> None:
    fan = await make_user(runtime, balance=900)
    async with limited(runtime, max_balance=1_000) as client_from:
        c = client_from("198.51.100.40")
        ok = await c.post(
            "/api/users/me/balance",
            json={"amount": 100},
            headers={**fan["headers"], "Idempotency-Key": "cap-1"},
        )
        assert ok.status_code == 200 and ok.json()["balance"] == 1_000
        over = await c.post(
            "/api/users/me/balance",
            json={"amount": 1},
            headers={**fan["headers"], "Idempotency-Key": "cap-2"},
        )
        _problem(over, 422, "BALANCE_LIMIT")
        again = await c.post(
            "/api/users/me/balance",
            json={"amount": 1},
            headers={**fan["headers"], "Idempotency-Key": "cap-2"},
        )
        _problem(again, 422, "BALANCE_LIMIT")  # nothing was stored under the key either
    async with runtime.sessions() as s:
        balance = (
            await s.execute(select(tables.users.c.balance).where(tables.users.c.id == fan["id"]))
        ).scalar_one()
    assert balance == 1_000
