"""Email verification over a real in-process SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from boxoffice.app import create_app
from boxoffice.config import Settings
from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime, open_runtime
from tests.helpers.net import free_port
from tests.helpers.smtp import Inbox


async def _client_with(
    settings: Settings, runtime: Runtime, clock: OffsetClock
) -> AsyncIterator[httpx.AsyncClient]:
    async with open_runtime(settings, runtime.database_url, runtime.redis_url, clock=clock) as rt:
        app = create_app(settings, runtime=rt)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            yield c


@pytest.fixture
async def smtp_client(
    settings: Settings, runtime: Runtime, clock: OffsetClock, inbox: tuple[Inbox, int]
) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": inbox[1], "public_base_url": "https://tickets.example"}
    )
    async for c in _client_with(configured, runtime, clock):
        yield c


SIGNUP = {"email": "New.Fan@Example.com", "password": "verify-me-please", "name": "New Fan"}


async def test_signup_sends_a_signed_link_that_verifies(
    smtp_client: httpx.AsyncClient, inbox: tuple[Inbox, int]
) -> None:
    handler, _ = inbox
    resp = await smtp_client.post("/api/auth/signup", json=SIGNUP)
    assert resp.status_code == 201
    assert len(handler.messages) == 1  # sent by the response's background task, after commit
    rcpt, msg = handler.messages[0]
    assert rcpt == ["new.fan@example.com"]
    assert msg["To"] == "new.fan@example.com"
    body = msg.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "verify-me-please" not in text
    match = re.search(r"https://tickets\.example/api/auth/verify\?token=(\S+)", text)
    assert match, text
    token = parse_qs(urlsplit(match.group(0)).query)["token"][0]

    login = await smtp_client.post(
        "/api/auth/login", json={"email": SIGNUP["email"], "password": SIGNUP["password"]}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await smtp_client.get("/api/users/me", headers=headers)).json()["email_verified"] is False
    verified = await smtp_client.get("/api/auth/verify", params={"token": token})
    assert verified.status_code == 200 and verified.json() == {
        "email": "new.fan@example.com",
        "email_verified": True,
    }
    assert (await smtp_client.get("/api/users/me", headers=headers)).json()["email_verified"] is True
    # Tampering with the link breaks it.
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (await smtp_client.get("/api/auth/verify", params={"token": tampered})).json()["code"] == (
        "INVALID_VERIFICATION_TOKEN"
    )


async def test_no_mail_for_a_failed_signup(smtp_client: httpx.AsyncClient, inbox: tuple[Inbox, int]) -> None:
    assert (await smtp_client.post("/api/auth/signup", json=SIGNUP)).status_code == 201
    assert (await smtp_client.post("/api/auth/signup", json=SIGNUP)).status_code == 409
    assert (await smtp_client.post("/api/auth/signup", json={**SIGNUP, "name": ""})).status_code == 422
    assert len(inbox[0].messages) == 1


async def test_smtp_down_does_not_fail_the_signup(
    settings: Settings, runtime: Runtime, clock: OffsetClock
) -> None:
    configured = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": free_port()})
    async for c in _client_with(configured, runtime, clock):
        resp = await c.post("/api/auth/signup", json=SIGNUP)
        assert resp.status_code == 201
        login = await c.post(
            "/api/auth/login", json={"email": SIGNUP["email"], "password": SIGNUP["password"]}
        )
        assert login.status_code == 200


async def test_smtp_off_by_default(
    client: httpx.AsyncClient, runtime: Runtime, inbox: tuple[Inbox, int]
) -> None:
    assert runtime.settings.smtp_host is None
    assert (await client.post("/api/auth/signup", json=SIGNUP)).status_code == 201
    assert inbox[0].messages == []
