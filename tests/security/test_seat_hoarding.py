"""Seats cannot be kept off sale for ever (issue 26, finding 3).

Cancelling a hold and holding again gave the same seats with a fresh expiry, and signups were
unthrottled: N scripted accounts kept 4*N seats off sale indefinitely. Now a fan's released seats
(cancelled, expired, even before the sweep) are back on sale for everyone else at once and for
that fan only after a cool-down; signups are throttled per address; and a show can require a
verified email to hold.
"""

from __future__ import annotations

import dataclasses
import uuid

from sqlalchemy import text

from boxoffice.booking.flows import expire_holds
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import gated
from tests.security.test_rate_limits import limited

COOL = {"rehold_cooldown_seconds": 300}


async def test_a_cancelled_hold_cannot_be_taken_again_by_the_same_fan_during_the_cool_down(
    runtime: Runtime,
) -> None:
    show = await make_show(runtime, seats=8)
    show_id, seats = show["show_id"], show["seat_ids"][:2]
    hoarder, other = await make_user(runtime), await make_user(runtime)
    body = {"show_id": show_id, "seat_ids": seats}
    async with limited(runtime, **COOL) as client_from:
        c = client_from("198.51.100.50")
        first = await c.post("/api/reservations", json=body, headers=gated(runtime, hoarder, show_id, "h-1"))
        assert first.status_code == 201, first.text
        rid = first.json()["reservation_id"]
        assert (await c.delete(f"/api/reservations/{rid}", headers=hoarder["headers"])).status_code == 200
        again = await c.post("/api/reservations", json=body, headers=gated(runtime, hoarder, show_id, "h-2"))
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "SEATS_COOLING_DOWN"
        # other seats are fine for the same fan...
        elsewhere = {"show_id": show_id, "seat_ids": show["seat_ids"][4:6]}
        mine = await c.post(
            "/api/reservations", json=elsewhere, headers=gated(runtime, hoarder, show_id, "h-3")
        )
        assert mine.status_code == 201, mine.text
        # ...and the released seats are on sale for everyone else at once
        theirs = await c.post("/api/reservations", json=body, headers=gated(runtime, other, show_id, "o-1"))
        assert theirs.status_code == 201, theirs.text


async def test_an_expired_hold_cools_down_too_even_before_the_sweep(runtime: Runtime, clock) -> None:  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=8, hold_seconds=60)
    show_id, seats = show["show_id"], show["seat_ids"][:2]
    hoarder = await make_user(runtime)
    body = {"show_id": show_id, "seat_ids": seats}
    async with limited(runtime, **COOL) as client_from:
        c = client_from("198.51.100.51")
        first = await c.post("/api/reservations", json=body, headers=gated(runtime, hoarder, show_id, "e-1"))
        assert first.status_code == 201, first.text
        clock.advance(61)  # dead, not swept yet
        racing = await c.post("/api/reservations", json=body, headers=gated(runtime, hoarder, show_id, "e-2"))
        assert racing.status_code == 409 and racing.json()["code"] == "SEATS_COOLING_DOWN", racing.text
        # swept by a worker with the same settings: still cooling
        await expire_holds(dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=COOL)))
        swept = await c.post("/api/reservations", json=body, headers=gated(runtime, hoarder, show_id, "e-3"))
        assert swept.status_code == 409 and swept.json()["code"] == "SEATS_COOLING_DOWN", swept.text
        clock.advance(301)
        later = await c.post("/api/reservations", json=body, headers=gated(runtime, hoarder, show_id, "e-4"))
        assert later.status_code == 201, later.text
    async with runtime.sessions() as s:
        live = (
            await s.execute(
                text("SELECT count(*) FROM reservations WHERE status = 'TEMP_RESERVED' AND user_id = :u"),
                {"u": hoarder["id"]},
            )
        ).scalar_one()
    assert live == 1


async def test_signups_are_throttled_per_address(runtime: Runtime) -> None:
    async with limited(
        runtime,
        limit_signups_per_address_per_hour=3,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
    ) as client_from:
        farm, person = client_from("203.0.113.40"), client_from("198.51.100.41")

        def signup(n: int) -> dict[str, str]:
            return {
                "email": f"bot{n}-{uuid.uuid4().hex[:6]}@example.test",
                "password": "Bot-Passw0rd-1",
                "name": "B",
            }

        codes = [(await farm.post("/api/auth/signup", json=signup(n))).status_code for n in range(5)]
        assert codes == [201, 201, 201, 429, 429], codes
        refused = await farm.post("/api/auth/signup", json=signup(9))
        assert refused.json()["code"] == "TOO_MANY_ATTEMPTS" and int(refused.headers["retry-after"]) >= 1
        assert (await person.post("/api/auth/signup", json=signup(10))).status_code == 201
        # the web's signup form takes the same path (and the same address)
        page = await farm.get("/signup", headers={"Accept": "text/html"})
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        web = await farm.post(
            "/signup",
            data={
                "csrf_token": token,
                "email": "webbot@example.test",
                "password": "Bot-Passw0rd-1",
                "name": "W",
            },
            headers={"Accept": "text/html"},
        )
        assert web.status_code == 429 and "try again later" in web.text
    async with runtime.sessions() as s:
        made = (await s.execute(text("SELECT count(*) FROM users"))).scalar_one()
    assert made == 4


async def test_a_show_can_require_a_verified_email_to_hold(client, runtime: Runtime) -> None:  # type: ignore[no-untyped-def]
    admin = await make_user(runtime, role="ADMIN")
    show = await make_show(runtime, seats=8)
    show_id = show["show_id"]
    patched = await client.patch(
        f"/api/admin/shows/{show_id}", json={"hold_requires_verified_email": True}, headers=admin["headers"]
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["hold_requires_verified_email"] is True
    runtime.clear_local_caches()
    await runtime.redis.delete(f"bo:{{{show_id}}}:booking:rules")
    fresh = await make_user(runtime)
    body = {"show_id": show_id, "seat_ids": show["seat_ids"][:1]}
    refused = await client.post("/api/reservations", json=body, headers=gated(runtime, fresh, show_id, "v-1"))
    assert refused.status_code == 403 and refused.json()["code"] == "EMAIL_NOT_VERIFIED", refused.text
    async with runtime.sessions() as s, s.begin():
        await s.execute(text("UPDATE users SET email_verified = true WHERE id = :u"), {"u": fresh["id"]})
    held = await client.post("/api/reservations", json=body, headers=gated(runtime, fresh, show_id, "v-2"))
    assert held.status_code == 201, held.text
