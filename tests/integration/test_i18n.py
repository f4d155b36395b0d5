"""The reader's language over HTTP: Accept-Language negotiation, the language switch remembered in
the account and in a cookie, problem+json details in Korean with the codes unchanged, error pages,
the JS strings from the same catalogs, and mails in the recipient's stored language."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from email.header import decode_header, make_header

import httpx
import pytest
from sqlalchemy import text

from boxoffice.mail.flows import send_due
from boxoffice.runtime import Runtime
from tests.helpers.smtp import smtp
from tests.integration.test_tickets import bought, rows

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
LANG_RE = re.compile(r'<html lang="([a-z]+)">')
HTML = {"Accept": "text/html"}
KO = {"Accept-Language": "ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"}
EN = {"Accept-Language": "en-GB,en;q=0.9,ko;q=0.5"}


@pytest.fixture
async def browser(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as c:
        yield c


@contextmanager
def default_locale(runtime: Runtime, locale: str) -> Iterator[None]:
    original = runtime.settings
    runtime.settings = original.model_copy(update={"default_locale": locale})
    try:
        yield
    finally:
        runtime.settings = original


def lang(page: httpx.Response) -> str:
    found = LANG_RE.search(page.text)
    assert found, "a page without <html lang>"
    return found.group(1)


async def _csrf(c: httpx.AsyncClient, path: str = "/") -> str:
    page = await c.get(path)
    found = CSRF_RE.search(page.text)
    assert page.status_code == 200 and found
    return found.group(1)


async def test_accept_language_picks_the_page_language_else_the_default(browser, runtime) -> None:  # type: ignore[no-untyped-def]
    korean = await browser.get("/", headers=KO)
    assert lang(korean) == "ko" and korean.headers["content-language"] == "ko"
    assert "공연" in korean.text and "Concerts</h1>" not in korean.text
    english = await browser.get("/", headers=EN)
    assert lang(english) == "en" and "Concerts</h1>" in english.text
    # q-values decide, not the order
    assert lang(await browser.get("/", headers={"Accept-Language": "en;q=0.4, ko;q=0.8"})) == "ko"
    # nothing supported, or nothing sent: the deployment's default
    assert lang(await browser.get("/", headers={"Accept-Language": "fr-FR,de;q=0.9"})) == "en"
    assert lang(await browser.get("/")) == "en"
    with default_locale(runtime, "ko"):
        assert lang(await browser.get("/", headers={"Accept-Language": "fr"})) == "ko"
        assert lang(await browser.get("/login")) == "ko"
        assert lang(await browser.get("/", headers=EN)) == "en"  # the header still wins over the default


async def test_the_js_strings_come_from_the_same_catalog(browser) -> None:  # type: ignore[no-untyped-def]
    page = await browser.get("/", headers=KO)
    block = re.search(r'<script type="application/json" id="i18n-messages">(.*?)</script>', page.text, re.S)
    assert block, "the page carries no JS messages"
    messages = json.loads(block.group(1))
    assert messages["Holding your seats…"] == "좌석을 선점하는 중…"
    assert messages["{section} · Row {row} · Seat {number}"] == "{section} 구역 {row}열 {number}번"
    english = await browser.get("/", headers=EN)  # English is the msgids themselves: nothing to send
    assert '<script type="application/json" id="i18n-messages">{}</script>' in english.text


async def test_anonymous_switch_is_a_cookie(browser) -> None:  # type: ignore[no-untyped-def]
    token = await _csrf(browser, "/login")
    switched = await browser.post(
        "/language", data={"csrf_token": token, "locale": "ko", "next": "/login"}, headers=EN
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/login"
    cookie = [c for c in switched.headers.get_list("set-cookie") if c.startswith("bo_lang=")]
    assert cookie and cookie[0].startswith("bo_lang=ko;") and "HttpOnly" in cookie[0]
    page = await browser.get("/login", headers=EN)  # the choice beats Accept-Language
    assert lang(page) == "ko" and "비밀번호" in page.text
    # an unknown language changes nothing; a foreign `next` goes home (no open redirect)
    other = await browser.post(
        "/language", data={"csrf_token": token, "locale": "xx", "next": "//evil.example"}, headers=EN
    )
    assert other.status_code == 303 and other.headers["location"] == "/"
    assert not [c for c in other.headers.get_list("set-cookie") if c.startswith("bo_lang=")]
    assert lang(await browser.get("/", headers=EN)) == "ko"


async def test_the_switch_is_remembered_in_the_account_and_follows_the_login(app, runtime) -> None:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    email = "switcher@example.test"
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as c:
        token = await _csrf(c, "/signup")
        created = await c.post(
            "/signup",
            data={
                "csrf_token": token,
                "email": email,
                "password": "correct horse",
                "name": "Fan",
                "next": "/",
            },
            headers=EN,
        )
        assert created.status_code == 303
        stored = await rows(runtime, "SELECT locale FROM users WHERE email = :e", e=email)
        assert stored == [{"locale": "en"}]  # the language the account was created in
        token = await _csrf(c, "/account")
        switched = await c.post("/language", data={"csrf_token": token, "locale": "ko", "next": "/account"})
        assert switched.status_code == 303
        stored = await rows(runtime, "SELECT locale FROM users WHERE email = :e", e=email)
        assert stored == [{"locale": "ko"}]
        account = await c.get("/account", headers=EN)
        assert lang(account) == "ko" and "내 정보" in account.text
    # another browser, English everywhere: the login brings the account's language along
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=HTML) as other:
        token = await _csrf(other, "/login")
        assert lang(await other.get("/login", headers=EN)) == "en"
        login = await other.post(
            "/login", data={"csrf_token": token, "email": email, "password": "correct horse", "next": "/"}
        )
        assert login.status_code == 303
        assert any(c.startswith("bo_lang=ko;") for c in login.headers.get_list("set-cookie"))
        assert lang(await other.get("/tickets", headers=EN)) == "ko"


async def test_problem_detail_follows_accept_language_and_the_code_stays(client) -> None:  # type: ignore[no-untyped-def]
    body = {"email": "nobody@example.test", "password": "wrong password"}
    english = await client.post("/api/auth/login", json=body, headers=EN)
    korean = await client.post("/api/auth/login", json=body, headers=KO)
    assert english.status_code == korean.status_code == 401
    assert english.headers["content-type"] == korean.headers["content-type"] == "application/problem+json"
    assert english.json()["code"] == korean.json()["code"] == "INVALID_CREDENTIALS"
    assert english.json()["detail"] == "Wrong email or password"
    assert korean.json()["detail"] == "이메일 또는 비밀번호가 올바르지 않습니다"
    # a detail with values in it (no catalog entry) reads as its status's sentence
    missing = await client.get("/api/shows/987654", headers=KO)
    assert missing.status_code == 404 and missing.json()["code"] == "SHOW_NOT_FOUND"
    assert missing.json()["detail"] == "요청하신 항목을 찾을 수 없습니다."
    assert (await client.get("/api/shows/987654")).json()["detail"] == "Show 987654 not found"
    invalid = await client.post("/api/auth/login", json={"email": 3}, headers=KO)
    assert invalid.status_code == 422 and invalid.json()["code"] == "VALIDATION_ERROR"
    assert invalid.json()["detail"].startswith("잘못된 요청입니다")


async def test_error_pages_speak_the_page_language(browser) -> None:  # type: ignore[no-untyped-def]
    page = await browser.get("/no/such/page", headers=KO)
    assert page.status_code == 404 and lang(page) == "ko"
    assert "페이지를 찾을 수 없습니다" in page.text and "이 주소에는 페이지가 없습니다." in page.text
    token = await _csrf(browser, "/login")
    wrong = await browser.post(
        "/login",
        data={"csrf_token": token, "email": "nobody@example.test", "password": "wrong password", "next": "/"},
        headers=KO,
    )
    assert wrong.status_code == 401 and "이메일 또는 비밀번호가 올바르지 않습니다" in wrong.text


async def test_a_refund_mail_in_the_recipients_korean(client, runtime, inbox) -> None:  # type: ignore[no-untyped-def]
    handler, port = inbox
    fan, _show, rid = await bought(client, runtime, seats=2)
    async with runtime.sessions() as session, session.begin():
        await session.execute(text("UPDATE users SET locale = 'ko' WHERE id = :id"), {"id": fan["id"]})
    assert (await client.delete(f"/api/reservations/{rid}", headers=fan["headers"])).status_code == 200
    async with smtp(runtime, port):
        assert await send_due(runtime) == 2  # the order confirmation, then the refund
    subjects = {str(make_header(decode_header(m["Subject"]))): m for _, m in handler.messages}
    refund = subjects[f"환불 완료: 주문 #{rid} (Gig)"]
    body = refund.get_payload(decode=True).decode()
    assert "Kim Minji님, 안녕하세요." in body
    assert "환불 금액: ₩20,000 (Boxoffice 잔액으로)\n" in body
    assert "A 구역 1열 1번" in body and "A 구역 1열 2번" in body
    confirmed = next(s for s in subjects if s.startswith("입장권 안내: Gig, "))
    assert confirmed.endswith(" KST") and "년" in confirmed  # the show's time in Korean, in the venue's zone
