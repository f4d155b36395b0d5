"""Every page of the fan's app: an axe-core scan (no serious or critical violation), usable at
375 px (nothing wider than the phone), a screenshot of each, security headers on each."""

from __future__ import annotations

from datetime import timedelta

from boxoffice.catalog.schemas import QueueSettingsIn
from tests.browser.conftest import Fan, FanFactory, admitted, click_seat, make_concert, make_fan

WIDTHS = (1280, 375)


async def check(fan: Fan, name: str, problems: dict[str, object]) -> None:
    """Scan the page the fan is on at both widths and remember what is wrong."""
    for width in WIDTHS:
        await fan.page.set_viewport_size({"width": width, "height": 900})
        await fan.page.wait_for_timeout(150)  # the seat map redraws on resize
        await fan.shot(f"{name}-{width}px")
        violations = await fan.axe()
        if violations:
            problems[f"{name}@{width}"] = violations
        overflow = await fan.page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 0:
            problems[f"{name}@{width}: {overflow}px wider than the screen"] = True


async def test_every_page_passes_axe_and_fits_a_phone(runtime, workers, fans: FanFactory) -> None:  # type: ignore[no-untyped-def]
    on_sale = await make_concert(runtime, name="Axe Night")
    later = await make_concert(
        runtime,
        name="Pre-queue Night",
        opens_in=timedelta(minutes=10),
        pre_queue_for=timedelta(minutes=30),
        queue=QueueSettingsIn(admit_per_second=100, oversubscription=None),
    )
    fan = await fans()
    problems: dict[str, object] = {}
    response = await fan.goto("/")
    headers = await response.all_headers()
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert (
        headers["x-content-type-options"] == "nosniff"
        and "frame-ancestors 'none'" in headers["content-security-policy"]
    )
    await check(fan, "home", problems)
    await fan.goto(f"/concerts/{on_sale['concert_id']}")
    await check(fan, "concert", problems)
    await fan.goto("/signup")
    await check(fan, "signup", problems)
    await fan.goto("/login")
    await check(fan, "login", problems)
    fan.expected_statuses = {404}
    not_found = await fan.goto("/no/such/page")
    assert not_found.status == 404
    await check(fan, "not-found", problems)
    fan.expected_statuses = set()
    await fan.login(await make_fan(runtime, balance=500_000))
    await fan.goto("/account")
    await check(fan, "account", problems)
    # The pre-queue: countdown, the explanation of the draw and its published commitment.
    await fan.goto(f"/concerts/{later['concert_id']}")
    async with fan.page.expect_navigation():
        await fan.page.click("button:has-text('Join the pre-queue')")
    await fan.page.locator("#pre-queue").wait_for()
    assert "random place" in await fan.page.locator("#pre-queue").inner_text()
    assert len(await fan.page.locator(".commitment").inner_text()) == 64
    await check(fan, "waiting-room-pre-queue", problems)
    await admitted(fan, on_sale["show_id"])
    await fan.page.set_viewport_size({"width": 1280, "height": 900})
    await check(fan, "seat-map", problems)
    await fan.page.click("#mode-list")
    await check(fan, "seat-list", problems)
    await fan.page.click("#mode-map")
    await fan.page.set_viewport_size({"width": 1280, "height": 900})
    await fan.page.wait_for_timeout(150)
    seat = await fan.page.evaluate("() => window.boxofficeSeatMap.ids[0]")
    await click_seat(fan, seat)
    async with fan.page.expect_navigation():
        await fan.page.click("#hold-button")
    await check(fan, "checkout", problems)
    await fan.goto("/tickets")
    await check(fan, "my-tickets", problems)
    assert not problems, problems
