"""The waitlist's fairness audit (db.audit.waitlist_fairness, what `bench flash-sale --waitlist`
reports): offers made / taken / lapsed from the database, pairs offered out of waitlist order, and
crowd holds made while fans waited. A fair run reads 0 and 0; each planted breach is counted."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from boxoffice.booking.flows import offer_returned_seats
from boxoffice.db.audit import waitlist_fairness
from boxoffice.kit.clock import OffsetClock
from boxoffice.runtime import Runtime
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_waitlist import entry, hold, settle_inventory


async def _fairness(runtime: Runtime, show_id: int) -> dict[str, object]:
    async with runtime.sessions() as session, session.begin():
        return await waitlist_fairness(session, show_id)


async def test_the_audit_reads_a_fair_waitlist_as_fair_and_counts_each_breach(
    client: httpx.AsyncClient, runtime: Runtime, clock: OffsetClock
) -> None:
    show = await make_show(runtime, seats=2, hold_seconds=60)
    sid = show["show_id"]
    x, y = await make_user(runtime, balance=10**7), await make_user(runtime, balance=10**7)
    w1, w2, w3 = [await make_user(runtime, balance=10**7) for _ in range(3)]
    held_x = await hold(client, runtime, x, show, show["seat_ids"][0])
    held_y = await hold(client, runtime, y, show, show["seat_ids"][1])
    assert held_x.status_code == 201 and held_y.status_code == 201
    await settle_inventory(runtime, sid)
    for w in (w1, w2, w3):
        assert (await client.post(f"/api/shows/{sid}/waitlist", headers=w["headers"])).status_code == 200
    clock.advance(5)  # the waiters have waited a while (beyond the audit's grace)
    for fan, held in ((x, held_x), (y, held_y)):
        gone = await client.delete(
            f"/api/reservations/{held.json()['reservation_id']}", headers=fan["headers"]
        )
        assert gone.status_code in (200, 204)
    assert await offer_returned_seats(runtime) == 2
    first = await entry(client, w1, sid)
    paid = await client.post(
        "/api/payments",
        json={"reservation_id": first["reservation_id"], "method": "BALANCE"},
        headers={**w1["headers"], "Idempotency-Key": "wl-audit-1"},
    )
    assert paid.status_code == 201, paid.text

    fair = await _fairness(runtime, sid)
    assert (fair["entries"], fair["offers_made"], fair["taken"], fair["offered_now"], fair["waiting"]) == (
        3,
        2,
        1,
        1,
        1,
    )
    assert fair["inversions"] == 0 and fair["crowd_holds_while_waiting"] == 0, fair

    # Planted: w2's offer (its hold too) handed to w3, behind w2, who goes back to waiting.
    offer = (await entry(client, w2, sid))["reservation_id"]
    assert offer
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            text(
                "UPDATE waitlist SET status = 'WAITING', offered_at = NULL, reservation_id = NULL "
                "WHERE show_id = :s AND user_id = :w2"
            ),
            {"s": sid, "w2": w2["id"]},
        )
        await s.execute(
            text(
                "UPDATE waitlist SET status = 'OFFERED', offered_at = :now, reservation_id = :r "
                "WHERE show_id = :s AND user_id = :w3"
            ),
            {"s": sid, "w3": w3["id"], "now": runtime.clock.now(), "r": offer},
        )
        await s.execute(
            text("UPDATE reservations SET user_id = :w3 WHERE id = :r"), {"w3": w3["id"], "r": offer}
        )
    fair = await _fairness(runtime, sid)
    assert fair["inversions"] == 1, fair
    sample = fair["inversion_sample"][0]  # type: ignore[index]
    assert (sample["offered_user"], sample["passed_over_user"]) == (w3["id"], w2["id"])

    # Planted: the waiters joined an hour earlier, before x's and y's holds: two crowd holds.
    async with runtime.sessions() as s, s.begin():
        await s.execute(
            text("UPDATE waitlist SET joined_at = joined_at - interval '1 hour' WHERE show_id = :s"),
            {"s": sid},
        )
    assert (await _fairness(runtime, sid))["crowd_holds_while_waiting"] == 2
