"""Logins are limited by their failures and by the client's real address, on every front door
(issue 26, finding 2).

The web login once passed no address, so every browser shared one "unknown" bucket: a stranger's
failures locked everyone, the admin included, out of the web login; and the per-address limit
counted successes too, so a crowd behind one NAT was refused. Now the web and the API take the
same path with the address the trusted gateway reports, only failures count (per address and
per account+address), and the argon2 slots bound floods.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
from sqlalchemy import insert

from boxoffice.auth import passwords
from boxoffice.config import Settings
from boxoffice.db import tables
from boxoffice.runtime import Runtime
from tests.security.test_rate_limits import limited

PASSWORD = "Crowd-Passw0rd-1"
CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
HTML = {"Accept": "text/html"}
# The shipped defaults of every login limit (the suite turns them off), with a cheap argon2 so a
# crowd of 500 logs in within seconds; the same cheap parameters are stored with the accounts.
CHEAP_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
LOGIN_LIMITS = {
    name: Settings.model_fields[name].default
    for name in (
        "limit_failed_logins_per_address",
        "limit_failed_logins_per_account_and_address",
        "limit_signups_per_address_per_hour",
        "argon2_concurrency",
        "argon2_max_waiting",
    )
    if name in Settings.model_fields
}


async def _accounts(runtime: Runtime, emails: list[str], *, role: str = "USER") -> None:
    hashed = passwords.hasher(1, 1024, 1).hash(PASSWORD)
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            insert(tables.users),
            [
                {"email": e, "password_hash": hashed, "name": "Fan", "role": role, "balance": 0}
                for e in emails
            ],
        )


async def _web_login(c: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await c.get("/login", headers=HTML)
    assert page.status_code == 200
    found = CSRF_RE.search(page.text)
    assert found
    return await c.post(
        "/login",
        data={"csrf_token": found.group(1), "email": email, "password": password, "next": "/account"},
        headers=HTML,
    )


async def test_a_strangers_failures_never_lock_others_out_of_the_web_login(runtime: Runtime) -> None:
    await _accounts(runtime, ["boss@example.test"], role="ADMIN")
    await _accounts(runtime, ["owner@example.test"])
    async with limited(runtime, **LOGIN_LIMITS, **CHEAP_ARGON2) as client_from:
        attacker, admin, owner = (
            client_from("203.0.113.9"),
            client_from("198.51.100.1"),
            client_from("198.51.100.2"),
        )
        codes = [
            (await _web_login(attacker, f"nobody{n}@example.test", "wrong-password")).status_code
            for n in range(40)
        ]
        assert set(codes) == {401}, codes  # 40 failures: still under the address's failure budget
        for _ in range(6):
            await _web_login(attacker, "owner@example.test", "guess-guess")
        refused = await _web_login(attacker, "owner@example.test", PASSWORD)
        assert refused.status_code == 429 and "try again later" in refused.text
        # the admin and the owner, each from their own address, sign in on the web at once
        resp = await _web_login(admin, "boss@example.test", PASSWORD)
        assert resp.status_code == 303 and resp.headers["location"] == "/account", resp.text
        resp = await _web_login(owner, "owner@example.test", PASSWORD)
        assert resp.status_code == 303, resp.text
        # the web sees the address the trusted gateway forwards, like the API does
        gateway = client_from("127.0.0.1")
        gateway.headers["X-Forwarded-For"] = "203.0.113.9"
        assert (await _web_login(gateway, "owner@example.test", PASSWORD)).status_code == 429
        gateway.headers["X-Forwarded-For"] = "192.0.2.80"
        assert (await _web_login(gateway, "owner@example.test", PASSWORD)).status_code == 303


async def test_500_fans_behind_one_nat_get_in_while_a_sprayer_there_is_blocked(runtime: Runtime) -> None:
    """A bench-style crowd: 500 fans log in from one address (a carrier's CGNAT) in waves of 20 at
    once, while an attacker at the same address guesses the admin's and nine other fans' passwords."""
    fans = [f"fan{n}-{uuid.uuid4().hex[:6]}@example.test" for n in range(500)]
    await _accounts(runtime, fans)
    await _accounts(runtime, ["admin@example.test"], role="ADMIN")
    # (a fan whose own account is being guessed from the same address cannot be told apart from
    # the guesser: that account waits out the window there, see docs/security.md)
    others = [f"victim{n}@example.test" for n in range(9)]
    await _accounts(runtime, others)
    victims = ["admin@example.test", *others]
    nat = "100.64.0.1"
    async with limited(runtime, **LOGIN_LIMITS, **CHEAP_ARGON2) as client_from:
        crowd, sprayer = client_from(nat), client_from(nat)

        async def fan_login(email: str) -> int:
            resp = await crowd.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            return resp.status_code

        async def guess(n: int) -> httpx.Response:
            victim = victims[n % len(victims)]
            return await sprayer.post("/api/auth/login", json={"email": victim, "password": f"Summer{n}!"})

        fan_codes: list[int] = []
        spray: list[httpx.Response] = []
        for wave in range(25):
            batch = fans[wave * 20 : (wave + 1) * 20]
            results: list[Any] = await asyncio.gather(
                *(fan_login(e) for e in batch), *(guess(wave * 10 + k) for k in range(10))
            )
            fan_codes += results[:20]
            spray += results[20:]
        assert fan_codes == [200] * 500, sorted(set(fan_codes))
        spray_codes = [r.status_code for r in spray]
        # five guesses per victim from this address, then refused without a password check
        assert spray_codes.count(401) == 5 * len(victims), spray_codes
        assert spray_codes.count(429) == len(spray) - 5 * len(victims)
        assert {r.json()["code"] for r in spray if r.status_code == 429} == {"TOO_MANY_ATTEMPTS"}
        # blocked even when it guesses right...
        right = await sprayer.post(
            "/api/auth/login", json={"email": "admin@example.test", "password": PASSWORD}
        )
        assert right.status_code == 429
        # ...while the admin, from anywhere else, gets in
        admin = client_from("198.51.100.7")
        ok = await admin.post("/api/auth/login", json={"email": "admin@example.test", "password": PASSWORD})
        assert ok.status_code == 200


async def test_a_sprayer_of_many_accounts_is_refused_at_the_address_failure_budget(runtime: Runtime) -> None:
    async with limited(
        runtime, **{**LOGIN_LIMITS, "limit_failed_logins_per_address": 8}, **CHEAP_ARGON2
    ) as cf:
        await _accounts(runtime, ["fine@example.test"])
        sprayer, bystander = cf("203.0.113.77"), cf("198.51.100.20")
        codes = [
            (
                await sprayer.post(
                    "/api/auth/login", json={"email": f"victim{n}@example.com", "password": "Summer2026!"}
                )
            ).status_code
            for n in range(12)
        ]
        assert codes == [401] * 8 + [429] * 4, codes
        ok = await bystander.post(
            "/api/auth/login", json={"email": "fine@example.test", "password": PASSWORD}
        )
        assert ok.status_code == 200
        # successes do not spend the budget: the bystander's address logs in again and again
        for _ in range(20):
            again = await bystander.post(
                "/api/auth/login", json={"email": "fine@example.test", "password": PASSWORD}
            )
            assert again.status_code == 200
