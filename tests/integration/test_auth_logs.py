"""No password, token or hash reaches a log line (the JSON logs the app ships to ELK)."""

from __future__ import annotations

import io
import json
import uuid

import httpx
from sqlalchemy import select

from boxoffice.auth.tokens import issue_email_verification_token
from boxoffice.config import secret
from boxoffice.db import tables
from boxoffice.runtime import Runtime


async def test_no_secret_in_any_log_line(
    json_logs: io.StringIO, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    password, wrong = "Correct-Horse-9", "Wrong-Horse-9"
    email = "logfan@example.com"
    assert (
        await client.post("/api/auth/signup", json={"email": email, "password": password, "name": "L"})
    ).status_code == 201
    bad = await client.post("/api/auth/signup", json={"email": email, "password": "short", "name": "L"})
    assert bad.status_code in (409, 422)
    assert (await client.post("/api/auth/login", json={"email": email, "password": wrong})).status_code == 401
    first = (await client.post("/api/auth/login", json={"email": email, "password": password})).json()
    second = (await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    reused = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.json()["code"] == "REFRESH_REUSED"
    again = (await client.post("/api/auth/login", json={"email": email, "password": password})).json()
    headers = {"Authorization": f"Bearer {again['access_token']}"}
    me = (await client.get("/api/users/me", headers=headers)).json()
    link = issue_email_verification_token(
        runtime.settings, user_id=me["id"], email=email, now=runtime.clock.now()
    )
    assert (await client.get("/api/auth/verify", params={"token": link})).status_code == 200
    topup = headers | {"Idempotency-Key": uuid.uuid4().hex}
    assert (await client.post("/api/users/me/balance", headers=topup, json={"amount": 10})).status_code == 200
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    assert (await client.get("/api/users/me", headers=headers)).status_code == 401
    async with runtime.sessions() as s:
        stored_hash = (await s.execute(select(tables.users.c.password_hash))).scalar_one()

    lines = [line for line in json_logs.getvalue().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON event
    # The test client's own library (httpx) logs the URLs it calls; that is not the app's log.
    app_lines = [line for line, rec in zip(lines, records, strict=True) if rec.get("log.logger") != "httpx"]
    assert any(json.loads(line)["message"] == "login_succeeded" for line in app_lines)
    assert any(json.loads(line)["message"] == "refresh_token_reused" for line in app_lines)
    secrets = {
        "password": password,
        "wrong password": wrong,
        "password hash": stored_hash,
        "hash body": stored_hash.rsplit("$", 1)[1],
        "jwt secret": secret(runtime.settings.jwt_secret),
        "verification link token": link,
    }
    for n, pair in enumerate((first, second, again)):
        secrets[f"access token {n}"] = pair["access_token"]
        secrets[f"access signature {n}"] = pair["access_token"].rsplit(".", 1)[1]
        secrets[f"refresh token {n}"] = pair["refresh_token"]
        secrets[f"refresh secret {n}"] = pair["refresh_token"].split(".", 1)[1]
    for line in app_lines:
        for name, value in secrets.items():
            assert value not in line, f"{name} leaked into a log line: {line}"
