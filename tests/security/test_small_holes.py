"""The small ones (issue 26, finding 8): `amount=inf` on /account/top-up was a 500; the console's
sales.csv (every buyer's email) could be cached; cookies were `Secure` only when the public URL
said https, not when the browser really came over HTTPS through the gateway, and they carried no
`__Host-` prefix (a sibling subdomain or a plain-HTTP page could plant a session cookie)."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import text

from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_web_layer import HTML, _signup
from tests.security.test_rate_limits import limited


async def test_non_finite_and_huge_top_up_amounts_are_a_sentence_not_a_500(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    client.headers.update(HTML)
    assert (await _signup(client, "inf@example.test")).status_code == 303
    account = await client.get("/account")
    csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', account.text)
    assert csrf
    for amount in ("inf", "-inf", "nan", "1e309", "9" * 400, "1e30"):
        resp = await client.post(
            "/account/top-up",
            data={"csrf_token": csrf.group(1), "amount": amount, "idempotency_key": amount[:50]},
        )
        assert resp.status_code == 422, (amount, resp.status_code)
        assert "Enter an amount" in resp.text
    async with runtime.sessions() as s:
        assert (await s.execute(text("SELECT coalesce(sum(balance), 0) FROM users"))).scalar_one() == 0


async def test_sales_csv_is_never_stored(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=2)
    admin = await make_user(runtime, role="ADMIN")
    resp = await client.get(f"/api/admin/shows/{show['show_id']}/sales.csv", headers=admin["headers"])
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"


async def test_cookies_are_secure_when_the_browser_came_over_https(runtime: Runtime) -> None:
    async with limited(runtime, public_base_url="http://127.0.0.1:8000") as client_from:
        gateway = client_from("127.0.0.1")  # the trusted gateway terminates TLS
        gateway.headers.update({**HTML, "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"})
        page = await gateway.get("/login")
        cookies = page.headers.get_list("set-cookie")
        assert cookies and all("; Secure" in c and "HttpOnly" in c and "SameSite=Lax" in c for c in cookies)
        # a stranger cannot make us think so
        stranger = client_from("203.0.113.5")
        stranger.headers.update({**HTML, "X-Forwarded-Proto": "https"})
        plain = await stranger.get("/login")
        assert all("; Secure" not in c for c in plain.headers.get_list("set-cookie"))


async def test_over_https_every_cookie_is_a_host_cookie_and_a_planted_bare_one_is_ignored(
    runtime: Runtime,
) -> None:
    async with limited(runtime) as client_from:
        fan = client_from("198.51.100.20")
        fan.base_url = httpx.URL("https://t")
        fan.headers.update(HTML)
        signed_up = await _signup(fan, "host-prefix@example.test")
        assert signed_up.status_code == 303
        headers = signed_up.headers.get_list("set-cookie")
        assert {h.split("=", 1)[0] for h in headers} >= {"__Host-bo_access", "__Host-bo_refresh"}
        assert all(
            h.startswith("__Host-") and "; Secure" in h and "; Path=/;" in h and "domain=" not in h.lower()
            for h in headers
        ), headers
        account = await fan.get("/account")  # the browser sends them back under their __Host- names
        assert account.status_code == 200 and "host-prefix@example.test" in account.text

        access = fan.cookies.get("__Host-bo_access")
        assert access
        planted = client_from("198.51.100.21")  # a bare-named cookie, as a plain-HTTP page could set
        planted.base_url = httpx.URL("https://t")
        planted.headers.update(HTML)
        planted.cookies.set("bo_access", access)
        refused = await planted.get("/account")
        assert refused.status_code in (302, 303) and "/login" in refused.headers["location"]
