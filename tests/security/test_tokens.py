"""Tokens end when their login or place ends: refresh-token reuse and logout refuse every access
token of that login; leaving the queue refuses its admission token; /metrics is not public; the
default admin's password is generated per data dir and shown once."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr

from boxoffice.app import create_app
from boxoffice.config import Settings, first_time, with_secrets
from boxoffice.runtime import Runtime
from boxoffice.waiting_room.tokens import decode_queue_token
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_queue_support import tick

PASSWORD = "Token-Test-Passw0rd"


async def _login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    resp = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    pair: dict[str, str] = resp.json()
    return pair


async def _me(client: httpx.AsyncClient, pair: dict[str, str]) -> int:
    return (
        await client.get("/api/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    ).status_code


async def test_refresh_reuse_and_logout_end_every_access_token_of_the_login(
    client: httpx.AsyncClient,
) -> None:
    email = "tokens@example.com"
    signup = {"email": email, "password": PASSWORD, "name": "T"}
    assert (await client.post("/api/auth/signup", json=signup)).status_code == 201
    first = await _login(client, email)
    other_login = await _login(client, email)  # another device: not affected
    second = (await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert await _me(client, first) == 200 and await _me(client, second) == 200
    # the first refresh token replayed (stolen): the login is revoked, with all its access tokens
    reused = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.json()["code"] == "REFRESH_REUSED"
    assert await _me(client, first) == 401 and await _me(client, second) == 401
    assert await _me(client, other_login) == 200

    # logout with the newest access token ends the older ones of the same login too
    third = (
        await client.post("/api/auth/refresh", json={"refresh_token": other_login["refresh_token"]})
    ).json()
    out = await client.post("/api/auth/logout", headers={"Authorization": f"Bearer {third['access_token']}"})
    assert out.status_code == 204
    assert await _me(client, other_login) == 401 and await _me(client, third) == 401
    assert (
        await client.post("/api/auth/refresh", json={"refresh_token": third["refresh_token"]})
    ).status_code == 401
    # a fresh login works
    assert await _me(client, await _login(client, email)) == 200


async def test_leaving_the_queue_ends_the_admission_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    made = await make_show(runtime, seats=4)
    show = {
        "id": made["show_id"],
        "seat_ids": made["seat_ids"],
        "body": {"concert_id": made["concert_id"], "show_id": made["show_id"]},
    }
    fan = await make_user(runtime)

    async def admitted() -> str:
        assert (await client.post("/api/queue", json=show["body"], headers=fan["headers"])).status_code in (
            200,
            201,
        )
        await tick(runtime, show["id"])
        body = (
            await client.post("/api/reservations/token", json=show["body"], headers=fan["headers"])
        ).json()
        assert body["status"] == "READY", body
        return str(body["token"])

    def seats(token: str) -> httpx.Response:
        return client.get(
            f"/api/shows/{show['id']}/seats", headers={**fan["headers"], "X-Queue-Token": token}
        )  # type: ignore[return-value]

    token = await admitted()
    assert (await seats(token)).status_code == 200
    params = {"concert_id": show["body"]["concert_id"], "show_id": show["id"]}
    # leave early in a second, so that the admission again below falls in the same second
    runtime.clock.advance(1.05 - runtime.clock.now().microsecond / 1e6)  # type: ignore[attr-defined]
    left_at = int(runtime.clock.now().timestamp())
    assert (await client.delete("/api/queue", params=params, headers=fan["headers"])).status_code == 204
    refused = await seats(token)
    assert refused.status_code == 401 and refused.json()["code"] == "QUEUE_TOKEN_INVALID"
    hold = await client.post(
        "/api/reservations",
        json={"show_id": show["id"], "seat_ids": [show["seat_ids"][0]]},
        headers={**fan["headers"], "X-Queue-Token": token, "Idempotency-Key": "leave-1"},
    )
    assert hold.status_code == 401 and hold.json()["code"] == "QUEUE_TOKEN_INVALID"
    # queueing again and being admitted again gives a token that works, even within the same
    # second as the leave (token and leave times are in milliseconds)
    token = await admitted()
    assert int(decode_queue_token(runtime.settings, token).issued_at_ms / 1000) == left_at
    again = await seats(token)
    assert again.status_code == 200, again.text


async def test_metrics_need_a_loopback_client_or_the_token(app, settings: Settings, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    async def get(application, client_addr: tuple[str, int], **headers: str) -> httpx.Response:  # type: ignore[no-untyped-def]
        transport = httpx.ASGITransport(app=application, client=client_addr)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/metrics", headers=headers)

    assert (await get(app, ("127.0.0.1", 5000))).status_code == 200
    for refused in (
        await get(app, ("203.0.113.9", 5000)),
        await get(app, ("127.0.0.1", 5000), **{"X-Forwarded-For": "203.0.113.9"}),  # through nginx
    ):
        assert refused.status_code == 401 and refused.json()["code"] == "METRICS_TOKEN_REQUIRED"
    guarded = create_app(settings.model_copy(update={"metrics_token": SecretStr("m" * 32)}), runtime=runtime)
    assert (await get(guarded, ("203.0.113.9", 5000), Authorization="Bearer " + "m" * 32)).status_code == 200
    wrong = await get(guarded, ("203.0.113.9", 5000), Authorization="Bearer " + "x" * 32)
    assert wrong.status_code == 401


def test_the_default_admin_password_is_generated_per_data_dir_and_shown_once(tmp_path: Path) -> None:
    one = with_secrets(Settings(data_dir=tmp_path / "one"))
    again = with_secrets(Settings(data_dir=tmp_path / "one"))
    other = with_secrets(Settings(data_dir=tmp_path / "two"))
    assert (
        one.admin_password is not None
        and again.admin_password is not None
        and other.admin_password is not None
    )
    secret = one.admin_password.get_secret_value()
    assert secret == again.admin_password.get_secret_value() != other.admin_password.get_secret_value()
    assert len(secret) >= 32 and secret != "admin-change-me"
    assert (tmp_path / "one" / "secrets.json").stat().st_mode & 0o077 == 0
    assert first_time(tmp_path / "one", "admin-password-shown") is True
    assert first_time(tmp_path / "one", "admin-password-shown") is False
    configured = with_secrets(
        Settings(data_dir=tmp_path / "three", admin_password=SecretStr("operator-chosen-1"))
    )
    assert configured.admin_password is not None
    assert configured.admin_password.get_secret_value() == "operator-chosen-1"
