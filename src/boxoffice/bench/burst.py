"""The burst (seed 004's claim): every hold attempt released at once against the same few seats.

Each attempt is a different fan with its own pre-opened keep-alive connection and admission token;
all wait on one asyncio event and write their request when it fires. Attempt i asks for seat
i mod S (or a run of `seats_per_attempt` seats from there), so every seat is fought over by
attempts/S fans and must end with exactly one winner. The same burst goes over HTTP
(`run_burst`) or over the gRPC TicketService (`run_grpc_burst`: the calls spread over pre-opened
HTTP/2 connections).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from boxoffice.bench.client import HttpError, HttpPool, Response, TraceBreakdowns, sampled_traceparent


@dataclass
class Attempt:
    index: int
    seat_ids: list[int]
    headers: dict[str, str]
    sent_at: float = 0.0
    answered_at: float = 0.0
    status: str = ""  # "201", "409" (HTTP) or "OK", "ABORTED" (gRPC); "0" when the connection failed
    code: str = ""
    won: bool = False


async def run_burst(
    pool: HttpPool,
    show_id: int,
    attempts: list[Attempt],
    *,
    answer_within: float = 30.0,
    trace_sample: float = 0.0,
) -> dict[str, Any]:
    """With `trace_sample`, that share of the attempts carries a sampled traceparent and the result
    splits their wall-clock (`trace_breakdown`, as the flash sale's)."""
    await pool.warm(len(attempts))  # every attempt starts on an open socket
    traces = TraceBreakdowns()
    rng = random.Random(7)
    traced = {a.index for a in attempts if trace_sample and rng.random() < trace_sample}

    async def send(attempt: Attempt) -> None:
        headers = {**attempt.headers, "Idempotency-Key": uuid.uuid4().hex}
        if attempt.index in traced:
            headers["traceparent"] = sampled_traceparent(rng)
        try:
            response: Response = await pool.request(
                "POST",
                "/api/reservations",
                json={"show_id": show_id, "seat_ids": attempt.seat_ids},
                headers=headers,
            )
            attempt.status, attempt.code = str(response.status), response.problem_code()
            attempt.won = response.status in (200, 201)
            if attempt.index in traced:
                traces.add("hold", response)
        except HttpError as exc:
            attempt.status, attempt.code = "0", f"connection: {exc}"[:80]

    result = await _release(attempts, send, answer_within)
    if traced:
        result["trace_breakdown"] = traces.summary()
    return result


async def run_grpc_burst(
    target: str, show_id: int, attempts: list[Attempt], *, connections: int = 50, answer_within: float = 30.0
) -> dict[str, Any]:
    """The burst over gRPC: Hold calls with the same metadata (authorization, x-queue-token,
    idempotency-key), spread over `connections` pre-opened HTTP/2 connections."""
    import grpc
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    from boxoffice.grpc import ticket_pb2 as pb
    from boxoffice.grpc import ticket_pb2_grpc as pb_grpc

    # A local subchannel pool per channel: otherwise channels to one target share one connection.
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(max(1, min(connections, len(attempts))))
    ]
    try:
        await asyncio.gather(*(asyncio.wait_for(c.channel_ready(), 10) for c in channels))
        stubs = [pb_grpc.TicketServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]

        async def send(attempt: Attempt) -> None:
            metadata = [(k.lower(), v) for k, v in attempt.headers.items()]
            metadata.append(("idempotency-key", uuid.uuid4().hex))
            stub = stubs[attempt.index % len(stubs)]
            try:
                await stub.Hold(pb.HoldRequest(show_id=show_id, seat_ids=attempt.seat_ids), metadata=metadata)
                attempt.status, attempt.won = "OK", True
            except grpc.aio.AioRpcError as exc:
                attempt.status, attempt.code = exc.code().name, "NO_ERROR_INFO"
                status = rpc_status.from_call(exc)
                for detail in status.details if status is not None else []:
                    info = error_details_pb2.ErrorInfo()
                    if detail.Unpack(info):
                        attempt.code = info.reason

        return await _release(attempts, send, answer_within)
    finally:
        await asyncio.gather(*(c.close() for c in channels))


async def _release(
    attempts: list[Attempt], send: Callable[[Attempt], Awaitable[None]], answer_within: float
) -> dict[str, Any]:
    gate = asyncio.Event()

    async def one(attempt: Attempt) -> None:
        await gate.wait()
        attempt.sent_at = time.perf_counter()
        await send(attempt)
        attempt.answered_at = time.perf_counter()

    tasks = [asyncio.create_task(one(a)) for a in attempts]
    await asyncio.sleep(0.05)  # every task is parked on the gate
    released = time.perf_counter()
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), answer_within)

    winners = [a for a in attempts if a.won]
    per_seat: Counter[int] = Counter()
    for a in winners:
        per_seat.update(a.seat_ids)
    seats = sorted({s for a in attempts for s in a.seat_ids})
    losers = Counter(f"{a.status} {a.code}".strip() for a in attempts if not a.won)
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
