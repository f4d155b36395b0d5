"""The load client: one pool of raw asyncio HTTP/1.1 keep-alive connections shared by every fan.

httpx costs ~10x the CPU per request of this client; on a 2-core box the client competes with the
server for CPU, so it must be lean for the figures to describe the server. It speaks just enough
HTTP/1.1 for our own API: Content-Length or chunked bodies, keep-alive, `Connection: close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


class HttpError(Exception):
    """The connection failed or the server broke the protocol (not an HTTP error status)."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    # perf_counter when the request left (after a pool connection was free): latency excludes
    # time spent queueing inside the client.
    sent_at: float = 0.0
    # The same two moments on the wall clock (epoch seconds): the trace breakdown lines them up
    # with the server's Server-Timing `start` (same host, same clock).
    sent_wall: float = 0.0
    received_wall: float = 0.0

    def json(self) -> Any:
        return _json_decode(self.body) if self.body else None

    def problem_code(self) -> str:
        """The stable `code` of a problem+json body, else the status phrase-less number."""
        if self.status < 400:
            return ""
        try:
            data = self.json()
        except (msgspec.DecodeError, ValueError):
            return "NON_JSON"
        if isinstance(data, dict):
            return str(data.get("code") or data.get("detail") or "NO_CODE")[:60]
        return "NO_CODE"


class _Conn:
    __slots__ = ("reader", "uses", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.uses = 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class HttpPool:
    """Keep-alive connections to one origin, at most `size` open; requests wait for a free one."""

    def __init__(self, base_url: str, size: int, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// targets are supported, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.size = size
        self.timeout = timeout
        self._host_header = f"{self.host}:{self.port}".encode()
        self._idle: deque[_Conn] = deque()
        self._waiters: deque[asyncio.Future[_Conn | None]] = deque()
        self._open = 0
        self.connects = 0
        self.requests = 0

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=4 * 1024 * 1024), self.timeout
        )
        self.connects += 1
        return _Conn(reader, writer)

    async def _acquire(self) -> _Conn | None:
        """An idle connection, or None meaning 'open a new one' (a slot is reserved for it)."""
        if self._idle:
            return self._idle.pop()  # LIFO: hot connections stay hot, the rest may idle out
        if self._open < self.size:
            self._open += 1
            return None
        waiter: asyncio.Future[_Conn | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return await waiter

    def _release(self, conn: _Conn | None) -> None:
        """Hand the connection (or, for None, its free slot) to a waiter, else keep it idle."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is None:
            self._open -= 1
        else:
            self._idle.append(conn)

    async def warm(self, count: int) -> None:
        """Open `count` connections now (burst: every attempt starts on an open socket)."""
        count = min(count, self.size - self._open)
        conns = await asyncio.gather(*(self._connect() for _ in range(count)))
        self._open += len(conns)
        for conn in conns:
            self._idle.append(conn)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        body = b"" if json is None else _json_encode(json)
        lines = [f"{method} {self.prefix}{path} HTTP/1.1".encode(), b"Host: " + self._host_header]
        if headers:
            lines.extend(f"{k}: {v}".encode() for k, v in headers.items())
        if json is not None:
            lines.append(b"Content-Type: application/json")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: " + str(len(body)).encode())
        raw = b"\r\n".join(lines) + b"\r\n\r\n" + body
        self.requests += 1
        conn = await self._acquire()
        sent_at = time.perf_counter()
        sent_wall = time.time()
        for attempt in (0, 1):
            fresh = conn is None
            try:
                if conn is None:
                    conn = await self._connect()
                conn.writer.write(raw)
                # asyncio.timeout, not wait_for: no task started per request (the load client
                # shares the box with the server it measures)
                async with asyncio.timeout(self.timeout):
                    response, keep = await _read_response(conn.reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                # A reused keep-alive socket the server closed while idle: retry once on a new one.
                # Safe for our writes too: they carry an Idempotency-Key.
                if attempt == 0 and not fresh and not isinstance(exc, TimeoutError):
                    continue
                self._release(None)
                raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            conn.uses += 1
            response.sent_at, response.sent_wall, response.received_wall = sent_at, sent_wall, time.time()
            if keep:
                self._release(conn)
            else:
                conn.close()
                self._release(None)
            return response
        raise AssertionError("unreachable")

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()


async def _read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, rest = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise OSError(f"bad status line {status_line[:60]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in rest.split(b"\r\n"):
        if line:
            name, _, value = line.partition(b":")
            headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
    length = headers.get("content-length")
    if length is not None:
        body = await reader.readexactly(int(length)) if int(length) else b""
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        body = await reader.read()  # close-delimited
        return Response(status, headers, body), False
    keep = headers.get("connection", "").lower() != "close"
    return Response(status, headers, body), keep


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class StepStats:
    """Every request of one step: when it ended (seconds since the run's t0), how long, outcome."""

    name: str
    ends: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_start: float | None = None
    last_end: float = 0.0

    def record(self, started: float, ended: float, ok: bool, error: str | None = None) -> None:
        if self.first_start is None or started < self.first_start:
            self.first_start = started
        if ended > self.last_end:
            self.last_end = ended
        self.ends.append(ended)
        self.latencies.append(ended - started)
        self.ok.append(ok)
        if error:
            self.errors[error] += 1

    @property
    def count(self) -> int:
        return len(self.latencies)

    def summary(self) -> dict[str, Any]:
        span = (self.last_end - self.first_start) if self.first_start is not None else 0.0
        lat = sorted(self.latencies)
        per_second = Counter(int(t) for t in self.ends)
        ok_per_second = Counter(int(t) for t, ok in zip(self.ends, self.ok, strict=True) if ok)
        return {
            "requests": self.count,
            "succeeded": sum(self.ok),
            "failed": self.count - sum(self.ok),
            "duration_seconds": round(span, 3),
            "requests_per_second": round(self.count / span, 1) if span > 0 else None,
            "peak_requests_per_second": max(per_second.values()) if per_second else 0,
            "peak_succeeded_per_second": max(ok_per_second.values()) if ok_per_second else 0,
            "latency_ms": {
                "p50": _pct_ms(lat, 0.50),
                "p95": _pct_ms(lat, 0.95),
                "p99": _pct_ms(lat, 0.99),
                "max": round(lat[-1] * 1000, 2) if lat else None,
                "mean": round(sum(lat) / len(lat) * 1000, 2) if lat else None,
            },
            "errors": dict(self.errors.most_common()),
        }

    def timeline(self, seconds: int) -> dict[str, list[float | None]]:
        """Per-second throughput and p50/p99 latency (ms), for the charts."""
        buckets: list[list[float]] = [[] for _ in range(seconds)]
        for end, lat in zip(self.ends, self.latencies, strict=True):
            index = int(end)
            if 0 <= index < seconds:
                buckets[index].append(lat)
        rps: list[float | None] = [float(len(b)) for b in buckets]
        p50: list[float | None] = []
        p99: list[float | None] = []
        for bucket in buckets:
            bucket.sort()
            p50.append(_pct_ms(bucket, 0.5))
            p99.append(_pct_ms(bucket, 0.99))
        return {"rps": rps, "p50_ms": p50, "p99_ms": p99}


def _pct_ms(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[index] * 1000, 2)


class Timed:
    """Wraps an HttpPool: each call is recorded in the step's StepStats."""

    def __init__(
        self, pool: HttpPool, t0: float, *, trace_sample: float = 0.0, trace_steps: tuple[str, ...] = ()
    ) -> None:
        self.pool = pool
        self.t0 = t0
        self.steps: dict[str, StepStats] = {}
        # --trace-sample: this share of the `trace_steps` calls goes out with a sampled W3C
        # traceparent; the server answers their wall-clock breakdown (Server-Timing), kept here.
        self.trace_sample = trace_sample
        self.trace_steps = trace_steps
        self.traces = TraceBreakdowns()
        self._rng = random.Random(7)

    def step(self, name: str) -> StepStats:
        stats = self.steps.get(name)
        if stats is None:
            stats = self.steps[name] = StepStats(name)
        return stats

    async def call(
        self,
        step: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        ok_statuses: tuple[int, ...] = (200, 201, 204),
    ) -> Response | None:
        """None when the connection failed (recorded as a client-side error)."""
        asked = time.perf_counter() - self.t0
        sampled = (
            bool(self.trace_sample) and step in self.trace_steps and self._rng.random() < self.trace_sample
        )
        if sampled:
            headers = {**(headers or {}), "traceparent": sampled_traceparent(self._rng)}
        try:
            response = await self.pool.request(method, path, json=json, headers=headers)
        except HttpError as exc:
            ended = time.perf_counter() - self.t0
            self.step(step).record(asked, ended, False, f"connection: {str(exc).split(': ', 1)[-1][:60]}")
            return None
        ended = time.perf_counter() - self.t0
        started = response.sent_at - self.t0
        ok = response.status in ok_statuses
        self.step(step).record(
            started, ended, ok, None if ok else f"{response.status} {response.problem_code()}"
        )
        if sampled:
            self.traces.add(step, response, started)
        return response


def sampled_traceparent(rng: random.Random) -> str:
    return f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01"


# The parts of a traced request's wall-clock (ms), in the order the report shows them; they add
# up to `total` (what the client measured from send to the answer's last byte).
TRACE_PARTS = ("before", "cpu", "pg", "redis", "other", "after")
SLOWEST_LISTED = 5


def parse_server_timing(header: str) -> dict[str, float]:
    """`name;dur=ms` and `start;desc="epoch"` entries of a Server-Timing header."""
    out: dict[str, float] = {}
    for entry in header.split(","):
        name, _, param = entry.strip().partition(";")
        _, _, value = param.partition("=")
        try:
            out[name.strip()] = float(value.strip().strip('"'))
        except ValueError:
            continue
    return out


class TraceBreakdowns:
    """Sampled requests' wall-clock split (see http/tracing.py and kit/trace.py), by step:
    before = the server's handler start - the client's send (accept queue, event-loop lag, the
    request's parsing); cpu / pg / redis / other = the server's accounts of its handler; after =
    the rest of the client's wall-clock (the answer's way back and the client's own reading)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[dict[str, float]]] = {}

    def add(self, step: str, response: Response, at: float = 0.0) -> None:
        """`at`: when the request was sent, in seconds into the run (the slowest are listed with it)."""
        header = response.headers.get("server-timing")
        if not header:
            return
        timing = parse_server_timing(header)
        if "handler" not in timing or "start" not in timing:
            return
        total = (response.received_wall - response.sent_wall) * 1000
        before = max(0.0, (timing["start"] - response.sent_wall) * 1000)
        parts = {name: timing.get(name, 0.0) for name in ("cpu", "pg", "redis", "other")}
        after = total - before - timing["handler"]
        if after < 0:  # the two clocks' reads straddle: charge the excess to `before`
            before, after = max(0.0, before + after), 0.0
        name = step if step != "hold" else ("hold_won" if response.status == 201 else "hold_refused")
        calls = {f"{kind}_calls": timing.get(f"{kind}_calls", 0.0) for kind in ("pg", "redis")}
        self.samples.setdefault(name, []).append(
            {"before": before, **parts, "after": after, "total": total, **calls, "at": at}
        )

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per step: the sample count and the mean of each part (ms); the parts add up to the mean total."""
        out: dict[str, dict[str, Any]] = {}
        for step, samples in self.samples.items():
            n = len(samples)
            means = {k: round(sum(s[k] for s in samples) / n, 2) for k in (*TRACE_PARTS, "total")}
            totals = sorted(s["total"] for s in samples)
            slowest = sorted(samples, key=lambda s: -s["total"])[:SLOWEST_LISTED]
            out[step] = {
                "samples": n,
                "mean_ms": means,
                "mean_calls": {
                    k: round(sum(s[f"{k}_calls"] for s in samples) / n, 1) for k in ("pg", "redis")
                },
                "p99_total_ms": round(totals[min(n - 1, int(n * 0.99))], 2),
                # where the tail sits: in a sale's first wave, or spread over it
                "slowest": [{k: round(s[k], 2) for k in ("at", *TRACE_PARTS, "total")} for s in slowest],
            }
        return out


# ---------------------------------------------------------------------------------------------
# CPU


def own_cpu_seconds() -> float:
    """This process's user+system CPU (the load client's cost)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU seconds used by groups of server processes (and their children) between start/stop."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self._start: dict[str, dict[int, tuple[float, float]]] = {}
        self._client_start = 0.0
        self._wall_start = 0.0
        self.result: dict[str, Any] = {}

    @staticmethod
    def _snapshot(pids: list[int]) -> dict[int, tuple[float, float]]:
        """(user, system) CPU seconds of each process."""
        import psutil

        seen: dict[int, tuple[float, float]] = {}
        for pid in pids:
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    seen[proc.pid] = (times.user, times.system)
        return seen

    def start(self) -> None:
        self._start = {name: self._snapshot(pids) for name, pids in self.groups.items()}
        self._client_start = own_cpu_seconds()
        self._wall_start = time.perf_counter()

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self._wall_start
        cores = os.cpu_count() or 1
        client = own_cpu_seconds() - self._client_start
        server: dict[str, Any] = {}
        total = 0.0
        for name, pids in self.groups.items():
            before = self._start.get(name, {})
            after = self._snapshot(pids)
            # Processes that ended in between are lost; new ones count from zero.
            user = sum(max(0.0, u - before.get(pid, (0.0, 0.0))[0]) for pid, (u, _) in after.items())
            system = sum(max(0.0, k - before.get(pid, (0.0, 0.0))[1]) for pid, (_, k) in after.items())
            used = user + system
            total += used
            server[name] = {
                "cpu_seconds": round(used, 2),
                "system_seconds": round(system, 2),  # in the kernel: socket reads and writes, mostly
                "cores_busy": round(used / wall, 2) if wall else None,
            }
        self.result = {
            "wall_seconds": round(wall, 2),
            "machine_cores": cores,
            "client": {
                "cpu_seconds": round(client, 2),
                "cores_busy": round(client / wall, 2) if wall else None,
            },
            "server": server if self.groups else None,
            "server_total": (
                {"cpu_seconds": round(total, 2), "cores_busy": round(total / wall, 2) if wall else None}
                if self.groups
                else None
            ),
            "note": None if self.groups else "server CPU not measured: the target runs elsewhere (--target)",
        }
        return self.result


class LoopLateness:
    """How late the load client's own event loop wakes a 10 ms sleep, sampled through the timed
    phase: a latency figure includes up to this much of the client's own delay (the time a reply
    waits in the client's socket before its loop reads it)."""

    PERIOD = 0.010

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._probe())

    async def _probe(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.PERIOD)
            self.samples.append(max(0.0, time.perf_counter() - started - self.PERIOD))

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        ordered = sorted(self.samples)
        return {
            "samples": len(ordered),
            "p50_ms": _pct_ms(ordered, 0.5),
            "p99_ms": _pct_ms(ordered, 0.99),
            "max_ms": round(ordered[-1] * 1000, 2) if ordered else None,
        }


class MemoryMeter:
    """Resident memory of each API process (the serve process's workers), peak and last sample."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self._next = 0.0

    def sample(self, every: float = 0.5) -> None:
        import psutil

        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + every
        for pid in self.pids:
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    if proc.pid != pid and "spawn_main" not in " ".join(proc.cmdline()):
                        continue  # not a uvicorn worker (multiprocessing's resource tracker, say)
                    rss = int(proc.memory_info().rss)
                    self.last[proc.pid] = rss
                    self.peak[proc.pid] = max(rss, self.peak.get(proc.pid, 0))

    def report(self) -> dict[str, Any]:
        if not self.pids:
            return {"note": "not measured: the target runs elsewhere (--target)"}
        mb = 1024 * 1024
        # With several workers the serve process only supervises; its spawned workers serve.
        workers = [pid for pid in self.peak if pid not in self.pids] or list(self.peak)
        return {
            "processes": len(workers),
            "peak_rss_mb": {str(pid): round(self.peak[pid] / mb, 1) for pid in workers},
            "max_peak_rss_mb": round(max((self.peak[p] for p in workers), default=0) / mb, 1),
            "last_rss_mb": {str(pid): round(self.last.get(pid, 0) / mb, 1) for pid in workers},
        }
