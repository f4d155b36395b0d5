"""Browser tests: Playwright (async API, in the suite's own event loop) driving Debian's Chromium
against the real app on a real port, with the real background workers (admission, expiry, relay).

Every page a test opens is checked at the end: no request went to another host, and no console
error appeared (Chromium's own "Failed to load resource: ... status of N" line is allowed only for a
status the test causes on purpose). Screenshots go to test-output/browser/ (git-ignored).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from boxoffice.auth.service import ensure_account
from boxoffice.bench.seat_map import CHROMIUM, CHROMIUM_ARGS
from boxoffice.catalog import service as catalog_service
from boxoffice.catalog.schemas import ConcertIn, QueueSettingsIn, SectionIn, ShowIn, VenueIn
from boxoffice.runtime import Runtime
from boxoffice.worker import run_worker

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
AXE = "/static/vendor/axe-core-4.14.1.min.js"
PASSWORD = "a good long password"
_HTTP_STATUS = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})")
_seq = itertools.count(1)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (make test does it as root)")
    from playwright.async_api import async_playwright

    pw = await async_playwright().start()
    chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    await chromium.close()
    await pw.stop()


@pytest.fixture
async def workers(runtime: Runtime) -> AsyncIterator[None]:
    """The background jobs `boxoffice up` runs: admission ticks, hold expiry, the event relay."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_worker(runtime, stop))
    yield
    stop.set()
    await asyncio.wait_for(task, 30)


@dataclass
class Fan:
    """One browser (its own cookies) with one page, and what that page did wrong."""

    context: Any
    page: Any
    base: str
    test_name: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    # HTTP statuses a test causes on purpose: Chromium logs "Failed to load resource: ... status of
    # N" for them, which is not a script error. Every other console error fails the test.
    expected_statuses: set[int] = field(default_factory=set)

    async def goto(self, path: str) -> Any:
        return await self.page.goto(self.base + path)

    async def shot(self, name: str) -> None:
        OUTPUT.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(OUTPUT / f"{self.test_name}--{name}.png"), full_page=True)

    async def login(self, email: str, password: str = PASSWORD, then: str = "/") -> None:
        await self.goto(f"/login?next={then}")
        await self.page.fill("#email", email)
        await self.page.fill("#password", password)
        async with self.page.expect_navigation():
            await self.page.click("form[action='/login'] button[type=submit]")  # in any language

    async def axe(self) -> list[dict[str, Any]]:
        """Serious and critical axe-core violations on the current page (axe is loaded from our own
        origin, as the CSP wants)."""
        await self.page.add_script_tag(url=AXE)
        result = await self.page.evaluate(
            "async () => { const r = await axe.run(document); return {v: r.violations, passes: r.passes.length}; }"
        )
        assert result["passes"] > 10, "axe-core did not run its rules"
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["v"]
            if v["impact"] in ("serious", "critical")
        ]

    def console(self, message: Any) -> None:
        if message.type != "error":
            return
        found = _HTTP_STATUS.search(message.text)
        if found is None or int(found.group(1)) not in self.expected_statuses:
            self.console_errors.append(message.text)

    def problems(self) -> list[str]:
        return self.console_errors + [f"request to another host: {u}" for u in self.foreign_requests]


FanFactory = Callable[..., Awaitable[Fan]]


@pytest.fixture
async def fans(browser: Any, live_server: str, request: pytest.FixtureRequest) -> AsyncIterator[FanFactory]:
    made: list[Fan] = []

    async def make(width: int = 1280, height: int = 900, locale: str = "en-US") -> Fan:
        """`locale`: the browser's language (its Accept-Language and navigator.language)."""
        context = await browser.new_context(viewport={"width": width, "height": height}, locale=locale)
        page = await context.new_page()
        fan = Fan(context, page, live_server, f"{request.node.name}-{len(made) + 1}")

        async def guard(route: Any) -> None:
            if route.request.url.startswith(live_server + "/"):
                await route.continue_()
            else:
                fan.foreign_requests.append(route.request.url)
                await route.abort()

        await context.route("**/*", guard)
        page.on("console", fan.console)
        page.on("pageerror", lambda e: fan.console_errors.append(f"page error: {e}"))
        made.append(fan)
        return fan

    yield make
    problems = {f.test_name: f.problems() for f in made}
    for fan in made:
        await fan.context.close()
    assert not any(problems.values()), problems


async def make_fan(runtime: Runtime, *, balance: int = 1_000_000, name: str = "Browser Fan") -> str:
    """A real account (argon2 password, balance through the ledger); returns its email."""
    email = f"fan{next(_seq)}-{datetime.now(UTC).timestamp():.0f}@example.test"
    async with runtime.sessions() as session, session.begin():
        await ensure_account(
            session, runtime.settings, email=email, password=PASSWORD, name=name, initial_balance=balance
        )
    return email


async def make_concert(
    runtime: Runtime,
    *,
    sections: list[tuple[str, int, int, int]] | None = None,
    hold_seconds: int = 300,
    opens_in: timedelta = timedelta(minutes=-30),
    pre_queue_for: timedelta | None = None,
    queue: QueueSettingsIn | None = None,
    name: str = "Browser Night",
    max_seats: int = 4,
) -> dict[str, Any]:
    """A venue, a concert and one show through the catalog services (sections: name, rows,
    seats per row, price)."""
    sections = sections or [("Front", 3, 10, 20_000), ("Back", 4, 12, 9_000)]
    now = runtime.clock.now().replace(microsecond=0)
    opens = now + opens_in
    async with runtime.sessions() as session, session.begin():
        venue = await catalog_service.create_venue(
            session,
            VenueIn(
                name=f"Hall {next(_seq)}",
                sections=[SectionIn(name=n, rows=r, seats_per_row=c) for n, r, c, _ in sections],
            ),
        )
        concert = await catalog_service.create_concert(
            session, ConcertIn(name=name, artist="The Test Pilots", venue_id=venue["id"], description="Live.")
        )
        show = await catalog_service.create_show(
            session,
            runtime.clock,
            concert["id"],
            ShowIn(
                starts_at=now + timedelta(days=30),
                sale_opens_at=opens,
                pre_queue_opens_at=(opens - pre_queue_for) if pre_queue_for else None,
                prices={n: p for n, _, _, p in sections},
                hold_seconds=hold_seconds,
                max_seats_per_reservation=max_seats,
                queue=queue or QueueSettingsIn(admit_per_second=100, oversubscription=None),
            ),
            default_hold_seconds=hold_seconds,
        )
    return {"concert_id": concert["id"], "show_id": show["id"], "venue_id": venue["id"]}


async def admitted(fan: Fan, show_id: int) -> None:
    """From the waiting room to the seat map (joins, waits for READY), the map drawn."""
    await fan.goto(f"/shows/{show_id}/queue")
    join = fan.page.locator("#join-form button[type=submit]")
    if await join.count():
        async with fan.page.expect_navigation():
            await join.click()
    await fan.page.wait_for_url(f"**/shows/{show_id}/seats", timeout=20_000)
    await map_ready(fan)


async def map_ready(fan: Fan) -> None:
    await fan.page.wait_for_function(
        "() => window.boxofficeSeatMap && window.boxofficeSeatMap.n > 0"
        " && window.boxofficeSeatMap.stats.firstDrawMs !== null",
        timeout=15_000,
    )


async def seat_status(fan: Fan, seat_id: int) -> str:
    return str(await fan.page.evaluate("(id) => window.boxofficeSeatMap.seat(id).status", seat_id))


async def click_seat(fan: Fan, seat_id: int) -> None:
    """A real mouse click on the seat's cell of the canvas."""
    x, y = await fan.page.evaluate(
        """(id) => {
            const m = window.boxofficeSeatMap, i = m.index.get(id), v = m.view;
            return [v.x + (m.x[i] + 0.5) * v.scale, v.y + (m.y[i] + 0.5) * v.scale];
        }""",
        seat_id,
    )
    box = await fan.page.locator("#seat-canvas").bounding_box()
    await fan.page.mouse.click(box["x"] + x, box["y"] + y)
