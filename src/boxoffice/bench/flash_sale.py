"""The flash sale: N fans arrive at once and go through the product the way a browser would.

Each fan: join the queue -> poll its status with its queue ticket (honouring poll_after_seconds,
capped for the bench, and a 429's Retry-After; stopping at once on SOLD_OUT) -> take the admission
token -> read the seat map -> hold 1-4 seats that look free (on 409 try others, at most 3 retries)
-> pay from the balance (pay_ratio) or walk away and let the hold expire. A fan who finds no free
seat while some are still held keeps refreshing the map for released ones until the sale is over.
`concurrency` bounds the requests in flight (the client's connections), not the fans: all of them
are in the sale from the first second, as on the day.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from boxoffice.bench.client import Response, Timed

STEPS = ("join", "status", "token", "seat_map", "hold", "pay")


@dataclass(frozen=True)
class FanPlan:
    pay_ratio: float
    poll_cap_seconds: float
    max_seats: int
    hold_retries: int = 3
    refresh_seconds: float = 2.0
    # How long a fan who sees no free seat keeps refreshing for lapsed holds (hold time + sweep).
    hopeful_seconds: float = 30.0


@dataclass
class Fan:
    index: int
    user_id: int
    access_token: str
    join_sent: float | None = None
    ticket: int | None = None
    ready_seen: float | None = None
    outcome: str = "not_started"
    seats: int = 0


@dataclass
class SaleState:
    """Shared by every fan: what the client has seen so far (the report cross-checks the DB)."""

    seats_total: int
    t0: float
    joined: int = 0
    waiting: int = 0
    admitted: int = 0
    holds_won: int = 0
    sold: int = 0
    sold_out_at: float | None = None
    # Set when the client saw every seat sold; ends the buyers' seat-map refreshes. Waiting fans do
    # not look at it (a real fan cannot): only the server's SOLD_OUT, or `abort`, ends their wait.
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    abort: asyncio.Event = field(default_factory=asyncio.Event)
    told_sold_out: int = 0
    last_left_queue: float = 0.0
    samples: list[dict[str, float]] = field(default_factory=list)

    def note_sale(self, seats: int) -> None:
        self.sold += seats
        if self.sold >= self.seats_total and self.sold_out_at is None:
            self.sold_out_at = time.perf_counter() - self.t0
            self.stop.set()


def _ticket_from_token(token: str) -> int | None:
    """The queue ticket the server put in the admission token (its admission order)."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(data["ticket"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def seat_list(response: Response | None) -> list[dict[str, Any]]:
    if response is None or response.status != 200:
        return []
    data = response.json()
    seats = data.get("seats", []) if isinstance(data, dict) else data
    return seats if isinstance(seats, list) else []


def _pick(available: list[int], k: int, rng: random.Random) -> list[int]:
    """k adjacent-by-id seats, biased to the front of the house (where everybody wants to sit)."""
    if not available:
        return []
    k = min(k, len(available))
    start = min(int(len(available) * rng.random() ** 2), len(available) - k)
    return available[start : start + k]


async def sleep_or_stop(state: SaleState, seconds: float, event: asyncio.Event | None = None) -> bool:
    """Sleep; True when the sale ended meanwhile (`event`: state.stop unless given). Every poll
    of every fan sleeps here: `asyncio.timeout` around the wait, not `wait_for`, which starts a
    task for it (34 against 18 µs of the load client's CPU, which shares the box with the server)."""
    event = state.stop if event is None else event
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
        return True
    except TimeoutError:
        return event.is_set()


def retry_after(response: Response, default: float = 1.0) -> float:
    """A 429's Retry-After (delta-seconds), which every client of ours honours."""
    try:
        return max(0.0, float(response.headers.get("retry-after", default)))
    except ValueError:
        return default


async def run_fan(
    fan: Fan,
    *,
    timed: Timed,
    state: SaleState,
    plan: FanPlan,
    concert_id: int,
    show_id: int,
    rng: random.Random,
) -> None:
    auth = {"Authorization": f"Bearer {fan.access_token}"}
    where = {"concert_id": concert_id, "show_id": show_id}
    fan.join_sent = time.perf_counter() - state.t0
    while True:
        response = await timed.call("join", "POST", "/api/queue", json=where, headers=auth)
        if response is None or response.status != 429:
            break
        if await sleep_or_stop(state, retry_after(response), state.abort):
            fan.outcome = "join_shed"
            return
    if response is not None and response.status == 409 and response.problem_code() == "SOLD_OUT":
        fan.outcome = "join_sold_out"
        return
    if response is None or response.status not in (200, 201):
        fan.outcome = "join_failed"
        return
    if response.sent_at:
        fan.join_sent = response.sent_at - state.t0
    state.joined += 1
    body = response.json() or {}
    state.waiting += 1
    try:
        outcome = await _wait_in_queue(
            body, timed=timed, state=state, plan=plan, auth=auth, where=where, rng=rng
        )
    finally:
        state.waiting -= 1
        state.last_left_queue = max(state.last_left_queue, time.perf_counter() - state.t0)
    if isinstance(outcome, str):
        fan.outcome = outcome
        return
    body = outcome
    fan.ready_seen = time.perf_counter() - state.t0
    state.admitted += 1

    response = await timed.call("token", "POST", "/api/reservations/token", json=where, headers=auth)
    if response is None or response.status not in (200, 201):
        fan.outcome = "token_failed"
        return
    token = (response.json() or {}).get("token") or body.get("token")
    if not token:
        fan.outcome = "token_missing"
        return
    fan.ticket = _ticket_from_token(token)
    gated = {**auth, "X-Queue-Token": token}
    await _buy(fan, timed=timed, state=state, plan=plan, where=where, gated=gated, rng=rng)


async def _wait_in_queue(
    body: dict[str, Any],
    *,
    timed: Timed,
    state: SaleState,
    plan: FanPlan,
    auth: dict[str, str],
    where: dict[str, int],
    rng: random.Random,
) -> dict[str, Any] | str:
    """Poll until READY (-> the status body) or a reason to stop (-> the fan's outcome)."""
    failures = 0
    path = f"/api/queue/status?concert_id={where['concert_id']}&show_id={where['show_id']}"
    delay: float | None = None
    while body.get("status") != "READY":
        if body.get("status") == "SOLD_OUT":
            state.told_sold_out += 1
            return "queue_sold_out"
        if delay is None:
            server_delay = body.get("poll_after_seconds")
            delay = plan.poll_cap_seconds if server_delay is None else float(server_delay)
            if delay > plan.poll_cap_seconds:
                # Capped, with the spread the server puts in its own delays (admission.poll_after):
                # a bare cap would have every fan poll in step, a herd no real crowd makes.
                delay = plan.poll_cap_seconds * rng.uniform(0.8, 1.2)
        if await sleep_or_stop(state, delay, state.abort):
            return "sale_over_in_queue"
        ticket = body.get("queue_ticket")
        headers = {**auth, "X-Queue-Ticket": ticket} if ticket else auth
        response = await timed.call("status", "GET", path, headers=headers)
        if response is not None and response.status == 429:
            delay = retry_after(response)  # shed: the place is kept, come back when told
            continue
        delay = None
        if response is None or response.status != 200:
            failures += 1
            if failures >= 5:
                return "status_failed"
            continue
        failures = 0
        body = response.json() or {}
        if body.get("status") == "NOT_IN_QUEUE":
            return "dropped_from_queue"
    return body


async def _buy(
    fan: Fan,
    *,
    timed: Timed,
    state: SaleState,
    plan: FanPlan,
    where: dict[str, int],
    gated: dict[str, str],
    rng: random.Random,
) -> None:
    show_id = where["show_id"]
    seats_path = f"/api/shows/{show_id}/seats?status=AVAILABLE"
    hopeful_until: float | None = None
    while True:
        response = await timed.call("seat_map", "GET", seats_path, headers=gated)
        if response is None or response.status != 200:
            fan.outcome = "seat_map_failed"
            return
        available = sorted(
            int(s["id"]) for s in seat_list(response) if s.get("status", "AVAILABLE") == "AVAILABLE"
        )
        if available:
            break
        # Nothing free now; holds may still lapse. Refresh like a fan would, for a while.
        hopeful_until = hopeful_until or time.perf_counter() + plan.hopeful_seconds
        if (
            state.stop.is_set()
            or time.perf_counter() > hopeful_until
            or await sleep_or_stop(state, plan.refresh_seconds * rng.uniform(0.75, 1.25))
        ):
            fan.outcome = "sold_out"
            await _leave(timed, gated, where)
            return

    reservation: dict[str, Any] | None = None
    want = rng.randint(1, plan.max_seats)
    tried: set[int] = set()
    for _attempt in range(1 + plan.hold_retries):
        choice = _pick([s for s in available if s not in tried], want, rng)
        if not choice:
            break
        tried.update(choice)
        response = await timed.call(
            "hold",
            "POST",
            "/api/reservations",
            json={"show_id": show_id, "seat_ids": choice},
            headers={**gated, "Idempotency-Key": uuid.uuid4().hex},
        )
        if response is None:
            continue
        ended = time.perf_counter() - timed.t0
        if response.status in (200, 201):
            reservation = response.json()
            timed.step("hold_won").record(response.sent_at - timed.t0, ended, True)
            break
        if response.status == 409:
            timed.step("hold_refused").record(response.sent_at - timed.t0, ended, True)
            problem = response.json() or {}
            taken = problem.get("seat_ids") or problem.get("taken") or []
            tried.update(int(s) for s in taken if isinstance(s, int))
            continue
        break  # anything else ends this fan's try; it is counted in the hold step's errors
    if reservation is None:
        fan.outcome = "no_hold"
        await _leave(timed, gated, where)
        return
    state.holds_won += 1
    seats = int(reservation.get("seat_count") or len(reservation.get("seats") or []) or len(tried))
    if rng.random() >= plan.pay_ratio:
        fan.outcome = "walked_away"
        return
    response = await timed.call(
        "pay",
        "POST",
        "/api/payments",
        json={
            "reservation_id": reservation.get("reservation_id") or reservation.get("id"),
            "method": "BALANCE",
        },
        headers={**gated, "Idempotency-Key": uuid.uuid4().hex},
    )
    if response is None or response.status not in (200, 201):
        fan.outcome = "pay_failed"
        return
    fan.outcome = "bought"
    fan.seats = seats
    state.note_sale(seats)


async def _leave(timed: Timed, headers: dict[str, str], where: dict[str, int]) -> None:
    """A fan who gives up leaves the queue, so their admission lease stops counting toward the caps.
    (Walk-aways just vanish: their lease lapses on its own.)"""
    path = f"/api/queue?concert_id={where['concert_id']}&show_id={where['show_id']}"
    await timed.call("leave", "DELETE", path, headers={"Authorization": headers["Authorization"]})


async def sample_progress(state: SaleState, every: float = 0.5) -> None:
    """Client-side view over time, for the queue chart: waiting, admitted, sold."""
    while not state.stop.is_set():
        state.samples.append(
            {
                "t": round(time.perf_counter() - state.t0, 2),
                "joined": state.joined,
                "waiting": state.waiting,
                "admitted": state.admitted,
                "holds": state.holds_won,
                "sold": state.sold,
            }
        )
        await sleep_or_stop(state, every)


def kendall_tau(xs: list[float], ys: list[float]) -> float | None:
    """Kendall's tau-b in O(n log n) (Knight's algorithm): +1 when the two orders agree."""
    n = len(xs)
    if n < 2:
        return None
    pairs = sorted(zip(xs, ys, strict=True))
    n0 = n * (n - 1) // 2

    def tied_pairs(values: list[float]) -> int:
        total = run = 1
        total = 0
        for i in range(1, len(values) + 1):
            if i < len(values) and values[i] == values[i - 1]:
                run += 1
            else:
                total += run * (run - 1) // 2
                run = 1
        return total

    xs_sorted = [p[0] for p in pairs]
    n1 = tied_pairs(xs_sorted)
    # pairs tied in both x and y
    n3 = 0
    run = 1
    for i in range(1, n + 1):
        if i < n and pairs[i] == pairs[i - 1]:
            run += 1
        else:
            n3 += run * (run - 1) // 2
            run = 1
    ys_in_x_order = [p[1] for p in pairs]
    swaps = _merge_count(ys_in_x_order)
    n2 = tied_pairs(ys_in_x_order)  # ys_in_x_order is now sorted by y
    denominator = ((n0 - n1) * (n0 - n2)) ** 0.5
    if denominator == 0:
        return None
    concordant_minus_discordant = n0 - n1 - n2 + n3 - 2 * swaps
    return float(concordant_minus_discordant / denominator)


def _merge_count(values: list[float]) -> int:
    """Sort `values` in place (stable merge sort) and return the number of inversions."""
    n = len(values)
    buffer = values[:]
    swaps = 0
    width = 1
    src, dst = values, buffer
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if src[j] < src[i]:
                    dst[k] = src[j]
                    swaps += mid - i
                    j += 1
                else:
                    dst[k] = src[i]
                    i += 1
                k += 1
            while i < mid:
                dst[k] = src[i]
                i += 1
                k += 1
            while j < hi:
                dst[k] = src[j]
                j += 1
                k += 1
        src, dst = dst, src
        width *= 2
    if src is not values:
        values[:] = src
    return swaps


async def admission_order(redis: Any, show_id: int) -> list[int]:
    """User ids in the order the admission worker admitted them: its `queue.admitted` events,
    read back from the show's event stream (the relay publishes them from the outbox)."""
    from boxoffice.db.outbox import show_stream

    order: list[int] = []
    last = "-"
    while True:
        entries = await redis.xrange(show_stream(show_id), min=last, max="+", count=5000)
        if last != "-":
            entries = entries[1:]  # `min` is inclusive: skip the entry we already have
        if not entries:
            break
        for entry_id, fields in entries:
            if fields.get(b"type") == b"queue.admitted":
                payload = json.loads(fields.get(b"payload", b"{}"))
                order.extend(int(u) for u in payload.get("user_ids", []))
            last = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return order


def fairness(fans: list[Fan], admitted_order: list[int]) -> dict[str, Any]:
    """Kendall tau between join order and admission order, over the fans that were admitted."""
    rank = {user_id: i for i, user_id in enumerate(admitted_order)}
    ranked = [f for f in fans if f.ticket is not None and f.user_id in rank and f.join_sent is not None]
    tau = kendall_tau([float(f.ticket or 0) for f in ranked], [float(rank[f.user_id]) for f in ranked])
    client = kendall_tau([float(f.join_sent or 0) for f in ranked], [float(rank[f.user_id]) for f in ranked])
    seen = [f for f in fans if f.join_sent is not None and f.ready_seen is not None]
    observed = kendall_tau([float(f.join_sent or 0) for f in seen], [float(f.ready_seen or 0) for f in seen])
    return {
        "kendall_tau": None if tau is None else round(tau, 4),
        "kendall_tau_client_join_order": None if client is None else round(client, 4),
        "kendall_tau_observed_ready": None if observed is None else round(observed, 4),
        "fans_ranked": len(ranked),
        "admissions_in_stream": len(admitted_order),
        "method": (
            "kendall_tau: join order = the queue ticket the server gave each fan (its arrival order, "
            "carried in the admission token); admission order = the order of the admission worker's "
            "queue.admitted events in the show's event stream. kendall_tau_client_join_order ranks "
            "joins by when the request left the client instead: fans who click in the same few "
            "milliseconds reach the server in any order, so it also measures that race. "
            "kendall_tau_observed_ready uses when READY was first seen (adds the polling interval)."
        ),
    }


async def watch_dashboard(base_url: str, show_id: int, token: str, state: SaleState) -> int:
    """One promoter watching the sale: the admin dashboard stream, frames counted until the end."""
    import httpx

    frames = 0
    url = f"{base_url}/api/admin/shows/{show_id}/dashboard/stream"
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=10.0)) as client:
        async with client.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("event: frame"):
                    frames += 1
                if state.stop.is_set():
                    break
    return frames
