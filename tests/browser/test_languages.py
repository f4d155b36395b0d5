"""The fan's app and the console in Korean and in English, in Chromium: a ticket bought in each
language (the browser's own language picks it, and the switch on the page changes it), every
page scanned by axe-core with <html lang> checked, nothing wider than a 375 px phone, and the
Korean screenshots (home, seat map, checkout, my tickets, the console at 375 and 1280 px) in
test-output/i18n/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from boxoffice.auth.service import ensure_account
from boxoffice.runtime import Runtime
from tests.browser.conftest import PASSWORD, Fan, FanFactory, admitted, click_seat, make_concert, make_fan
from tests.browser.test_fan_app import one, seats_of

SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "i18n"
WIDTHS = (375, 1280)
BROWSER_LOCALE = {"ko": "ko-KR", "en": "en-US"}
# What each language says on its pages (the catalogs' words, not the msgids, for Korean).
WORDS = {
    "ko": {
        "confirmed": "예매 확정",
        "seat": "구역 1열",
        "nav": "내 예매",
        "pay": "잔액으로",
        "console": "공연 기획사 콘솔",
    },
    "en": {
        "confirmed": "Confirmed",
        "seat": "· Row 1 · Seat",
        "nav": "My tickets",
        "pay": "from balance",
        "console": "Promoter's console",
    },
}


async def check(fan: Fan, locale: str, name: str, problems: dict[str, object]) -> None:
    """The page in `locale`: lang set, axe clean and no horizontal overflow at both widths; the
    Korean pages are photographed."""
    lang = await fan.page.evaluate("() => document.documentElement.lang")
    if lang != locale:
        problems[f"{name}: <html lang={lang!r}>"] = True
    for width in WIDTHS:
        await fan.page.set_viewport_size({"width": width, "height": 900})
        await fan.page.wait_for_timeout(150)  # the seat map redraws on resize
        if locale == "ko":
            SHOTS.mkdir(parents=True, exist_ok=True)
            await fan.page.screenshot(path=str(SHOTS / f"ko-{name}-{width}px.png"), full_page=True)
        violations = await fan.axe()
        if violations:
            problems[f"{name}@{width}"] = violations
        overflow = await fan.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 0:
            problems[f"{name}@{width}: {overflow}px wider than the screen"] = True
        clipped = await fan.page.evaluate(
            """() => [...document.querySelectorAll('button, .button, .badge, label, .site-nav a, th')]
                 .filter((el) => el.offsetParent !== null && !el.closest('.visually-hidden'))
                 .filter((el) => el.scrollWidth > el.clientWidth + 1)
                 .map((el) => el.textContent.trim().slice(0, 40))"""
        )
        if clipped:
            problems[f"{name}@{width}: clipped labels"] = clipped
    await fan.page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.parametrize("locale", ["ko", "en"])
async def test_a_fan_buys_a_ticket_in_each_language(runtime, workers, fans: FanFactory, locale: str) -> None:  # type: ignore[no-untyped-def]
    words = WORDS[locale]
    made = await make_concert(runtime, name=f"Language Night {locale}")
    email = await make_fan(runtime, balance=500_000, name="김민지" if locale == "ko" else "Kim Minji")
    fan = await fans(locale=BROWSER_LOCALE[locale])
    page = fan.page
    problems: dict[str, object] = {}
    await fan.goto("/")
    await check(fan, locale, "home", problems)
    await fan.goto(f"/concerts/{made['concert_id']}")
    await check(fan, locale, "concert", problems)
    await fan.goto("/signup")
    await check(fan, locale, "signup", problems)
    fan.expected_statuses = {404}
    await fan.goto("/no/such/page")
    await check(fan, locale, "not-found", problems)
    fan.expected_statuses = set()
    await fan.goto("/forgot-password")
    await check(fan, locale, "forgot-password", problems)
    await fan.goto("/login")
    await check(fan, locale, "login", problems)
    await fan.login(email)
    assert words["nav"] in await page.locator(".site-nav").inner_text()
    await fan.goto("/account")
    await check(fan, locale, "account", problems)
    await admitted(fan, made["show_id"])
    await check(fan, locale, "seat-map", problems)
    front = [s for s in await seats_of(runtime, made["show_id"]) if s["section"] == "Front" and s["row"] == 1]
    for seat in front[2:4]:
        await click_seat(fan, seat["id"])
    selection = await page.locator("#selection").inner_text()
    assert words["seat"] in selection and "₩20,000" in selection, selection  # JS from the catalog
    async with page.expect_navigation():
        await page.click("#hold-button")
    assert "/checkout" in page.url
    await page.wait_for_selector("#hold-countdown:not(:empty)")
    assert words["pay"] in await page.locator("#pay-balance").inner_text()
    await check(fan, locale, "checkout", problems)
    async with page.expect_navigation():
        await page.click("#pay-balance")
    assert "/tickets" in page.url
    card = page.locator("#reservations li.card").first
    assert await card.get_attribute("data-status") == "RESERVED"
    text = await card.inner_text()
    assert words["confirmed"] in text and words["seat"] in text and "₩40,000" in text, text
    await check(fan, locale, "my-tickets", problems)
    rid = int((await card.get_attribute("id")).removeprefix("reservation-"))
    paid = await one(runtime, "SELECT status, amount FROM payments WHERE reservation_id = :r", r=rid)
    assert tuple(paid) == ("SUCCEEDED", 40_000)
    stored = await one(runtime, "SELECT locale FROM users WHERE email = :e", e=email)
    assert stored[0] is None  # the browser's language was enough; the fan chose nothing
    await page.click(".ticket-links a >> nth=0")
    await page.wait_for_url("**/tickets/*")
    await check(fan, locale, "ticket", problems)
    await fan.goto(f"/shows/{made['show_id']}/queue")
    await check(fan, locale, "waiting-room", problems)
    assert not problems, problems


async def test_the_switch_changes_the_language_and_the_account_keeps_it(
    runtime, workers, fans: FanFactory
) -> None:  # type: ignore[no-untyped-def]
    email = await make_fan(runtime)
    fan = await fans(locale="en-US")
    await fan.login(email)
    assert await fan.page.evaluate("() => document.documentElement.lang") == "en"
    async with fan.page.expect_navigation():
        await fan.page.click(".language-switch button[value=ko]")
    assert fan.page.url.endswith("/")  # back where the fan was
    assert await fan.page.evaluate("() => document.documentElement.lang") == "ko"
    assert "내 예매" in await fan.page.locator(".site-nav").inner_text()
    stored = await one(runtime, "SELECT locale FROM users WHERE email = :e", e=email)
    assert stored[0] == "ko"
    other = await fans(locale="en-US")  # another device, English: the login brings Korean along
    await other.login(email, then="/tickets")
    assert await other.page.evaluate("() => document.documentElement.lang") == "ko"


async def test_the_console_in_each_language(runtime: Runtime, workers: Any, fans: FanFactory) -> None:
    email = "i18n-promoter@example.test"
    async with runtime.sessions() as session, session.begin():
        await ensure_account(
            session, runtime.settings, email=email, password=PASSWORD, name="P", role="ADMIN"
        )
    made = await make_concert(runtime, name="Console Night")
    problems: dict[str, object] = {}
    for locale in ("ko", "en"):
        admin = await fans(locale=BROWSER_LOCALE[locale])
        await admin.login(email, then="/admin")
        assert WORDS[locale]["console"] in await admin.page.locator("h1").inner_text()
        await check(admin, locale, "console", problems)
        await admin.goto(f"/admin/shows/{made['show_id']}")
        await check(admin, locale, "console-show", problems)
        await admin.goto(f"/admin/shows/{made['show_id']}/queue")
        await check(admin, locale, "console-queue", problems)
        for path in (
            "/admin/venues",
            "/admin/concerts",
            f"/admin/concerts/{made['concert_id']}",
            "/admin/mail",
        ):
            await admin.goto(path)
            await check(admin, locale, "console-" + path.strip("/").replace("/", "-"), problems)
        await admin.goto(f"/admin/fans?email={email}")
        await check(admin, locale, "console-fans", problems)
        await admin.goto(f"/admin/shows/{made['show_id']}/dashboard")
        await check(admin, locale, "console-dashboard", problems)
        await admin.goto(f"/door/{made['show_id']}")
        await check(admin, locale, "door", problems)
    assert not problems, problems
