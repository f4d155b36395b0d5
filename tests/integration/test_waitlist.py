"""The waitlist: a second chance in order. Joinable only when the show is sold out (or its last
seats held); every returned seat is held for the next waitlisted fan for the show's hold time;
taken or lapsed, the next seat goes to the next fan; while anyone waits, no other hold can take a
returned seat; the console counts it all."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from boxoffice.booking.flows import expire_holds, offer_returned_seats
from boxoffice.catalog.service import refresh_inventory
from boxoffice.kit.clock import OffsetClock
from boxoffice.mail.flows import send_due
from boxoffice.runtime import Runtime
from boxoffice.waiting_room import store
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated


async def settle_inventory(runtime: Runtime, show_id: int) -> None:
    """What the recount job and the worker's tick do: inventory from the seats, the cached show dropped."""
    async with runtime.sessions() as s, s.begin():
        await refresh_inventory(s, [show_id], now=runtime.clock.now())
    await store.drop_show_cache(runtime.redis, show_id)


async def hold(
    client: httpx.AsyncClient, runtime: Runtime, fan: dict[str, Any], show: dict[str, Any], seat: int
) -> httpx.Response:
    return await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": [seat]},
        headers=gated(runtime, fan, show["show_id"]),
    )


async def entry(client: httpx.AsyncClient, fan: dict[str, Any], show_id: int) -> dict[str, Any]:
    r = await client.get(f"/api/shows/{show_id}/waitlist", headers=fan["headers"])
    assert r.status_code == 200, r.text
    return dict(r.json())


async def offers_in_order(runtime: Runtime, show_id: int) -> list[tuple[int, str]]:
    async with runtime.sessions() as s:
        rows = await s.execute(
            text(
                "SELECT user_id, status FROM waitlist WHERE show_id = :s AND offered_at IS NOT NULL ORDER BY offered_at, id"
            ),
            {"s": show_id},
        )
        return [(r[0], r[1]) for r in rows]


async def test_returned_seats_go_to_the_waitlist_in_order(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, seats=2, hold_seconds=60)
    sid = show["show_id"]
    x, y = await make_user(runtime, balance=10**7), await make_user(runtime, balance=10**7)
    waiters = [await make_user(runtime, balance=10**7) for _ in range(3)]
    crowd = await make_user(runtime, balance=10**7)
    admin = await make_user(runtime, role="ADMIN")

    early = await client.post(f"/api/shows/{sid}/waitlist", headers=waiters[0]["headers"])
    assert early.status_code == 409 and early.json()["code"] == "WAITLIST_NOT_OPEN"  # seats on sale: buy
    held_x = await hold(client, runtime, x, show, show["seat_ids"][0])
    held_y = await hold(client, runtime, y, show, show["seat_ids"][1])
    assert held_x.status_code == 201 and held_y.status_code == 201
    await settle_inventory(runtime, sid)  # LAST_SEATS_HELD
    for i, w in enumerate(waiters):
        joined = await client.post(f"/api/shows/{sid}/waitlist", headers=w["headers"])
        assert (
            joined.status_code == 200
            and joined.json()["status"] == "WAITING"
            and joined.json()["position"] == i + 1
        )
    again = await client.post(f"/api/shows/{sid}/waitlist", headers=waiters[0]["headers"])
    assert again.json()["position"] == 1  # twice = the same place

    # x releases the hold: the seat is the waitlist's, not the crowd's
    assert (
        await client.delete(f"/api/reservations/{held_x.json()['reservation_id']}", headers=x["headers"])
    ).status_code in (200, 204)
    grab = await hold(client, runtime, crowd, show, show["seat_ids"][0])
    assert grab.status_code == 409 and grab.json()["code"] == "SEATS_TAKEN"
    assert grab.json()["waitlist"] is True and "waitlist first" in grab.json()["detail"]
    assert await offer_returned_seats(runtime) == 1
    first = await entry(client, waiters[0], sid)
    assert first["status"] == "OFFERED" and first["reservation_id"] and first["offer_expires_at"]
    assert (await entry(client, waiters[1], sid))["position"] == 1
    paid = await client.post(
        "/api/payments",
        json={"reservation_id": first["reservation_id"], "method": "BALANCE"},
        headers={**waiters[0]["headers"], "Idempotency-Key": "wl-1"},
    )
    assert paid.status_code == 201, paid.text

    # y's hold lapses: offered to the 2nd waiter, who lets it lapse too: then the 3rd
    clock.advance(61)
    await expire_holds(runtime)
    second = await entry(client, waiters[1], sid)
    assert second["status"] == "OFFERED"
    assert (await hold(client, runtime, crowd, show, show["seat_ids"][1])).status_code == 409
    clock.advance(61)
    await expire_holds(runtime)
    assert (await entry(client, waiters[1], sid))["status"] == "LAPSED"
    assert (await entry(client, waiters[2], sid))["status"] == "OFFERED"
    assert (await entry(client, waiters[0], sid))["status"] == "TAKEN"
    assert [u for u, _ in await offers_in_order(runtime, sid)] == [w["id"] for w in waiters]

    view = (await client.get(f"/api/admin/shows/{sid}/queue", headers=admin["headers"])).json()
    assert (
        view["waitlist_waiting"],
        view["waitlist_offers"],
        view["waitlist_taken"],
        view["waitlist_lapsed"],
    ) == (0, 3, 1, 1)
    # nobody waits any more: a returned seat is open to everyone again
    clock.advance(61)
    await expire_holds(runtime)
    assert (await hold(client, runtime, crowd, show, show["seat_ids"][1])).status_code == 201
    await assert_invariants(runtime)


async def test_leave_and_the_waitlist_page(client: httpx.AsyncClient, runtime: Runtime) -> None:
    show = await make_show(runtime, seats=1)
    sid = show["show_id"]
    buyer, fan = await make_user(runtime), await make_user(runtime)
    assert (await hold(client, runtime, buyer, show, show["seat_ids"][0])).status_code == 201
    await settle_inventory(runtime, sid)
    assert (await entry(client, fan, sid))["status"] == "NOT_ON_WAITLIST"
    assert (await client.post(f"/api/shows/{sid}/waitlist", headers=fan["headers"])).status_code == 200
    assert (await client.delete(f"/api/shows/{sid}/waitlist", headers=fan["headers"])).status_code == 204
    assert (await entry(client, fan, sid))["status"] == "LEFT"
    missing = await client.post("/api/shows/999999999/waitlist", headers=fan["headers"])
    assert missing.status_code == 404 and missing.json()["code"] == "SHOW_NOT_FOUND"


async def test_the_waitlist_over_grpc(client: httpx.AsyncClient, runtime: Runtime, grpc_target: str) -> None:
    from boxoffice.grpc import ticket_pb2 as pb
    from tests.integration.grpc_support import meta, ticket_stub

    show = await make_show(runtime, seats=1)
    sid = show["show_id"]
    buyer, fan = await make_user(runtime), await make_user(runtime)
    held = await hold(client, runtime, buyer, show, show["seat_ids"][0])
    assert held.status_code == 201
    await settle_inventory(runtime, sid)
    async with ticket_stub(grpc_target) as stub:
        joined = await stub.JoinWaitlist(pb.WaitlistRequest(show_id=sid), metadata=meta(fan))
        assert joined.status == pb.WAITLIST_STATE_WAITING and joined.position == 1
        assert (
            await client.delete(
                f"/api/reservations/{held.json()['reservation_id']}", headers=buyer["headers"]
            )
        ).status_code in (200, 204)
        await offer_returned_seats(runtime)
        offered = await stub.GetWaitlist(pb.WaitlistRequest(show_id=sid), metadata=meta(fan))
        assert offered.status == pb.WAITLIST_STATE_OFFERED and offered.reservation_id > 0
        assert offered.offer_expires_at.seconds > 0 and not offered.HasField("position")


async def test_the_queue_does_not_move_for_seats_the_waitlist_is_owed(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    from boxoffice.waiting_room.flows import tick_show

    show = await make_show(runtime, seats=1, admit_per_second=100, pow_difficulty=0)
    sid = show["show_id"]
    buyer, queued, waiter = await make_user(runtime), await make_user(runtime), await make_user(runtime)
    held = await hold(client, runtime, buyer, show, show["seat_ids"][0])
    assert held.status_code == 201
    await settle_inventory(runtime, sid)
    in_line = await client.post("/api/queue", json=show["body"], headers=queued["headers"])
    assert in_line.status_code == 200 and in_line.json()["status"] == "LAST_SEATS_HELD"
    assert (await client.post(f"/api/shows/{sid}/waitlist", headers=waiter["headers"])).status_code == 200
    assert (
        await client.delete(f"/api/reservations/{held.json()['reservation_id']}", headers=buyer["headers"])
    ).status_code in (200, 204)
    await settle_inventory(runtime, sid)
    result = await tick_show(runtime, sid)
    assert result is not None and result.admitted == 0  # the returned seat is the waitlist's
    view = await client.get("/api/queue/status", params=show["body"], headers=queued["headers"])
    assert view.json()["status"] == "LAST_SEATS_HELD"
    assert await offer_returned_seats(runtime) == 1
    assert (await entry(client, waiter, sid))["status"] == "OFFERED"


async def test_the_offer_is_mailed_after_it_committed(
    client: httpx.AsyncClient,
    runtime: Runtime,
    inbox: tuple[Any, int],
) -> None:
    handler, port = inbox
    show = await make_show(runtime, seats=1)
    sid = show["show_id"]
    buyer, waiter = await make_user(runtime), await make_user(runtime)
    held = await hold(client, runtime, buyer, show, show["seat_ids"][0])
    await settle_inventory(runtime, sid)
    assert (await client.post(f"/api/shows/{sid}/waitlist", headers=waiter["headers"])).status_code == 200
    await client.delete(f"/api/reservations/{held.json()['reservation_id']}", headers=buyer["headers"])
    original = runtime.settings
    runtime.settings = original.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "public_base_url": "https://tickets.example"}
    )
    try:
        assert await offer_returned_seats(runtime) == 1
        assert handler.messages == []  # queued with the offer; the mail_sender job sends it
        assert await send_due(runtime) == 1
    finally:
        runtime.settings = original
    offer = await entry(client, waiter, sid)
    assert len(handler.messages) == 1
    rcpt, msg = handler.messages[0]
    assert rcpt == [waiter["email"]] and msg["Subject"].startswith("A seat came back for you")
    body = msg.get_payload(decode=True).decode()
    assert f"https://tickets.example/reservations/{offer['reservation_id']}/checkout" in body
    assert "KST" in body  # the hold's end in the venue's time zone (the demo default, Asia/Seoul)


async def test_a_waitlisted_fan_at_the_ticket_limit_is_passed_over(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    show = await make_show(runtime, seats=2)
    sid = show["show_id"]
    async with runtime.sessions() as s, s.begin():
        await s.execute(text("UPDATE shows SET max_tickets_per_fan = 1 WHERE id = :s"), {"s": sid})
    full = await make_user(runtime, balance=10**7)
    buyer, next_fan = await make_user(runtime), await make_user(runtime)
    mine = await hold(client, runtime, full, show, show["seat_ids"][0])
    assert mine.status_code == 201
    paid = await client.post(  # 1 of 1, paid
        "/api/payments",
        json={"reservation_id": mine.json()["reservation_id"], "method": "BALANCE"},
        headers={**full["headers"], "Idempotency-Key": "full"},
    )
    assert paid.status_code == 201
    held = await hold(client, runtime, buyer, show, show["seat_ids"][1])
    await settle_inventory(runtime, sid)
    for fan in (full, next_fan):
        assert (await client.post(f"/api/shows/{sid}/waitlist", headers=fan["headers"])).status_code == 200
    await client.delete(f"/api/reservations/{held.json()['reservation_id']}", headers=buyer["headers"])
    assert await offer_returned_seats(runtime) == 1
    assert (await entry(client, full, sid))["status"] == "SKIPPED"
    assert (await entry(client, next_fan, sid))["status"] == "OFFERED"
    async with runtime.sessions() as s:
        counted = (
            await s.execute(
                text("SELECT seats FROM fan_tickets WHERE user_id = :u AND scope = 'show' AND scope_id = :s"),
                {"u": full["id"], "s": sid},
            )
        ).scalar_one()
    assert counted == 1  # the refused offer left nothing behind
    await assert_invariants(runtime)


async def test_a_waiter_holding_seats_now_keeps_the_place_and_the_seat_goes_on(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    show = await make_show(runtime, seats=2)
    sid = show["show_id"]
    w1, buyer, w2 = await make_user(runtime), await make_user(runtime), await make_user(runtime)
    assert (await hold(client, runtime, w1, show, show["seat_ids"][0])).status_code == 201  # a live hold
    held = await hold(client, runtime, buyer, show, show["seat_ids"][1])
    await settle_inventory(runtime, sid)
    for fan in (w1, w2):
        assert (await client.post(f"/api/shows/{sid}/waitlist", headers=fan["headers"])).status_code == 200
    await client.delete(f"/api/reservations/{held.json()['reservation_id']}", headers=buyer["headers"])
    assert await offer_returned_seats(runtime) == 1  # not stuck behind w1
    assert (await entry(client, w2, sid))["status"] == "OFFERED"
    first = await entry(client, w1, sid)
    assert first["status"] == "WAITING" and first["position"] == 1
    await assert_invariants(runtime)
