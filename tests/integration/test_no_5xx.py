"""Every documented route, called with out-of-range, zero and non-numeric ids: a client mistake
is a 4xx problem+json, never a 500 (an unbounded id once reached PostgreSQL as a bigint overflow)."""

from __future__ import annotations

import re

import httpx

from boxoffice.runtime import Runtime
from tests.factories import make_user


async def test_bad_ids_on_every_route_are_client_errors(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = await make_user(runtime, role="ADMIN")
    headers = {**admin["headers"], "X-Queue-Token": "not-a-token", "Idempotency-Key": "k"}
    doc = (await client.get("/openapi.json")).json()
    server_errors = []
    for path, operations in doc["paths"].items():
        for method in operations:
            for value in ("99999999999999999999", "0", "abc"):
                url = re.sub(r"\{[^}]+\}", value, path)
                params = {"concert_id": value, "show_id": value, "before": value}
                r = await client.request(method.upper(), url, headers=headers, params=params, json={})
                if r.status_code >= 500:
                    server_errors.append((method.upper(), url, r.status_code))
    assert server_errors == []
