"""Accounts and auth over HTTP against real PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import insert, select, text

from boxoffice.auth import passwords
from boxoffice.auth.service import ensure_account, ensure_demo_accounts
from boxoffice.auth.tokens import issue_access_token, issue_email_verification_token
from boxoffice.config import secret
from boxoffice.db import tables
from boxoffice.db.audit import audit
from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime
from tests.factories import make_user

PASSWORD = "s3cret-passw0rd"


@pytest.fixture(autouse=True)
async def _balances_match_ledger(runtime: Runtime) -> AsyncIterator[None]:
    """After every test of the module: each balance equals the sum of its ledger (I3)."""
    yield
    async with runtime.sessions() as session, session.begin():
        report = await audit(session, include_inventory=False)
    assert report.violations["I3_balance_ledger_mismatch"] == []


async def signup(client: httpx.AsyncClient, email: str = "fan@example.com", **extra: Any) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, "name": "Fan", **extra}
    return await client.post("/api/auth/signup", json=body)


async def login(
    client: httpx.AsyncClient, email: str = "fan@example.com", password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def signed_in(client: httpx.AsyncClient, email: str = "fan@example.com") -> dict[str, Any]:
    assert (await signup(client, email)).status_code == 201
    resp = await login(client, email)
    assert resp.status_code == 200, resp.text
    tokens: dict[str, Any] = resp.json()
    tokens["headers"] = {"Authorization": f"Bearer {tokens['access_token']}"}
    return tokens


def assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert body["code"] == code, body
    if status == 401:
        assert resp.headers["www-authenticate"] == "Bearer"
    return body


# --- signup ------------------------------------------------------------------------------------


async def test_signup_normalizes_email_and_hashes_password(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    resp = await signup(client, "  Fan@Example.COM ", phone="010-1234", address="Seoul")
    assert resp.status_code == 201
    body = resp.json()
    assert body == {"id": body["id"], "email": "fan@example.com", "name": "Fan", "role": "USER"}
    async with runtime.sessions() as s:
        row = (await s.execute(select(tables.users).where(tables.users.c.id == body["id"]))).mappings().one()
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]
    assert row["phone"] == "010-1234" and row["address"] == "Seoul" and row["email_verified"] is False
    assert row["balance"] == 0


async def test_signup_duplicate_email_is_409(client: httpx.AsyncClient) -> None:
    assert (await signup(client)).status_code == 201
    assert_problem(await signup(client, "FAN@example.com"), 409, "EMAIL_TAKEN")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"password": PASSWORD, "name": "A"}, ["body", "email"]),
        ({"email": "a@b.example", "name": "A"}, ["body", "password"]),
        ({"email": "a@b.example", "password": PASSWORD}, ["body", "name"]),
        ({"email": 123, "password": PASSWORD, "name": "A"}, ["body", "email"]),
        ({"email": "a@b.example", "password": 12345678, "name": "A"}, ["body", "password"]),
        ({"email": "a@b.example", "password": PASSWORD, "name": ["A"]}, ["body", "name"]),
        ({"email": "not-an-email", "password": PASSWORD, "name": "A"}, ["body", "email"]),
        ({"email": "a" * 310 + "@b.example", "password": PASSWORD, "name": "A"}, ["body", "email"]),
        ({"email": "a@b.example", "password": "short", "name": "A"}, ["body", "password"]),
        ({"email": "a@b.example", "password": "p" * 129, "name": "A"}, ["body", "password"]),
        ({"email": "a@b.example", "password": PASSWORD, "name": "n" * 101}, ["body", "name"]),
        ({"email": "a@b.example", "password": PASSWORD, "name": "   "}, ["body", "name"]),
        ({"email": "a@b.example", "password": PASSWORD, "name": "A", "phone": "1" * 33}, ["body", "phone"]),
        ({"email": "a@b.example", "password": PASSWORD, "name": "A", "role": "ADMIN"}, ["body", "role"]),
    ],
)
async def test_signup_bad_input_is_422_with_field_location(
    client: httpx.AsyncClient, runtime: Runtime, body: dict[str, Any], loc: list[str]
) -> None:
    resp = await client.post("/api/auth/signup", json=body)
    problem = assert_problem(resp, 422, "VALIDATION_ERROR")
    assert loc in [e["loc"] for e in problem["errors"]]
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM users"))).scalar() == 0


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[]", b'"str"', b"null"])
async def test_malformed_json_is_422(client: httpx.AsyncClient, raw: bytes) -> None:
    for path in ("/api/auth/signup", "/api/auth/login", "/api/auth/refresh"):
        resp = await client.post(path, content=raw, headers={"Content-Type": "application/json"})
        problem = assert_problem(resp, 422, "VALIDATION_ERROR")
        assert problem["errors"][0]["loc"][0] == "body"


# --- login -------------------------------------------------------------------------------------


async def test_login_returns_token_pair(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await signup(client)
    resp = await login(client, " FAN@example.com")
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == runtime.settings.access_token_ttl_seconds
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert {"sub", "role", "jti", "iat", "exp"} <= set(claims)
    me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == "fan@example.com"


async def test_unknown_email_and_wrong_password_get_the_same_answer(client: httpx.AsyncClient) -> None:
    await signup(client)
    wrong = assert_problem(await login(client, password="wrong-password"), 401, "INVALID_CREDENTIALS")
    unknown = assert_problem(await login(client, email="nobody@example.com"), 401, "INVALID_CREDENTIALS")
    for volatile in ("request_id",):
        wrong.pop(volatile), unknown.pop(volatile)
    assert wrong == unknown


async def test_five_failures_then_429_with_retry_after(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await signup(client)
    for _ in range(5):
        assert_problem(await login(client, password="wrong-password"), 401, "INVALID_CREDENTIALS")
    throttled = await login(client)  # even the right password is refused now
    body = assert_problem(throttled, 429, "TOO_MANY_ATTEMPTS")
    assert 1 <= int(throttled.headers["retry-after"]) <= 15 * 60
    assert body["retry_after_seconds"] == int(throttled.headers["retry-after"])
    # Another email is not affected; an unknown email is throttled the same way.
    await signup(client, "other@example.com")
    assert (await login(client, "other@example.com")).status_code == 200
    for _ in range(5):
        await login(client, "ghost@example.com")
    assert_problem(await login(client, "ghost@example.com"), 429, "TOO_MANY_ATTEMPTS")
    # The window ends: the counter key expires in Redis.
    await runtime.redis.flushdb()
    assert (await login(client)).status_code == 200


async def test_success_resets_the_failure_counter(client: httpx.AsyncClient) -> None:
    await signup(client)
    for _ in range(4):
        await login(client, password="wrong-password")
    assert (await login(client)).status_code == 200
    for _ in range(4):
        await login(client, password="wrong-password")
    assert (await login(client)).status_code == 200


async def test_login_rehashes_old_parameters(client: httpx.AsyncClient, runtime: Runtime) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(PASSWORD)
    async with runtime.sessions() as s, s.begin():
        user_id = (
            await s.execute(
                insert(tables.users)
                .values(email="old@example.com", password_hash=weak, name="Old", role="USER", balance=0)
                .returning(tables.users.c.id)
            )
        ).scalar_one()
    assert (await login(client, "old@example.com")).status_code == 200
    async with runtime.sessions() as s:
        stored = (
            await s.execute(select(tables.users.c.password_hash).where(tables.users.c.id == user_id))
        ).scalar_one()
    assert stored != weak and not passwords.needs_rehash(stored)
    assert (await login(client, "old@example.com")).status_code == 200


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"email": "a@b.example"}, ["body", "password"]),
        ({"password": "x"}, ["body", "email"]),
        ({"email": "a@b.example", "password": 1}, ["body", "password"]),
        ({"email": "a@b.example", "password": "p" * 129}, ["body", "password"]),
        ({"email": "a@b.example", "password": "p", "remember": True}, ["body", "remember"]),
    ],
)
async def test_login_bad_input_is_422(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str]
) -> None:
    problem = assert_problem(await client.post("/api/auth/login", json=body), 422, "VALIDATION_ERROR")
    assert loc in [e["loc"] for e in problem["errors"]]


# --- access tokens and the authentication dependency ------------------------------------------


async def test_bad_bearer_tokens_are_401(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    user = await make_user(runtime)
    settings = runtime.settings
    good = jwt.decode(user["token"], options={"verify_signature": False})
    key = secret(settings.jwt_secret)
    header, _payload, signature = user["token"].split(".")
    admin_payload = jwt.encode({**good, "role": "ADMIN"}, "x" * 64, algorithm="HS256").split(".")[1]
    cases = {
        "missing": None,
        "empty": "Bearer ",
        "basic": "Basic dXNlcjpwYXNz",
        "garbage": "Bearer not.a.jwt",
        "forged": f"Bearer {header}.{admin_payload}.{signature}",
        "alg_none": "Bearer " + jwt.encode(good, None, algorithm="none"),
        "wrong_key": "Bearer " + jwt.encode(good, "another-secret" * 4, algorithm="HS256"),
        "alg_switch": "Bearer " + jwt.encode(good, key, algorithm="HS512"),
        "wrong_audience": "Bearer " + jwt.encode({**good, "aud": "elsewhere"}, key, algorithm="HS256"),
        "email_link": "Bearer "
        + issue_email_verification_token(settings, user_id=user["id"], email=user["email"], now=clock.now()),
    }
    for name, value in cases.items():
        headers = {"Authorization": value} if value is not None else {}
        resp = await client.get("/api/users/me", headers=headers)
        assert resp.status_code == 401, name
        assert resp.headers["www-authenticate"] == "Bearer", name
        assert resp.json()["code"] in ("AUTH_REQUIRED", "INVALID_TOKEN"), name
    assert (await client.get("/api/users/me", headers=user["headers"])).status_code == 200
    clock.advance(settings.access_token_ttl_seconds + 1)
    assert_problem(await client.get("/api/users/me", headers=user["headers"]), 401, "INVALID_TOKEN")


async def test_user_on_admin_route_is_403_admin_gets_200(client: httpx.AsyncClient, runtime: Runtime) -> None:
    user = await make_user(runtime)
    admin = await make_user(runtime, role="ADMIN")
    assert_problem(
        await client.get(f"/api/admin/users/{user['id']}", headers=user["headers"]), 403, "FORBIDDEN"
    )
    assert_problem(await client.get(f"/api/admin/users/{user['id']}"), 401, "AUTH_REQUIRED")
    resp = await client.get(f"/api/admin/users/{user['id']}", headers=admin["headers"])
    assert resp.status_code == 200 and resp.json()["email"] == user["email"]
    assert_problem(
        await client.get("/api/admin/users/999999", headers=admin["headers"]), 404, "USER_NOT_FOUND"
    )
    assert_problem(
        await client.get("/api/admin/users/abc", headers=admin["headers"]), 422, "VALIDATION_ERROR"
    )


# --- refresh rotation --------------------------------------------------------------------------


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates(client: httpx.AsyncClient, runtime: Runtime) -> None:
    first = await signed_in(client)
    resp = await refresh(client, first["refresh_token"])
    assert resp.status_code == 200
    second = resp.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.status_code == 200
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200
    # Nothing but hashes in Redis.
    keys = [k async for k in runtime.redis.scan_iter(match="bo:auth:refresh:*")]
    assert len(keys) == 1
    stored = await runtime.redis.hgetall(keys[0])
    dump = repr(stored)
    for token in (first["refresh_token"], second["refresh_token"], third.json()["refresh_token"]):
        assert token not in dump and token.split(".", 1)[1] not in dump


async def test_reuse_of_rotated_token_revokes_the_family(client: httpx.AsyncClient) -> None:
    first = await signed_in(client)
    second = (await refresh(client, first["refresh_token"])).json()
    assert_problem(await refresh(client, first["refresh_token"]), 401, "REFRESH_REUSED")
    # After the reuse both the old and the newest refresh tokens are refused.
    assert_problem(await refresh(client, second["refresh_token"]), 401, "REFRESH_REUSED")
    assert_problem(await refresh(client, first["refresh_token"]), 401, "REFRESH_REUSED")
    # Another login of the same user is unaffected.
    other = await login(client)
    assert (await refresh(client, other.json()["refresh_token"])).status_code == 200


async def test_invalid_and_expired_refresh_tokens(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    tokens = await signed_in(client)
    family = tokens["refresh_token"].split(".")[0]
    for bad in ("nope", "a.b", f"{family}.forged-secret", tokens["access_token"], "x" * 512):
        assert_problem(await refresh(client, bad), 401, "INVALID_REFRESH_TOKEN")
    # A guessed token of a real family does not revoke it.
    assert (await refresh(client, tokens["refresh_token"])).status_code == 200
    assert_problem(
        await client.post("/api/auth/refresh", json={"refresh_token": "x" * 513}), 422, "VALIDATION_ERROR"
    )
    assert_problem(await client.post("/api/auth/refresh", json={}), 422, "VALIDATION_ERROR")
    other = await login(client)
    clock.advance(runtime.settings.refresh_token_ttl_seconds + 1)
    assert_problem(await refresh(client, other.json()["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")


# --- logout ------------------------------------------------------------------------------------


async def test_logout_denies_access_token_and_deletes_refresh_family(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tokens = await signed_in(client)
    other_login = (await login(client)).json()
    assert (await client.post("/api/auth/logout", headers=tokens["headers"])).status_code == 204
    assert_problem(await client.get("/api/users/me", headers=tokens["headers"]), 401, "INVALID_TOKEN")
    assert_problem(await client.post("/api/auth/logout", headers=tokens["headers"]), 401, "INVALID_TOKEN")
    assert_problem(await refresh(client, tokens["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")
    # The deny-list entry lives until the token would have expired, not forever.
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    ttl = await runtime.redis.ttl(f"bo:auth:{{u{claims['sub']}}}:denied:{claims['jti']}")
    assert 0 < ttl <= runtime.settings.access_token_ttl_seconds
    # Only that login ends.
    other_headers = {"Authorization": f"Bearer {other_login['access_token']}"}
    assert (await client.get("/api/users/me", headers=other_headers)).status_code == 200
    assert (await refresh(client, other_login["refresh_token"])).status_code == 200
    assert_problem(await client.post("/api/auth/logout"), 401, "AUTH_REQUIRED")


# --- profile -----------------------------------------------------------------------------------


async def test_profile_get_and_patch(client: httpx.AsyncClient) -> None:
    tokens = await signed_in(client)
    me = (await client.get("/api/users/me", headers=tokens["headers"])).json()
    assert me["balance"] == 0 and me["role"] == "USER" and me["email_verified"] is False
    assert "password_hash" not in me and "deleted_at" not in me
    resp = await client.patch(
        "/api/users/me",
        headers=tokens["headers"],
        json={"name": " New Name ", "phone": "010", "address": "Busan"},
    )
    assert resp.status_code == 200
    assert resp.json()["name"] == "New Name" and resp.json()["phone"] == "010"
    resp = await client.patch("/api/users/me", headers=tokens["headers"], json={"phone": None})
    assert (
        resp.json()["phone"] is None
        and resp.json()["address"] == "Busan"
        and resp.json()["name"] == "New Name"
    )
    assert (await client.patch("/api/users/me", headers=tokens["headers"], json={})).status_code == 200
    for bad, loc in (
        ({"name": None}, ["body", "name"]),
        ({"name": ""}, ["body", "name"]),
        ({"address": "a" * 501}, ["body", "address"]),
        ({"email": "x@y.example"}, ["body", "email"]),
        ({"balance": 5}, ["body", "balance"]),
        ({"phone": 10}, ["body", "phone"]),
    ):
        problem = assert_problem(
            await client.patch("/api/users/me", headers=tokens["headers"], json=bad), 422, "VALIDATION_ERROR"
        )
        assert loc in [e["loc"] for e in problem["errors"]], bad
    assert_problem(await client.patch("/api/users/me", json={"name": "x"}), 401, "AUTH_REQUIRED")


async def test_soft_delete_refuses_tokens_logins_and_refresh(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    tokens = await signed_in(client)
    second = (await login(client)).json()
    assert (await client.delete("/api/users/me", headers=tokens["headers"])).status_code == 204
    for access in (tokens["access_token"], second["access_token"]):
        resp = await client.get("/api/users/me", headers={"Authorization": f"Bearer {access}"})
        assert_problem(resp, 401, "INVALID_TOKEN")
    assert_problem(await login(client), 401, "INVALID_CREDENTIALS")
    assert_problem(await refresh(client, second["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")
    async with runtime.sessions() as s:
        row = (
            (await s.execute(select(tables.users).where(tables.users.c.email == "fan@example.com")))
            .mappings()
            .one()
        )
    assert row["deleted_at"] is not None
    # The address is free again: a new account (new id) works normally.
    again = await signed_in(client)
    assert (await client.get("/api/users/me", headers=again["headers"])).json()["id"] != row["id"]


# --- email verification (link without SMTP; the SMTP path has its own test) ------------------


async def test_verify_link(client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock) -> None:
    tokens = await signed_in(client)
    me = (await client.get("/api/users/me", headers=tokens["headers"])).json()
    link = issue_email_verification_token(
        runtime.settings, user_id=me["id"], email=me["email"], now=clock.now()
    )
    stale = issue_email_verification_token(
        runtime.settings, user_id=me["id"], email="old@example.com", now=clock.now()
    )
    assert_problem(
        await client.get("/api/auth/verify", params={"token": "garbage"}), 400, "INVALID_VERIFICATION_TOKEN"
    )
    assert_problem(
        await client.get("/api/auth/verify", params={"token": stale}), 400, "INVALID_VERIFICATION_TOKEN"
    )
    assert_problem(await client.get("/api/auth/verify"), 422, "VALIDATION_ERROR")
    resp = await client.get("/api/auth/verify", params={"token": link})
    assert resp.status_code == 200 and resp.json() == {"email": me["email"], "email_verified": True}
    assert (await client.get("/api/users/me", headers=tokens["headers"])).json()["email_verified"] is True
    clock.advance(2 * 24 * 3600)
    assert_problem(
        await client.get("/api/auth/verify", params={"token": link}), 400, "INVALID_VERIFICATION_TOKEN"
    )


# --- top-up (single requests; concurrency in tests/concurrency/test_topup.py) -----------------


async def test_top_up(client: httpx.AsyncClient, runtime: Runtime) -> None:
    user = await make_user(runtime, balance=100)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    resp = await client.post("/api/users/me/balance", headers=user["headers"] | key, json={"amount": 250})
    assert resp.status_code == 200
    assert resp.json() == {"user_id": user["id"], "balance": 350, "amount": 250, "balance_currency": "KRW"}
    replay = await client.post("/api/users/me/balance", headers=user["headers"] | key, json={"amount": 250})
    assert replay.json() == resp.json() and replay.headers["idempotent-replayed"] == "true"
    assert_problem(
        await client.post("/api/users/me/balance", headers=user["headers"] | key, json={"amount": 251}),
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert_problem(
        await client.post("/api/users/me/balance", headers=user["headers"], json={"amount": 1}),
        400,
        "IDEMPOTENCY_KEY_REQUIRED",
    )
    async with runtime.sessions() as s:
        rows = (
            (
                await s.execute(
                    select(tables.balance_ledger).where(tables.balance_ledger.c.user_id == user["id"])
                )
            )
            .mappings()
            .all()
        )
    assert [(r["kind"], r["amount"], r["balance_after"]) for r in rows] == [
        ("ADJUSTMENT", 100, 100),
        ("TOPUP", 250, 350),
    ]
    me = (await client.get("/api/users/me", headers=user["headers"])).json()
    assert me["balance"] == 350


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"amount": 0},
        {"amount": -5},
        {"amount": 10_000_001},
        {"amount": "100"},
        {"amount": 1.5},
        {"amount": None},
        {"amount": 5, "currency": "KRW"},
    ],
)
async def test_top_up_bad_input_is_422(
    client: httpx.AsyncClient, runtime: Runtime, body: dict[str, Any]
) -> None:
    user = await make_user(runtime)
    headers = user["headers"] | {"Idempotency-Key": uuid.uuid4().hex}
    problem = assert_problem(
        await client.post("/api/users/me/balance", headers=headers, json=body), 422, "VALIDATION_ERROR"
    )
    assert problem["errors"][0]["loc"][0] == "body"
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT count(*) FROM balance_ledger"))).scalar() == 0


async def test_top_up_limits_and_auth(client: httpx.AsyncClient, runtime: Runtime) -> None:
    user = await make_user(runtime)
    for amount in (1, 10_000_000):
        headers = user["headers"] | {"Idempotency-Key": uuid.uuid4().hex}
        assert (
            await client.post("/api/users/me/balance", headers=headers, json={"amount": amount})
        ).status_code == 200
    assert_problem(
        await client.post("/api/users/me/balance", headers={"Idempotency-Key": "k"}, json={"amount": 1}),
        401,
        "AUTH_REQUIRED",
    )
    long_key = user["headers"] | {"Idempotency-Key": "k" * 256}
    assert_problem(
        await client.post("/api/users/me/balance", headers=long_key, json={"amount": 1}),
        422,
        "VALIDATION_ERROR",
    )


# --- accounts from settings (demo seeding) ----------------------------------------------------


async def test_ensure_account_is_idempotent_and_uses_the_ledger(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    async with runtime.sessions() as s, s.begin():
        first = await ensure_account(
            s, runtime.settings, email="Seed@Example.com", password=PASSWORD, name="Seed", initial_balance=500
        )
        again = await ensure_account(
            s, runtime.settings, email="seed@example.com", password="other-pass", name="X"
        )
        accounts = await ensure_demo_accounts(s, runtime.settings)
        accounts_again = await ensure_demo_accounts(s, runtime.settings)
    assert first == again and accounts == accounts_again
    resp = await login(client, "seed@example.com")
    me = (
        await client.get("/api/users/me", headers={"Authorization": f"Bearer {resp.json()['access_token']}"})
    ).json()
    assert me["balance"] == 500 and me["email_verified"] is True
    admin = await login(
        client, runtime.settings.admin_email, runtime.settings.admin_password.get_secret_value()
    )
    admin_headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    assert (await client.get(f"/api/admin/users/{first}", headers=admin_headers)).status_code == 200
    fan = (await client.get(f"/api/admin/users/{accounts['fan']}", headers=admin_headers)).json()
    assert fan["balance"] == runtime.settings.demo_fan_balance


async def test_token_minted_for_a_user_works_until_denied(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    user = await make_user(runtime)
    token, _claims = issue_access_token(
        runtime.settings, user_id=user["id"], role="USER", now=runtime.clock.now()
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/users/me", headers=headers)).status_code == 200
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204  # no session: jti only
    assert_problem(await client.get("/api/users/me", headers=headers), 401, "INVALID_TOKEN")
    assert (await client.get("/api/users/me", headers=user["headers"])).status_code == 200
