"""No money without a payment behind it in production (issue 26, finding 4).

`POST /api/users/me/balance` and `/account/top-up` credited up to 100,000.00 a call with nothing
paid, whatever the deployment; BOXOFFICE_ENVIRONMENT was read nowhere. Now production (the
default of every command but `up`) has no free top-up and no demo fan, and `up` says its mode.
"""

from __future__ import annotations

import dataclasses
import re

import httpx
import pytest
from sqlalchemy import text

from boxoffice.config import Settings
from boxoffice.ops.demo import seed_demo
from boxoffice.ops.up import mode_line
from boxoffice.runtime import Runtime
from tests.integration.test_web_layer import HTML, _signup
from tests.security.test_rate_limits import limited

PROD = {"environment": "prod"}


async def _money(runtime: Runtime) -> tuple[int, int]:
    async with runtime.sessions() as s:
        balance = (await s.execute(text("SELECT coalesce(sum(balance), 0) FROM users"))).scalar_one()
        ledger = (await s.execute(text("SELECT count(*) FROM balance_ledger"))).scalar_one()
    return int(balance), int(ledger)


def test_production_is_the_default_and_up_says_its_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOXOFFICE_ENVIRONMENT", raising=False)
    settings = Settings()
    assert settings.environment == "prod" and not settings.free_topups and not settings.demo_fan
    assert mode_line(settings).startswith("prod: a real sale")
    dev = Settings(environment="dev")
    assert dev.free_topups and dev.demo_fan and "BOXOFFICE_ENVIRONMENT=prod" in mode_line(dev)


async def test_no_free_top_up_in_production_over_the_api_or_the_web(runtime: Runtime) -> None:
    async with limited(runtime, **PROD) as client_from:
        web = client_from("198.51.100.60")
        web.headers.update(HTML)
        assert (await _signup(web, "prodfan@example.test")).status_code == 303
        account = await web.get("/account")
        assert account.status_code == 200 and 'action="/account/top-up"' not in account.text
        before = await _money(runtime)
        csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', account.text)
        assert csrf
        page = await web.post(
            "/account/top-up", data={"csrf_token": csrf.group(1), "amount": "100000", "idempotency_key": "k1"}
        )
        assert page.status_code == 403 and "pay for your tickets by card" in page.text
        login = await web.post(
            "/api/auth/login", json={"email": "prodfan@example.test", "password": "correct horse"}
        )
        auth = {"Authorization": f"Bearer {login.json()['access_token']}", "Idempotency-Key": "k2"}
        api = await web.post("/api/users/me/balance", json={"amount": 10_000_000}, headers=auth)
        assert api.status_code == 403 and api.json()["code"] == "TOPUP_DISABLED", api.text
        assert await _money(runtime) == before


async def test_the_demo_fan_is_seeded_only_outside_production(runtime: Runtime) -> None:
    prod = dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=PROD))
    summary = await seed_demo(prod)
    assert runtime.settings.demo_fan_email not in summary
    async with runtime.sessions() as s:
        emails = set((await s.execute(text("SELECT email FROM users"))).scalars())
    assert emails == {runtime.settings.admin_email}


async def test_free_top_ups_still_work_outside_production(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    from tests.factories import make_user

    assert runtime.settings.environment == "test"
    fan = await make_user(runtime)
    resp = await client.post(
        "/api/users/me/balance", json={"amount": 500}, headers={**fan["headers"], "Idempotency-Key": "t-1"}
    )
    assert resp.status_code == 200 and resp.json()["balance"] == 500
