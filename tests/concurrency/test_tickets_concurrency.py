"""Tickets under concurrency, over real HTTP to a real uvicorn server on separate connections:

- many fans paying at once (balance and card through the real simulator) -> exactly one live ticket
  per sold seat, none for an unsold one, checked in the database;
- many gates scanning the same ticket at the same moment -> exactly one VALID, the rest
  ALREADY_USED, one admission in the log (decided by PostgreSQL's conditional UPDATE);
- the same, with every hold's payable entry in Redis naming another fan's seats -> each payment
  still sells exactly its own hold's seats;
- a refund racing the scans: the ticket is either admitted before it was voided or answers VOID,
  never VALID after.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest
from sqlalchemy import text

from boxoffice.booking import shield
from tests.factories import make_user
from tests.helpers.shows import make_show
from tests.integration.test_booking_support import assert_invariants, gated, simulator

pytestmark = pytest.mark.slow

FANS = 30
SEATS_EACH = 2
SCANS = 50


async def _rows(runtime, sql, **params):  # type: ignore[no-untyped-def]
    async with runtime.sessions() as s:
        return [dict(r) for r in (await s.execute(text(sql), params)).mappings()]


def _client(live_server: str, n: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=live_server, limits=limits, timeout=60)


async def _fans_holding(runtime, c: httpx.AsyncClient, show):  # type: ignore[no-untyped-def]
    """FANS fans, fan i holding seats [i * SEATS_EACH, (i + 1) * SEATS_EACH): (fans, their holds)."""
    sid = show["show_id"]
    fans = [await make_user(runtime, balance=10_000) for _ in range(FANS)]
    holds = []
    for i, fan in enumerate(fans):
        seats = show["seat_ids"][i * SEATS_EACH : (i + 1) * SEATS_EACH]
        resp = await c.post(
            "/api/reservations", json={"show_id": sid, "seat_ids": seats}, headers=gated(runtime, fan, sid)
        )
        assert resp.status_code == 201, resp.text
        holds.append(resp.json()["reservation_id"])
    return fans, holds


async def test_many_payments_at_once_issue_one_ticket_per_sold_seat(runtime, live_server):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=FANS * SEATS_EACH, price=1_000)
    sid = show["show_id"]
    async with _client(live_server, FANS) as c:
        fans, holds = await _fans_holding(runtime, c, show)
        async with simulator(runtime, latency_ms=20):
            # every fan pays twice at once with two keys (one BALANCE, one CARD for half of them):
            # one of each pair wins, and the tickets follow the one confirmation
            calls = []
            for i, (fan, rid) in enumerate(zip(fans, holds, strict=True)):
                second = "CARD" if i % 2 else "BALANCE"
                for method, key in (("BALANCE", f"a{i}"), (second, f"b{i}")):
                    calls.append(
                        c.post(
                            "/api/payments",
                            json={"reservation_id": rid, "method": method},
                            headers=gated(runtime, fan, sid, key),
                        )
                    )
            responses = await asyncio.gather(*calls)
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 409}, codes
    assert codes[201] == FANS, codes
    sold = await _rows(
        runtime, "SELECT id, reservation_id FROM seats WHERE show_id = :s AND status = 'RESERVED'", s=sid
    )
    assert len(sold) == FANS * SEATS_EACH
    tickets = await _rows(
        runtime, "SELECT seat_id, reservation_id, status FROM tickets WHERE show_id = :s", s=sid
    )
    assert len(tickets) == len(sold)
    assert {(t["seat_id"], t["reservation_id"]) for t in tickets} == {
        (s["id"], s["reservation_id"]) for s in sold
    }
    assert {t["status"] for t in tickets} == {"VALID"}
    await assert_invariants(runtime)  # I7: one live ticket per sold seat, none for an unsold one


async def test_payments_at_once_on_stale_payable_entries_sell_only_each_holds_seats(runtime, live_server):  # type: ignore[no-untyped-def]
    """The holds' Redis entries (booking.shield `bo:payable:{R}`) all name the next fan's seats:
    every balance payment, three at once per hold with three keys, still sells its own hold's
    seats exactly once, because the statement checks what was signed against PostgreSQL."""
    show = await make_show(runtime, seats=FANS * SEATS_EACH, price=1_000)
    sid = show["show_id"]
    async with _client(live_server, FANS) as c:
        fans, holds = await _fans_holding(runtime, c, show)
        entries = [await runtime.redis.get(shield.payable_key(rid)) for rid in holds]
        assert all(entries), "every winning hold leaves its entry"
        for i, rid in enumerate(holds):  # fan i's entry, with fan i+1's seats
            owner, show_id, holder, _ = json.loads(entries[i])
            neighbours = json.loads(entries[(i + 1) % FANS])[3]
            await runtime.redis.set(
                shield.payable_key(rid), json.dumps([owner, show_id, holder, neighbours]), ex=600
            )
        responses = await asyncio.gather(
            *(
                c.post(
                    "/api/payments",
                    json={"reservation_id": rid, "method": "BALANCE"},
                    headers=gated(runtime, fan, sid, f"k{i}-{n}"),
                )
                for i, (fan, rid) in enumerate(zip(fans, holds, strict=True))
                for n in range(3)
            )
        )
    codes = Counter(r.status_code for r in responses)
    assert set(codes) <= {201, 409}, codes
    assert codes[201] == FANS, codes
    sold = await _rows(
        runtime, "SELECT id, reservation_id FROM seats WHERE show_id = :s AND status = 'RESERVED'", s=sid
    )
    tickets = await _rows(runtime, "SELECT seat_id, reservation_id FROM tickets WHERE show_id = :s", s=sid)
    expected = {
        (seat, rid)
        for i, rid in enumerate(holds)
        for seat in show["seat_ids"][i * SEATS_EACH : (i + 1) * SEATS_EACH]
    }
    assert {(s["id"], s["reservation_id"]) for s in sold} == expected
    assert sorted((t["seat_id"], t["reservation_id"]) for t in tickets) == sorted(expected)
    await assert_invariants(runtime)


async def _one_ticket(runtime, live_server):  # type: ignore[no-untyped-def]
    show = await make_show(runtime, seats=4)
    sid = show["show_id"]
    fan = await make_user(runtime, balance=100_000)
    async with httpx.AsyncClient(base_url=live_server) as c:
        hold = await c.post(
            "/api/reservations",
            json={"show_id": sid, "seat_ids": show["seat_ids"][:1]},
            headers=gated(runtime, fan, sid),
        )
        rid = hold.json()["reservation_id"]
        paid = await c.post(
            "/api/payments",
            json={"reservation_id": rid, "method": "BALANCE"},
            headers=gated(runtime, fan, sid, "k"),
        )
        assert paid.status_code == 201, paid.text
        ticket = (await c.get("/api/tickets", headers=fan["headers"])).json()["items"][0]
    return fan, sid, rid, ticket


@pytest.mark.parametrize("by", ["payload", "code"])
async def test_simultaneous_scans_of_one_ticket_admit_exactly_once(runtime, live_server, by):  # type: ignore[no-untyped-def]
    _fan, sid, _rid, ticket = await _one_ticket(runtime, live_server)
    staff = [await make_user(runtime, role="DOOR") for _ in range(5)]
    async with _client(live_server, SCANS) as c:
        responses = await asyncio.gather(
            *(
                c.post(
                    f"/api/shows/{sid}/checkins",
                    json={"gate": f"G{i % 10}", by: ticket[by]},
                    headers=staff[i % len(staff)]["headers"],
                )
                for i in range(SCANS)
            )
        )
    assert {r.status_code for r in responses} == {200}
    results = Counter(r.json()["result"] for r in responses)
    assert results == {"VALID": 1, "ALREADY_USED": SCANS - 1}, results
    winner = next(r.json() for r in responses if r.json()["result"] == "VALID")
    assert {r.json()["used_gate"] for r in responses} == {winner["gate"]}
    db = await _rows(runtime, "SELECT status, used_gate FROM tickets WHERE id = :t", t=ticket["ticket_id"])
    assert db == [{"status": "USED", "used_gate": winner["gate"]}]
    log = await _rows(
        runtime,
        "SELECT result, count(*) AS n FROM checkins WHERE ticket_id = :t GROUP BY result",
        t=ticket["ticket_id"],
    )
    assert {r["result"]: r["n"] for r in log} == {"VALID": 1, "ALREADY_USED": SCANS - 1}
    await assert_invariants(runtime)


async def test_refund_racing_scans_never_admits_a_void_ticket(runtime, live_server):  # type: ignore[no-untyped-def]
    fan, sid, rid, ticket = await _one_ticket(runtime, live_server)
    staff = await make_user(runtime, role="DOOR")
    async with _client(live_server, SCANS + 1) as c:
        scans = [
            c.post(
                f"/api/shows/{sid}/checkins",
                json={"gate": "G", "payload": ticket["payload"]},
                headers=staff["headers"],
            )
            for _ in range(SCANS)
        ]
        refund = c.delete(f"/api/reservations/{rid}", headers=fan["headers"])
        *answers, refunded = await asyncio.gather(*scans, refund)
    assert refunded.status_code == 200, refunded.text
    results = [r.json()["result"] for r in answers]
    assert set(results) <= {"VALID", "ALREADY_USED", "VOID"} and results.count("VALID") <= 1
    db = await _rows(runtime, "SELECT status FROM tickets WHERE id = :t", t=ticket["ticket_id"])
    assert db == [{"status": "VOID"}]
    async with httpx.AsyncClient(base_url=live_server) as c:
        after = await c.post(
            f"/api/shows/{sid}/checkins",
            json={"gate": "G", "payload": ticket["payload"]},
            headers=staff["headers"],
        )
    assert after.json()["result"] == "VOID"
    await assert_invariants(runtime)
