"""Admitted buyers first: the waiting room's traffic takes its turn behind the buyers' work on each
event loop (CrowdLane), and under overload it is shed before anything else.

Why a lane: an event loop runs its ready callbacks first come, first served, so a hold's next step
(its Redis reply just parsed) waits behind every poll that arrived in the same pass, and a hold or
a payment awaits several round trips. Measured (`boxoffice bench flash-sale --users 5000 --seats
1000 --admit-per-second 50 --trace-sample 0.02`, medians of 3 runs): a winning hold's mean
wall-clock 164 -> 69 ms, a refused hold's 124 -> 30 ms, a payment's 118 -> 57 ms with the lane;
the polls waited their turn (status p50 11 -> 40 ms). Two crowd requests a pass rather than eight
(the default sale, medians of 3): winning hold p99 373 -> 196 ms, payment p99 297 -> 94 ms, the
seat map's 540 -> 178 ms; a poll's p99 131 -> 146 ms.

Why event-loop lag and not in-flight counts: a poll answered from the serving board finishes within
one loop iteration, so even a saturated process has almost no poll "in flight"; what grows is the
time every ready callback waits for the loop (the accept and read backlog). That wait is exactly
what a hold or a payment would also wait, so it is the signal. A probe sleeps 10 ms and measures how
late it wakes; the smoothed lag rises at once and decays over ~50 ms. Between the threshold and
twice it, a growing share (at most 90%) of the waiting-room requests (join, status, the queue
stream) is answered 429 with Retry-After before any routing or parsing. Holds, payments, the seat
map, the token endpoint and the public serving resource (cheaper to answer than to refuse) are
never shed, and neither is the poll of a fan whose ticket number this process's serving board shows
as served: that fan is about to buy. (The number is read from the ticket unverified, a header
parse; the route verifies it, so a forged number only buys a 400.)
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from boxoffice.errors import QueueBusy
from boxoffice.observability import Metrics

# (show_id, ticket number) -> True when that number is served (or drawn): never shed its poll.
ServedCheck = Callable[[Scope, int, int], bool]

PROBE_SECONDS = 0.010
# Never shed everything: a lag that comes from outside (a CPU-starved host) would otherwise stall
# the waiting room for good; one request in ten always goes through, and the line keeps moving.
MAX_SHARE = 0.9
# (method, path) of the waiting room's own traffic: the only requests ever shed.
SHEDDABLE = frozenset({("POST", "/api/queue"), ("GET", "/api/queue/status"), ("GET", "/api/queue/stream")})


# A second of probes without a request and the probe stops until the next one: a wake-up costs
# ~0.12-0.15 ms of CPU on a VM, so probing an idle process kept 1.2-1.7 % of a core busy for
# nothing. An idle loop has no lag to measure; the next request starts the probe again.
IDLE_PROBES = 100


class LoopLag:
    """The smoothed lateness of a 10 ms sleep on this process's event loop, in seconds, measured
    while requests arrive (`ensure_running`, once per request)."""

    def __init__(self, metrics: Metrics | None = None, *, idle_probes: int = IDLE_PROBES) -> None:
        self.lag = 0.0
        self._metrics = metrics
        self._idle_probes = idle_probes
        self._requests = 0
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        self._requests += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._probe())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _probe(self) -> None:
        seen, quiet = self._requests, 0
        while quiet < self._idle_probes:
            started = time.perf_counter()
            await asyncio.sleep(PROBE_SECONDS)
            sample = max(0.0, time.perf_counter() - started - PROBE_SECONDS)
            # fast attack (a lagging loop is believed at once), slow release (~5 probes)
            self._set(sample if sample > self.lag else self.lag * 0.8 + sample * 0.2)
            quiet = 0 if self._requests != seen else quiet + 1
            seen = self._requests
        self._set(0.0)

    def _set(self, lag: float) -> None:
        self.lag = lag
        if self._metrics is not None:
            self._metrics.loop_lag.set(lag)


def shed_share(lag_seconds: float, threshold_seconds: float) -> float:
    """0 below the threshold, rising linearly to MAX_SHARE at twice it."""
    if threshold_seconds <= 0 or lag_seconds <= threshold_seconds:
        return 0.0
    return MAX_SHARE * min(1.0, (lag_seconds - threshold_seconds) / threshold_seconds)


class CrowdLane:
    """The waiting room's requests enter the app in turns: each parks on a future as it arrives,
    and once per pass of the event loop the lane lets `per_pass` of them go, oldest first. A
    buyer's step therefore waits behind at most `per_pass` crowd requests, however large the
    crowd, while the crowd is served at the loop's full pace whenever the buyers leave it room
    (the lane re-arms itself each pass while anyone waits: the loop never idles with fans parked)."""

    __slots__ = ("_armed", "_waiting", "per_pass")

    def __init__(self, per_pass: int) -> None:
        self.per_pass = per_pass
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._armed = False

    async def turn(self) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting.append(future)
        if not self._armed:
            self._armed = True
            loop.call_soon(self._release, loop)
        await future

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        released = 0
        while self._waiting and released < self.per_pass:
            future = self._waiting.popleft()
            if not future.done():  # its client went away while parked
                future.set_result(None)
                released += 1
        if self._waiting:
            loop.call_soon(self._release, loop)  # the next pass: what arrived meanwhile goes first
        else:
            self._armed = False


class _Shed:
    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


class ShedMiddleware:
    """Pure ASGI, in front of routing: a shed request costs a status line and a tiny body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        lag_threshold_ms: float,
        retry_after_seconds: int,
        served: ServedCheck | None = None,
        crowd_per_pass: int = 0,
    ) -> None:
        self.app = app
        self.served = served
        self.metrics = metrics
        self.threshold = lag_threshold_ms / 1000.0
        self.retry_after = retry_after_seconds
        self.monitor = LoopLag(metrics)
        self._rng = random.Random()
        self.lane = CrowdLane(crowd_per_pass) if crowd_per_pass > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.threshold > 0:
            self.monitor.ensure_running()
        route = (scope.get("method", ""), scope.get("path", ""))
        if route in SHEDDABLE and not self._is_served(scope):  # a served fan's poll is a buyer's
            share = shed_share(self.monitor.lag, self.threshold)
            if share > 0 and self._rng.random() < share:
                scope["route"] = _Shed(route[1])  # the access log and metrics name the route
                await self._shed(route[1], send)
                return
            if self.lane is not None:
                await self.lane.turn()
        await self.app(scope, receive, send)

    def _is_served(self, scope: Scope) -> bool:
        if self.served is None or scope.get("method") != "GET":
            return False
        ticket = None
        for key, value in scope.get("headers", ()):
            if key == b"x-queue-ticket":
                ticket = value
                break
        if ticket is None:
            return False
        parts = ticket.split(b".")
        if len(parts) != 5 or not parts[1].isdigit() or not parts[3].isdigit() or len(ticket) > 160:
            return False
        return self.served(scope, int(parts[1]), int(parts[3]))

    async def _shed(self, path: str, send: Send) -> None:
        self.metrics.shed.labels(path).inc()
        # jittered so the shed crowd does not come back in one wave
        retry = self.retry_after + self._rng.randint(0, self.retry_after)
        body = json.dumps(
            {
                "type": "https://boxoffice.dev/problems/queue-busy",
                "title": "Too Many Requests",
                "status": 429,
                "code": QueueBusy.code,
                "detail": "The waiting room is busy; your place is kept. Retry after the given seconds.",
                "retry_after_seconds": retry,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
