"""Admission tokens: forged, expired, other-user, other-show refused with their codes; a valid one
is accepted with Redis unreachable (verification is local: signature + claims)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import APIRouter
from redis.exceptions import ConnectionError as RedisConnectionError

from boxoffice.app import create_app
from boxoffice.config import Settings
from boxoffice.errors import DomainError
from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime, open_runtime
from boxoffice.waiting_room.dependencies import QueueGate
from boxoffice.waiting_room.tokens import check_queue_token, issue_queue_token
from tests.factories import make_user
from tests.integration.test_queue_support import make_show, tick

DEAD_REDIS = "redis://127.0.0.1:1/0"


async def _ready_token(client: httpx.AsyncClient, runtime: Runtime, show: dict, user: dict) -> str:  # type: ignore[type-arg]
    await client.post("/api/queue", json=show["body"], headers=user["headers"])
    await tick(runtime, show["id"])
    resp = await client.post("/api/reservations/token", json=show["body"], headers=user["headers"])
    body = resp.json()
    assert body["status"] == "READY", body
    return str(body["token"])


async def _code(runtime: Runtime, user_id: int, show_id: int, token: str | None) -> tuple[int, str]:
    with pytest.raises(DomainError) as err:
        await check_queue_token(runtime, user_id, show_id, token)
    return err.value.status, err.value.code


async def test_bad_tokens_are_refused_with_their_codes(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings, clock: OffsetClock
) -> None:
    show, other_show = await make_show(runtime), await make_show(runtime)
    fan, other = await make_user(runtime), await make_user(runtime)
    token = await _ready_token(client, runtime, show, fan)
    claims = await check_queue_token(runtime, fan["id"], show["id"], token)
    assert claims.user_id == fan["id"] and claims.show_id == show["id"] and claims.ticket == 1

    assert await _code(runtime, fan["id"], show["id"], None) == (401, "QUEUE_TOKEN_REQUIRED")
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}), "not-the-key" * 4, algorithm="HS256"
    )
    assert await _code(runtime, fan["id"], show["id"], forged) == (401, "QUEUE_TOKEN_INVALID")
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    assert await _code(runtime, fan["id"], show["id"], tampered) == (401, "QUEUE_TOKEN_INVALID")
    assert await _code(runtime, fan["id"], show["id"], "garbage") == (401, "QUEUE_TOKEN_INVALID")
    # the access-token key does not sign admission tokens
    auth_signed = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}),
        settings.jwt_secret.get_secret_value(),  # type: ignore[union-attr]
        algorithm="HS256",
    )
    assert await _code(runtime, fan["id"], show["id"], auth_signed) == (401, "QUEUE_TOKEN_INVALID")
    expired, _ = issue_queue_token(
        settings,
        user_id=fan["id"],
        show_id=show["id"],
        ticket=1,
        ttl_seconds=30,
        now=clock.now() - timedelta(minutes=5),
    )
    assert await _code(runtime, fan["id"], show["id"], expired) == (401, "QUEUE_TOKEN_INVALID")
    assert await _code(runtime, other["id"], show["id"], token) == (403, "QUEUE_TOKEN_MISMATCH")
    assert await _code(runtime, fan["id"], other_show["id"], token) == (403, "QUEUE_TOKEN_MISMATCH")
    # the lease and the token run out together (plus the 30 s leeway)
    clock.advance(600 + 31)
    assert await _code(runtime, fan["id"], show["id"], token) == (401, "QUEUE_TOKEN_INVALID")
    metrics = (await client.get("/metrics")).text
    for outcome in ("valid", "missing", "invalid", "mismatch"):
        assert f'boxoffice_queue_token_verifications_total{{outcome="{outcome}"}}' in metrics


async def test_valid_token_is_accepted_with_redis_down(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
) -> None:
    show, other_show = await make_show(runtime), await make_show(runtime)
    fan = await make_user(runtime)
    token = await _ready_token(client, runtime, show, fan)

    async with open_runtime(settings, runtime.database_url, DEAD_REDIS, clock=runtime.clock) as broken:
        with pytest.raises(RedisConnectionError):
            await broken.redis.ping()
        app = create_app(settings, runtime=broken)
        router = APIRouter()

        @router.get("/test/shows/{show_id}/gate")
        async def gate(show_id: int, claims: QueueGate) -> dict[str, int]:
            return {"user_id": claims.user_id, "show_id": claims.show_id, "ticket": claims.ticket}

        app.include_router(router)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            ok = await c.get(
                f"/test/shows/{show['id']}/gate", headers={**fan["headers"], "X-Queue-Token": token}
            )
            assert ok.status_code == 200, ok.text
            assert ok.json() == {"user_id": fan["id"], "show_id": show["id"], "ticket": 1}
            missing = await c.get(f"/test/shows/{show['id']}/gate", headers=fan["headers"])
            assert missing.status_code == 401 and missing.json()["code"] == "QUEUE_TOKEN_REQUIRED"
            wrong = await c.get(
                f"/test/shows/{other_show['id']}/gate", headers={**fan["headers"], "X-Queue-Token": token}
            )
            assert wrong.status_code == 403 and wrong.json()["code"] == "QUEUE_TOKEN_MISMATCH"
