"""`boxoffice bench door`: N gates scanning a show's tickets in parallel.

Set-up (untimed, through the real API): fans hold and pay for every seat of a fresh show (so every
ticket is issued by the payment, as in production), and a share of the orders is refunded (their
tickets are VOID). Then the gates scan every ticket's QR payload once, in a shuffled order, plus a
share of tickets a second time at another gate (the duplicate scans race their first scan), and
the void tickets. Reported: scans per second and latency percentiles per scan; the audit: no ticket
entered twice, no void ticket entered, every valid ticket entered exactly once, and the SPEC
invariants (I1-I4, I7).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from boxoffice.auth.tokens import issue_access_token
from boxoffice.bench import repository, setup
from boxoffice.bench.client import HttpPool, Timed
from boxoffice.bench.stack import Stack
from boxoffice.runtime import Runtime

SEATS_PER_ORDER = 4


@dataclass(frozen=True)
class DoorOptions:
    tickets: int = 20_000
    gates: int = 8
    per_gate: int = 4  # scans in flight per gate (a gate with several lanes)
    duplicate_share: float = 0.1  # tickets scanned a second time, at another gate
    void_share: float = 0.01  # orders refunded before the doors open
    setup_concurrency: int = 64


async def _sell(runtime: Runtime, stack: Stack, options: DoorOptions, console: Console) -> dict[str, Any]:
    """A show with `tickets` seats, sold out through the API; returns its id and the orders."""
    orders = -(-options.tickets // SEATS_PER_ORDER)
    show = await setup.create_show(
        runtime,
        seats=options.tickets,
        hold_seconds=600,
        admit_per_second=0,
        max_active=None,
        oversubscription=None,
        max_seats=SEATS_PER_ORDER,
    )
    fans = await setup.create_fans(runtime, orders, balance=10**12)
    qtokens = setup.queue_tokens(runtime, fans.user_ids, show.show_id)
    async with runtime.sessions() as session:
        seat_ids = await repository.show_seat_ids(session, show.show_id)
    pool = HttpPool(stack.base_url, size=options.setup_concurrency, timeout=120)
    gate = asyncio.Semaphore(options.setup_concurrency)
    bought: list[tuple[int, str]] = []

    async def buy(i: int) -> None:
        seats = seat_ids[i * SEATS_PER_ORDER : (i + 1) * SEATS_PER_ORDER]
        headers = {"Authorization": f"Bearer {fans.tokens[i]}", "X-Queue-Token": qtokens[i]}
        async with gate:
            hold = await pool.request(
                "POST",
                "/api/reservations",
                json={"show_id": show.show_id, "seat_ids": seats},
                headers=headers,
            )
            if hold.status != 201:
                raise RuntimeError(f"set-up hold failed: {hold.status} {hold.problem_code()}")
            rid = int(hold.json()["reservation_id"])
            paid = await pool.request(
                "POST",
                "/api/payments",
                json={"reservation_id": rid, "method": "BALANCE"},
                headers={**headers, "Idempotency-Key": f"door-bench-{rid}"},
            )
            if paid.status != 201:
                raise RuntimeError(f"set-up payment failed: {paid.status} {paid.problem_code()}")
            bought.append((rid, fans.tokens[i]))

    with console.status(f"selling {options.tickets:,} seats in {orders:,} orders through the API..."):
        await asyncio.gather(*(buy(i) for i in range(orders)))
    refunds = random.sample(bought, k=int(len(bought) * options.void_share))
    with console.status(f"refunding {len(refunds)} orders (their tickets are void)..."):
        for rid, token in refunds:
            resp = await pool.request(
                "DELETE", f"/api/reservations/{rid}", headers={"Authorization": f"Bearer {token}"}
            )
            if resp.status != 200:
                raise RuntimeError(f"set-up refund failed: {resp.status} {resp.problem_code()}")
    await pool.close()
    return {"show_id": show.show_id, "orders": len(bought), "refunded_orders": len(refunds)}


async def run_door(runtime: Runtime, stack: Stack, options: DoorOptions, console: Console) -> dict[str, Any]:
    sale = await _sell(runtime, stack, options, console)
    show_id = sale["show_id"]
    async with runtime.sessions() as session:
        tickets = await repository.show_tickets(session, show_id)
    staff_id = await setup.create_door_staff(runtime)
    token, _ = issue_access_token(runtime.settings, user_id=staff_id, role="DOOR", now=runtime.clock.now())
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random(7)
    first = [(t["id"], t["payload"]) for t in tickets]
    rng.shuffle(first)
    again = rng.sample(first, k=int(len(first) * options.duplicate_share))
    # Gate g takes every g-th first scan; a duplicate goes to another gate, so two gates race.
    lanes: list[list[tuple[int, str]]] = [first[g :: options.gates] for g in range(options.gates)]
    position = {scan[0]: i for i, scan in enumerate(first)}
    for n, scan in enumerate(again):
        g = (position[scan[0]] % options.gates + 1 + n % max(1, options.gates - 1)) % options.gates
        lanes[g].insert(rng.randrange(len(lanes[g]) + 1), scan)
    pool = HttpPool(stack.base_url, size=options.gates * options.per_gate, timeout=60)
    t0 = time.perf_counter()
    timed = Timed(pool, t0)
    answers: Counter[str] = Counter()
    admitted: Counter[int] = Counter()
    path = f"/api/shows/{show_id}/checkins"

    async def lane(gate: int, queue: list[tuple[int, str]]) -> None:
        while queue:
            ticket_id, payload = queue.pop()
            response = await timed.call(
                "scan", "POST", path, json={"payload": payload, "gate": f"G{gate}"}, headers=headers
            )
            if response is not None and response.status == 200:
                result = str(response.json()["result"])
                answers[result] += 1
                if result == "VALID":
                    admitted[ticket_id] += 1

    total = sum(len(q) for q in lanes)
    with console.status(f"{options.gates} gates x {options.per_gate} lanes scanning {total:,} times..."):
        queues = [list(reversed(q[i :: options.per_gate])) for q in lanes for i in range(options.per_gate)]
        await asyncio.gather(*(lane(n // options.per_gate, q) for n, q in enumerate(queues)))
    await pool.close()
    async with runtime.sessions() as session:
        db = await repository.door_audit(session, show_id)
    void_ids = {t["id"] for t in tickets if t["status"] == "VOID"}
    valid = len(tickets) - len(void_ids)
    audit = {
        "entered_twice (client)": sum(1 for n in admitted.values() if n > 1),
        "void_entered (client)": sum(1 for t in admitted if t in void_ids),
        "valid_not_entered": valid - sum(1 for t in admitted if t not in void_ids),
        **db,
    }
    summary = timed.steps["scan"].summary()
    return {
        "sale": sale,
        "tickets": len(tickets),
        "void_tickets": len(void_ids),
        "scans": total,
        "answers": dict(answers),
        "steps": {"scan": summary},
        "door_audit": audit,
        "door_ok": all(v == 0 for v in audit.values()),
    }
