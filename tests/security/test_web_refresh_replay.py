"""A replayed web refresh cookie is a replay, even within the single-flight minute (issue 26,
finding 5).

The web layer let requests presenting the same refresh token share one rotation for 60 s, so
that a page and its own fetches racing at expiry do not revoke the login. It keyed that on the
token alone: a stolen `bo_refresh` presented from another browser within the minute got the
owner's new tokens. Now the shared rotation is bound to the browser's own secret (its HttpOnly
CSRF cookie): the owner's concurrent requests still share it, anyone else gets the reuse answer,
which revokes the login.
"""

from __future__ import annotations

import asyncio

import httpx

from boxoffice.runtime import Runtime
from tests.integration.test_web_layer import HTML, _signup


async def test_a_stolen_refresh_cookie_replayed_within_the_minute_revokes_the_login(
    app, runtime: Runtime, clock
) -> None:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as owner,
        httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as thief,
    ):
        assert (await _signup(owner, "replay@example.test")).status_code == 303
        stolen = owner.cookies["bo_refresh"]
        clock.advance(runtime.settings.access_token_ttl_seconds + 5)
        # the owner's page and its fetch race at expiry: one rotation, both served, no revocation
        first, second = await asyncio.gather(owner.get("/account"), owner.get("/account"))
        assert first.status_code == 200 and second.status_code == 200
        assert "replay@example.test" in first.text
        assert owner.cookies["bo_refresh"] != stolen

        # a second later, from another browser (its own CSRF cookie, or none), the old cookie
        await thief.get("/login")  # a browser of its own: it has a bo_csrf cookie now
        thief.cookies.set("bo_refresh", stolen)
        replay = await thief.get("/account")
        assert replay.status_code == 303 and replay.headers["location"].startswith("/login"), replay.text
        assert "replay@example.test" not in replay.text
        # the reuse answer revoked the login: the owner's rotated tokens no longer work either
        clock.advance(runtime.settings.access_token_ttl_seconds + 5)
        after = await owner.get("/account")
        assert after.status_code == 303, after.text


async def test_a_replay_without_any_browser_secret_is_a_replay_too(app, runtime: Runtime, clock) -> None:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as owner,
        httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as thief,
    ):
        assert (await _signup(owner, "bare@example.test")).status_code == 303
        stolen = owner.cookies["bo_refresh"]
        clock.advance(runtime.settings.access_token_ttl_seconds + 5)
        assert (await owner.get("/account")).status_code == 200
        thief.cookies.set("bo_refresh", stolen)
        replay = await thief.get("/account")
        assert replay.status_code == 303, replay.text
