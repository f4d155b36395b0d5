"""The burst (seed 004's claim): every hold attempt released at once against the same few seats.

Each attempt is a different fan with its own pre-opened keep-alive connection and admission token;
all wait on one asyncio event and write their request when it fires. Attempt i asks for seat
i mod S (or a run of `seats_per_attempt` seats from there), so every seat is fought over by
attempts/S fans and must end with exactly one winner.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from boxoffice.bench.client import HttpError, HttpPool, Response


@dataclass
class Attempt:
    index: int
    seat_ids: list[int]
    headers: dict[str, str]
    sent_at: float = 0.0
    answered_at: float = 0.0
    status: int = 0
    code: str = ""


async def run_burst(
    pool: HttpPool, show_id: int, attempts: list[Attempt], *, answer_within: float = 30.0
) -> dict[str, Any]:
    await pool.warm(len(attempts))  # every attempt starts on an open socket
    gate = asyncio.Event()

    async def one(attempt: Attempt) -> None:
        await gate.wait()
        attempt.sent_at = time.perf_counter()
        try:
            response: Response = await pool.request(
                "POST",
                "/api/reservations",
                json={"show_id": show_id, "seat_ids": attempt.seat_ids},
                headers={**attempt.headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            attempt.status = response.status
            attempt.code = response.problem_code()
        except HttpError as exc:
            attempt.status = 0
            attempt.code = f"connection: {exc}"[:80]
        attempt.answered_at = time.perf_counter()

    tasks = [asyncio.create_task(one(a)) for a in attempts]
    await asyncio.sleep(0.05)  # every task is parked on the gate
    released = time.perf_counter()
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), answer_within)

    winners = [a for a in attempts if a.status in (200, 201)]
    per_seat: Counter[int] = Counter()
    for a in winners:
        per_seat.update(a.seat_ids)
    seats = sorted({s for a in attempts for s in a.seat_ids})
    losers = Counter(f"{a.status} {a.code}".strip() for a in attempts if a.status not in (200, 201))
    latencies = sorted(a.answered_at - a.sent_at for a in attempts)
    return {
        "attempts": len(attempts),
        "seats": len(seats),
        "winners": len(winners),
        "winners_per_seat": {str(s): per_seat.get(s, 0) for s in seats},
        "winners_per_seat_max": max((per_seat.get(s, 0) for s in seats), default=0),
        "seats_with_one_winner": sum(1 for s in seats if per_seat.get(s, 0) == 1),
        "loser_statuses": dict(losers.most_common()),
        "release_spread_ms": round((max(a.sent_at for a in attempts) - released) * 1000, 2),
        "time_to_last_answer_ms": round((max(a.answered_at for a in attempts) - released) * 1000, 2),
        "latency_ms": {
            "p50": round(latencies[len(latencies) // 2] * 1000, 2),
            "p99": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
            "max": round(latencies[-1] * 1000, 2),
        },
        "answered_per_second": round(
            len(attempts) / max(1e-9, max(a.answered_at for a in attempts) - released), 1
        ),
    }
