"""A fuzz run against the API with real accounts: whatever comes back, no log line carries an
email, phone, address, password or password hash (the JSON logs are shipped to ELK)."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import httpx
from sqlalchemy import select

from boxoffice.db import tables
from boxoffice.runtime import Runtime

EMAIL, PASSWORD = "pii.owner@example.com", "Pii-Secret-Passw0rd"
PHONE, ADDRESS = "+82-10-5555-0199", "77 Piiroad, Seoul"


def _mutations(rng: random.Random, value: str) -> list[Any]:
    return [
        value,
        value + "\x00",
        "\x00" + value,
        value * 50,
        f"{value}'; DROP TABLE users; --",
        value.encode().hex(),
        rng.randint(-(2**70), 2**70),
        [value],
        {"$ne": value},
        None,
        "\ud800" + value,
    ]


async def test_fuzz_run_leaves_no_pii_in_logs(
    json_logs: io.StringIO, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    rng = random.Random(16)
    signup = {"email": EMAIL, "password": PASSWORD, "name": "Pii Owner", "phone": PHONE, "address": ADDRESS}
    assert (await client.post("/api/auth/signup", json=signup)).status_code == 201
    login = (await client.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})).json()
    auth = {"Authorization": f"Bearer {login['access_token']}"}
    targets = [
        ("POST", "/api/auth/signup", lambda v: {**signup, "email": v}),
        ("POST", "/api/auth/signup", lambda v: {**signup, "name": v}),
        ("POST", "/api/auth/signup", lambda v: {**signup, "phone": v}),
        ("POST", "/api/auth/signup", lambda v: signup),  # EMAIL_TAKEN: the constraint names the email
        ("POST", "/api/auth/login", lambda v: {"email": v, "password": PASSWORD}),
        ("POST", "/api/auth/login", lambda v: {"email": EMAIL, "password": v}),
        ("PATCH", "/api/users/me", lambda v: {"address": v}),
        ("PATCH", "/api/users/me", lambda v: {"phone": v}),
        ("POST", "/api/auth/refresh", lambda v: {"refresh_token": v}),
        ("POST", "/api/users/me/balance", lambda v: {"amount": v}),
        ("POST", "/api/queue", lambda v: {"concert_id": v, "show_id": 1}),
        ("POST", "/api/reservations", lambda v: {"show_id": 1, "seat_ids": [v]}),
    ]
    statuses: dict[int, int] = {}
    for method, url, make in targets:
        for seed in rng.sample((EMAIL, PASSWORD, PHONE, ADDRESS), 1):
            for value in _mutations(rng, seed):
                body = json.dumps(make(value), ensure_ascii=True)
                resp = await client.request(
                    method,
                    url,
                    content=body.encode(),
                    headers={
                        **auth,
                        "Content-Type": "application/json",
                        "Idempotency-Key": f"k{rng.random()}",
                    },
                )
                statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        for params in ({"q": EMAIL}, {"q": EMAIL + "\x00"}, {"artist": PHONE}):
            resp = await client.get("/api/concerts", params=params)
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
    assert not any(code >= 500 for code in statuses), statuses
    async with runtime.sessions() as s:
        stored_hash = (
            await s.execute(select(tables.users.c.password_hash).where(tables.users.c.email == EMAIL))
        ).scalar_one()
    log = json_logs.getvalue()
    assert log.count("\n") >= 3  # the run was logged (the access log goes to stderr directly)
    for name, value in {
        "email": EMAIL,
        "email local part": "pii.owner",
        "password": PASSWORD,
        "phone": PHONE,
        "address": ADDRESS,
        "password hash": stored_hash,
        "hash body": stored_hash.rsplit("$", 1)[1],
        "access token": login["access_token"],
        "refresh token": login["refresh_token"],
    }.items():
        for line in log.splitlines():
            assert value not in line, f"{name} leaked into a log line: {line[:500]}"
