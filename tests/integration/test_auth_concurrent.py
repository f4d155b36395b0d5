"""Concurrency claims of the auth store, over separate connections to a real server."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from boxoffice.runtime import Runtime

PASSWORD = "parallel-passw0rd"


def _client(live_server: str, n: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=live_server, limits=limits, timeout=60)


async def test_concurrent_wrong_passwords_cannot_exceed_the_limit(live_server: str, runtime: Runtime) -> None:
    n = 20
    async with _client(live_server, n) as c:
        assert (
            await c.post(
                "/api/auth/signup", json={"email": "p@example.com", "password": PASSWORD, "name": "P"}
            )
        ).status_code == 201
        responses = await asyncio.gather(
            *(
                c.post("/api/auth/login", json={"email": "p@example.com", "password": f"wrong-{i}"})
                for i in range(n)
            )
        )
        codes = Counter(r.json()["code"] for r in responses)
        # The attempt is counted atomically before the password is checked: exactly 5 get checked.
        assert codes == {"INVALID_CREDENTIALS": 5, "TOO_MANY_ATTEMPTS": n - 5}
        assert all("retry-after" in r.headers for r in responses if r.status_code == 429)


async def test_concurrent_refresh_with_one_token_has_one_winner(live_server: str, runtime: Runtime) -> None:
    n = 20
    async with _client(live_server, n) as c:
        await c.post("/api/auth/signup", json={"email": "r@example.com", "password": PASSWORD, "name": "R"})
        pair = (await c.post("/api/auth/login", json={"email": "r@example.com", "password": PASSWORD})).json()
        responses = await asyncio.gather(
            *(c.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}) for _ in range(n))
        )
        winners = [r for r in responses if r.status_code == 200]
        assert len(winners) == 1
        assert Counter(r.json()["code"] for r in responses if r.status_code != 200) == {
            "REFRESH_REUSED": n - 1
        }
        # The replays revoked the login: the winner's new refresh token is refused too.
        again = await c.post("/api/auth/refresh", json={"refresh_token": winners[0].json()["refresh_token"]})
        assert again.status_code == 401 and again.json()["code"] == "REFRESH_REUSED"
