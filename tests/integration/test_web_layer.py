"""The shared web layer over HTTP: security headers, cookie sessions with server-side refresh,
CSRF on page writes, styled error pages (the browser suite drives the same pages in Chromium)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from boxoffice.web.security import CONTENT_SECURITY_POLICY

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
HTML = {"Accept": "text/html,application/xhtml+xml"}  # what a browser sends when it navigates


@pytest.fixture
async def browser_like(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as c:
        yield c


async def _csrf(c: httpx.AsyncClient, path: str = "/login") -> str:
    page = await c.get(path)
    assert page.status_code == 200
    found = CSRF_RE.search(page.text)
    assert found, "form without a CSRF token"
    return found.group(1)


async def _signup(c: httpx.AsyncClient, email: str, password: str = "correct horse") -> httpx.Response:
    token = await _csrf(c, "/signup")
    return await c.post(
        "/signup",
        data={"csrf_token": token, "email": email, "password": password, "name": "Web Fan", "next": "/"},
    )


async def test_pages_carry_security_headers_and_the_api_does_not(browser_like: httpx.AsyncClient) -> None:
    page = await browser_like.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in page.text  # only <script type="module" src=...>
    api = await browser_like.get("/api/concerts")
    # the API gets its own strict CSP for JSON (http_guard.py), never the pages' policy
    assert api.status_code == 200 and api.headers["content-security-policy"] != CONTENT_SECURITY_POLICY
    static = await browser_like.get("/static/js/seatmap.js")
    assert static.status_code == 200 and "javascript" in static.headers["content-type"]
    assert static.headers["x-content-type-options"] == "nosniff"


async def test_unknown_page_is_a_styled_404_and_unknown_api_stays_problem_json(
    browser_like: httpx.AsyncClient,
) -> None:
    page = await browser_like.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text and "content-security-policy" in page.headers
    bad_id = await browser_like.get("/concerts/not-a-number")
    assert bad_id.status_code == 404 and "text/html" in bad_id.headers["content-type"]
    missing = await browser_like.get("/concerts/999999")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    api = await browser_like.get("/api/no/such/route")
    no_html = await browser_like.get("/no/such/page", headers={"Accept": "*/*"})
    assert no_html.status_code == 404 and no_html.headers["content-type"] == "application/problem+json"
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"


async def test_signup_login_logout_with_http_only_cookies(browser_like: httpx.AsyncClient) -> None:
    created = await _signup(browser_like, "webfan@example.test")
    assert created.status_code == 303
    cookies = created.headers.get_list("set-cookie")
    access = [c for c in cookies if c.startswith("bo_access=")]
    refresh = [c for c in cookies if c.startswith("bo_refresh=")]
    assert access and refresh
    for header in access + refresh:
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    account = await browser_like.get("/account")
    assert account.status_code == 200 and "webfan@example.test" in account.text
    token = await _csrf(browser_like, "/account")
    out = await browser_like.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert any(c.startswith("bo_access=;") for c in out.headers.get_list("set-cookie"))
    browser_like.cookies.clear()
    again = await browser_like.get("/account")
    assert again.status_code == 303 and again.headers["location"].startswith("/login?next=%2Faccount")


async def test_page_write_without_csrf_token_is_refused_and_changes_nothing(
    browser_like: httpx.AsyncClient,
) -> None:
    await browser_like.get("/login")  # gets the CSRF cookie
    refused = await browser_like.post(
        "/signup", data={"email": "x@example.test", "password": "long enough", "name": "X", "next": "/"}
    )
    assert refused.status_code == 403 and "reload the page" in refused.text
    forged = await browser_like.post(
        "/signup",
        data={"csrf_token": "0" * 64, "email": "x@example.test", "password": "long enough", "name": "X"},
    )
    assert forged.status_code == 403
    login = await browser_like.post(
        "/login",
        data={"csrf_token": await _csrf(browser_like), "email": "x@example.test", "password": "long enough"},
    )
    assert login.status_code == 401 and "Wrong email or password" in login.text  # no account was made


async def test_expired_access_cookie_is_refreshed_server_side_with_rotation(
    browser_like: httpx.AsyncClient, runtime, clock
) -> None:  # type: ignore[no-untyped-def]
    await _signup(browser_like, "refresh@example.test")
    old_refresh = browser_like.cookies["bo_refresh"]
    clock.advance(runtime.settings.access_token_ttl_seconds + 5)
    page = await browser_like.get("/account")
    assert page.status_code == 200 and "refresh@example.test" in page.text
    new_refresh = browser_like.cookies["bo_refresh"]
    assert new_refresh != old_refresh
    # The rotated-away token no longer logs anyone in (a replay from another browser).
    other = httpx.AsyncClient(transport=browser_like._transport, base_url="http://testserver", headers=HTML)
    async with other:
        other.cookies.set("bo_refresh", old_refresh)
        clock.advance(runtime.settings.access_token_ttl_seconds + 5)
        runtime.web_refreshes = type(runtime.web_refreshes)(60, 1000)  # another process
        stolen = await other.get("/account")
        assert stolen.status_code == 303


async def _logged_in(c: httpx.AsyncClient, runtime) -> int:  # type: ignore[no-untyped-def]
    email = f"web{uuid.uuid4().hex[:8]}@example.test"
    resp = await _signup(c, email)
    assert resp.status_code == 303
    async with runtime.sessions() as s:
        return int(
            (await s.execute(text("SELECT id FROM users WHERE email = :e"), {"e": email})).scalar_one()
        )


async def test_browser_routes_keep_admission_tokens_in_http_only_cookies(
    browser_like: httpx.AsyncClient, runtime
) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers.shows import make_show

    show = await make_show(runtime, seats=4)
    sid = show["show_id"]
    user_id = await _logged_in(browser_like, runtime)
    # No admission yet: the seat map and its stream are refused, as on the API.
    refused = await browser_like.get(f"/web/shows/{sid}/seats")
    assert refused.status_code == 401 and refused.json()["code"] == "QUEUE_TOKEN_REQUIRED"
    token = await _csrf(browser_like, "/account")
    joined = await browser_like.post(f"/shows/{sid}/queue", data={"csrf_token": token})
    assert joined.status_code == 303
    from boxoffice.waiting_room.flows import tick_all

    for _ in range(50):
        await tick_all(runtime)
        status = await browser_like.get(f"/web/queue/{sid}/status?concert_id={show['concert_id']}")
        assert status.status_code == 200 and "token" not in status.json()
        if status.json()["status"] == "READY":
            break
    assert status.json()["status"] == "READY"
    admit_url = f"/web/queue/{sid}/admit?concert_id={show['concert_id']}"
    no_csrf = await browser_like.post(admit_url, json={})
    assert no_csrf.status_code == 403 and no_csrf.json()["code"] == "CSRF_FAILED"
    admit = await browser_like.post(admit_url, json={}, headers={"X-CSRF-Token": token})
    assert admit.status_code == 200 and "token" not in admit.json()
    assert admit.json()["seat_map_url"] == f"/shows/{sid}/seats"
    cookie = next(c for c in admit.headers.get_list("set-cookie") if c.startswith(f"bo_q_{sid}="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    seats = await browser_like.get(f"/web/shows/{sid}/seats")
    assert seats.status_code == 200 and len(seats.json()["seats"]) == 4
    body = {"show_id": sid, "seat_ids": show["seat_ids"][:1]}
    assert (await browser_like.post("/web/reservations", json=body)).status_code == 403  # no CSRF token
    held = await browser_like.post("/web/reservations", json=body, headers={"X-CSRF-Token": token})
    assert held.status_code == 201 and held.json()["checkout_url"].endswith("/checkout")
    async with runtime.sessions() as s:
        owner = (
            await s.execute(
                text("SELECT user_id FROM reservations WHERE id = :r"), {"r": held.json()["reservation_id"]}
            )
        ).scalar_one()
    assert owner == user_id
    mine = await browser_like.get(f"/web/reservations/{held.json()['reservation_id']}")
    assert mine.status_code == 200 and mine.json()["status"] == "TEMP_RESERVED"
    # Another fan's browser sees nothing of it.
    async with httpx.AsyncClient(
        transport=browser_like._transport, base_url="http://testserver", headers=HTML
    ) as other:
        await _logged_in(other, runtime)
        theirs = await other.get(f"/web/reservations/{held.json()['reservation_id']}")
        assert theirs.status_code == 404 and theirs.json()["code"] == "RESERVATION_NOT_FOUND"


async def test_seat_stream_resume_and_reset(runtime, live_server) -> None:  # type: ignore[no-untyped-def]
    """A watcher reconnecting with a Last-Event-ID still on the stream resumes after it; one the
    stream no longer holds (trimmed, or Redis lost it) gets `event: reset` to reload the map."""
    from boxoffice.db.outbox import relay_once
    from tests.factories import make_user
    from tests.helpers.shows import make_show
    from tests.integration.test_booking_support import gated

    show = await make_show(runtime, seats=4)
    sid = show["show_id"]
    fan = await make_user(runtime)
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as c:
        for seat in show["seat_ids"][:2]:
            buyer = await make_user(runtime)
            held = await c.post(
                "/api/reservations",
                json={"show_id": sid, "seat_ids": [seat]},
                headers=gated(runtime, buyer, sid),
            )
            assert held.status_code == 201
        await relay_once(runtime)
        entries = await runtime.redis.xrange(f"bo:{{{sid}}}:events")
        first_id = entries[0][0].decode()

        async def first_events(last_event_id: str) -> list[str]:
            headers = {**gated(runtime, fan, sid), "Last-Event-ID": last_event_id}
            seen: list[str] = []
            async with c.stream("GET", f"/api/shows/{sid}/seats/stream", headers=headers) as resp:
                assert resp.status_code == 200
                async for line in resp.aiter_lines():
                    if line.startswith("event: "):
                        seen.append(line.removeprefix("event: "))
                    if seen:
                        return seen
            return seen

        resumed = await first_events(first_id)
        assert resumed == ["seats"]  # the second hold, replayed after the id the watcher had seen
        gone = await first_events("1-0")  # older than anything on the stream
        assert gone == ["reset"]


async def test_login_redirects_only_within_the_site(browser_like: httpx.AsyncClient) -> None:
    await _signup(browser_like, "nexter@example.test")
    browser_like.cookies.clear()
    for target, expected in (
        ("/tickets", "/tickets"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
    ):
        token = await _csrf(browser_like)
        resp = await browser_like.post(
            "/login",
            data={
                "csrf_token": token,
                "email": "nexter@example.test",
                "password": "correct horse",
                "next": target,
            },
        )
        assert resp.status_code == 303 and resp.headers["location"] == expected, target
        browser_like.cookies.clear()


async def test_get_tickets_before_login_continues_to_the_queue_after_it(
    browser_like: httpx.AsyncClient, runtime
) -> None:  # type: ignore[no-untyped-def]
    """An anonymous fan's "Get tickets" asks to log in and keeps the intent: after the login the
    waiting room joins at once (?join=1: its script submits the join, paying the toll if any)."""
    from urllib.parse import unquote

    from tests.helpers.shows import make_show

    show = await make_show(runtime)
    page = await browser_like.get(f"/concerts/{show['concert_id']}")
    found = re.search(r'href="/login\?next=([^"]+)"', page.text)
    assert found, "no login link for an anonymous fan"
    target = unquote(found.group(1).replace("&amp;", "&"))
    assert target == f"/shows/{show['show_id']}/queue?join=1"
    await _signup(browser_like, "intent@example.test")
    await browser_like.post("/logout", data={"csrf_token": await _csrf(browser_like, "/account")})
    login = await browser_like.post(
        "/login",
        data={
            "csrf_token": await _csrf(browser_like),
            "email": "intent@example.test",
            "password": "correct horse",
            "next": target,
        },
    )
    assert login.status_code == 303 and login.headers["location"] == target
    waiting = await browser_like.get(target)
    assert waiting.status_code == 200 and 'id="join-form"' in waiting.text
