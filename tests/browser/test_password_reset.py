"""The password-reset pages in Chromium: "Forgot your password?" from the login page, the same
sentence whether the address has an account or not, the mail (a real aiosmtpd server, sent by the
mail_sender job), the link opened in the browser, the new password saved, the old one refused, and
the link dead after its one use."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import text

from boxoffice.mail.flows import send_due
from boxoffice.runtime import Runtime
from tests.browser.conftest import FanFactory, make_fan
from tests.helpers.smtp import Inbox, smtp
from tests.integration.test_ticket_mail import _token


async def test_forgot_password_in_the_browser(  # type: ignore[no-untyped-def]
    runtime: Runtime, fans: FanFactory, live_server: str, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    email = await make_fan(runtime)
    fan = await fans()
    await fan.goto("/login")
    async with fan.page.expect_navigation():
        await fan.page.click("text=Forgot your password?")
    for address in ("nobody-here@example.test", email):
        await fan.goto("/forgot-password")
        await fan.page.fill("#email", address)
        async with fan.page.expect_navigation():
            await fan.page.click("button:has-text('Mail me a link')")
        assert "is on its way" in await fan.page.locator("#reset-sent").inner_text()
    await fan.shot("forgot-sent")
    async with runtime.sessions() as s:
        queued = (
            await s.execute(text("SELECT count(*) FROM mail_outbox WHERE kind = 'PASSWORD_RESET'"))
        ).scalar_one()
    assert queued == 1  # only for the account; the page said the same both times
    async with smtp(runtime, port):
        assert await send_due(runtime) == 1
    token = _token(handler.messages[-1][1])
    link = urlsplit(f"https://tickets.example/reset-password?token={token}")
    await fan.goto(f"{link.path}?{link.query}")
    await fan.page.fill("#password", "a brand new password")
    async with fan.page.expect_navigation():
        await fan.page.click("button:has-text('Save the new password')")
    assert "/login" in fan.page.url
    assert "password is changed" in await fan.page.locator("main .notice.ok").inner_text()
    await fan.shot("reset-done")
    assert await fan.axe() == []
    # the old password no longer works, the new one does
    fan.expected_statuses.add(401)
    await fan.page.fill("#email", email)
    await fan.page.fill("#password", "a good long password")
    async with fan.page.expect_navigation():
        await fan.page.click("button:has-text('Log in')")
    assert "/login" in fan.page.url
    await fan.login(email, password="a brand new password")
    assert "/login" not in fan.page.url
    # the link worked once
    other = await fans()
    other.expected_statuses.add(400)
    await other.goto(f"{link.path}?{link.query}")
    await other.page.fill("#password", "yet another password")
    async with other.page.expect_navigation():
        await other.page.click("button:has-text('Save the new password')")
    assert "used already" in await other.page.locator("#reset-error").inner_text()
