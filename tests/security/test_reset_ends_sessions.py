"""A password reset signs the account out everywhere: whoever knew (or stole) the old password and
is logged in loses both the access and the refresh token of every login; the new password works."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from boxoffice.auth import reset
from boxoffice.config import secret
from boxoffice.runtime import Runtime
from tests.integration.test_auth import login, signed_in


async def test_a_password_reset_ends_every_login_of_the_account(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    email = "reset-ends@example.test"
    phone = await signed_in(client, email)  # the owner's first login
    thief = (await login(client, email)).json()  # a second login, with the same (leaked) password
    other = await signed_in(client, "bystander@example.test")
    for tokens in (phone, thief):
        me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200

    async with runtime.sessions() as s:
        user_id, password_hash = (
            await s.execute(text("SELECT id, password_hash FROM users WHERE email = :e"), {"e": email})
        ).one()
    expires = int(runtime.clock.now().timestamp()) + 600
    token = reset.mint(
        secret(runtime.settings.jwt_secret), user_id=user_id, password_hash=password_hash, expires_at=expires
    )
    done = await client.post(
        "/api/auth/password-reset/confirm", json={"token": token, "password": "a brand new one"}
    )
    assert done.status_code in (200, 204), done.text

    for tokens in (phone, thief):
        me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 401, me.text
        refreshed = await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 401, refreshed.text
    assert (await login(client, email)).status_code == 401  # the old password is gone
    fresh = await login(client, email, "a brand new one")
    assert fresh.status_code == 200
    me = await client.get(
        "/api/users/me", headers={"Authorization": f"Bearer {fresh.json()['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["email"] == email
    # Another account's login is untouched.
    theirs = await client.get("/api/users/me", headers=other["headers"])
    assert theirs.status_code == 200
