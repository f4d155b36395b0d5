"""The hold's payable entry (booking.shield `bo:payable:{R}`): a winning hold leaves in Redis what
its balance payment needs to sign the tickets, so the payment is one PostgreSQL statement, not a
read and a statement. Redis is only believed as far as the statement checks it: a missing, stale
or foreign entry costs the read it replaces and nothing else."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text

from boxoffice.booking import shield
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated
from tests.integration.test_tracing import PARENT_ID, TRACE_ID, server_timing, traced

SAMPLED = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}


async def _hold(
    client: Any, runtime: Any, fan: dict[str, Any], show: dict[str, Any], seats: list[int]
) -> int:
    resp = await client.post(
        "/api/reservations",
        json={"show_id": show["show_id"], "seat_ids": seats},
        headers={**gated(runtime, fan, show["show_id"], uuid.uuid4().hex), **SAMPLED},
    )
    assert resp.status_code == 201, resp.text
    return int(resp.json()["reservation_id"])


async def _pay(client: Any, runtime: Any, fan: dict[str, Any], show: dict[str, Any], rid: int) -> Any:
    return await client.post(
        "/api/payments",
        json={"reservation_id": rid, "method": "BALANCE"},
        headers={**gated(runtime, fan, show["show_id"], uuid.uuid4().hex), **SAMPLED},
    )


async def _tickets(runtime: Any, rid: int) -> list[tuple[int, str, str]]:
    async with runtime.sessions() as s:
        rows = await s.execute(
            text(
                "SELECT seat_id, holder_name, status FROM tickets WHERE reservation_id = :r ORDER BY seat_id"
            ),
            {"r": rid},
        )
        return [tuple(r) for r in rows]


def _pg_statements(resp: Any) -> int:
    """The statements a traced request awaited (its PostgreSQL calls: a pool checkout is none)."""
    return int(str(server_timing(resp.headers["server-timing"])["pg_calls"]))


async def _fan_holding(
    client: Any, own: Any, show: dict[str, Any], seats: list[int], name: str
) -> tuple[Any, int]:
    fan = await make_user(own, balance=10_000, name=name)
    return fan, await _hold(client, own, fan, show, seats)


async def _pays(
    client: Any, own: Any, fan: Any, show: dict[str, Any], rid: int, seats: list[int], holder: str
) -> int:
    """The fan pays the hold; its tickets are VALID, for `seats`, in `holder`'s name. Returns the
    PostgreSQL statements the payment took."""
    paid = await _pay(client, own, fan, show, rid)
    assert paid.status_code == 201, paid.text
    assert await _tickets(own, rid) == [(s, holder, "VALID") for s in seats]
    return _pg_statements(paid)


async def test_a_winning_hold_leaves_its_payment_what_it_needs(settings, runtime) -> None:  # type: ignore[no-untyped-def]
    async with traced(settings, runtime, trace_breakdown=True) as (client, own):
        show = await make_show(own, seats=4, price=1_000, hold_seconds=300)
        fan, rid = await _fan_holding(client, own, show, show["seat_ids"][:2], "Kim Minji")
        key = shield.payable_key(rid)
        owner, show_id, holder, seats = json.loads(await own.redis.get(key))
        assert (owner, show_id, holder) == (fan["id"], show["show_id"], "Kim Minji")
        assert [s[0] for s in seats] == show["seat_ids"][:2] and all(len(s) == 4 for s in seats)
        assert 300 < await own.redis.ttl(key) <= 300 + shield.PAYABLE_GRACE_SECONDS
        # The name the tickets carry comes from the entry: the payment read nothing else first.
        await own.redis.set(key, json.dumps([owner, show_id, "Name From The Hold", seats]), ex=600)
        assert await _pays(client, own, fan, show, rid, show["seat_ids"][:2], "Name From The Hold") == 1
        await assert_invariants(own)


async def test_without_the_entry_the_payment_reads_its_seats(settings, runtime) -> None:  # type: ignore[no-untyped-def]
    async with traced(settings, runtime, trace_breakdown=True) as (client, own):
        show = await make_show(own, seats=4, price=1_000)
        fan, rid = await _fan_holding(client, own, show, show["seat_ids"][:2], "Lee Seojun")
        await own.redis.delete(shield.payable_key(rid))  # Redis flushed, or the write was lost
        assert await _pays(client, own, fan, show, rid, show["seat_ids"][:2], "Lee Seojun") == 2
        await assert_invariants(own)


async def test_a_stale_or_foreign_entry_sells_only_the_holds_own_seats(settings, runtime) -> None:  # type: ignore[no-untyped-def]
    async with traced(settings, runtime, trace_breakdown=True) as (client, own):
        show = await make_show(own, seats=6, price=1_000)
        seats = show["seat_ids"]
        fan, rid = await _fan_holding(client, own, show, seats[:2], "Park Jiwoo")
        key = shield.payable_key(rid)
        owner, show_id, _holder, _ = json.loads(await own.redis.get(key))
        # Seats that are not the hold's: the statement refuses its signed tickets, the payment reads
        # the hold's seats and pays them (a third round trip, nothing else).
        wrong = [[s, "A", "1", i + 1] for i, s in enumerate(seats[2:4])]
        await own.redis.set(key, json.dumps([owner, show_id, "Wrong Seats", wrong]), ex=600)
        assert await _pays(client, own, fan, show, rid, seats[:2], "Park Jiwoo") == 3

        # Another fan's entry for this reservation is not believed at all.
        other, rid2 = await _fan_holding(client, own, show, seats[4:6], "Choi Yuna")
        await own.redis.set(
            shield.payable_key(rid2), json.dumps([fan["id"], show_id, "Not Yours", wrong]), ex=600
        )
        assert await _pays(client, own, other, show, rid2, seats[4:6], "Choi Yuna") == 2
        # Nor an entry that is not one of ours.
        third, rid3 = await _fan_holding(client, own, show, seats[2:4], "Jung Hana")
        await own.redis.set(shield.payable_key(rid3), b'{"not": "an entry"', ex=600)
        assert await _pays(client, own, third, show, rid3, seats[2:4], "Jung Hana") == 2
        # Nor does anyone pay another fan's hold through its entry.
        stranger = await make_user(own, balance=10_000)
        refused = await _pay(client, own, stranger, show, rid)
        assert refused.status_code == 404, refused.text
        await assert_invariants(own)
